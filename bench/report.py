"""The table printed at the end of ``make bench``, and the machine's state before each scenario.

One line per figure: aiotutorial's value and its reference's, measured in the same run
(interleaved), each the median of its runs with their spread ``[min-max]`` when there was more
than one run, the ratio of the medians with the spread of the round-by-round ratios, the
target and whether it is met. ``machine_lines`` lists the load average and the CPU of other
processes recorded before each scenario. The plots are plots.py's (``plot_all``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .plots import plot_all

__all__ = ["table", "machine_lines", "plot_all"]


def _num(value: float | None, unit: str = "") -> str:
    if value is None:
        return "n/a"
    if abs(value) >= 1000:
        text = f"{value:,.0f}"
    elif abs(value) >= 100:
        text = f"{value:.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return f"{text} {unit}".rstrip()


def _with_spread(row: dict[str, Any], prefix: str, value: float | None) -> str:
    """``value unit [min-max]``: the spread shown when there was more than one run."""
    text = _num(value, row["unit"])
    low, high = row.get(f"{prefix}_min"), row.get(f"{prefix}_max")
    if (row.get(f"{prefix}_runs") or 0) > 1 and low is not None and high is not None:
        text += f" [{_num(low)}-{_num(high)}]"
    return text


def _ratio(row: dict[str, Any]) -> str:
    if row["ratio"] is None:
        return ""
    text = f"{row['ratio']:.2f}x"
    low, high = row.get("ratio_min"), row.get("ratio_max")
    if low is not None and high is not None and (row.get("value_runs") or 0) > 1:
        text += f" [{low:.2f}-{high:.2f}]"
    return text


def table(rows: Sequence[dict[str, Any]]) -> str:
    """One line per figure: value, reference measured in the same run, ratio, target, met."""
    header = ["scenario", "figure", "value", "reference", "ref. value", "ratio", "target", "met"]
    lines = [header]
    for row in rows:
        lines.append(
            [
                row["scenario"],
                row["figure"],
                _with_spread(row, "value", row["value"]),
                row["reference"] or "",
                _with_spread(row, "reference", row["reference_value"]) if row["reference"] else "",
                _ratio(row),
                row["target"],
                {True: "yes", False: "NO", None: "-"}[row["met"]],
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    right = {2, 4, 5}
    out = []
    for number, line in enumerate(lines):
        cells = [
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(line)
        ]
        out.append("  ".join(cells).rstrip())
        if number == 0:
            out.append("  ".join("-" * width for width in widths))
    if any((row.get("value_runs") or 0) > 1 for row in rows):
        out.append(
            "values: the median of the runs [min-max]; ratio: of the medians [min-max of the "
            "round-by-round ratios, the two servers measured interleaved]"
        )
    return "\n".join(out)


def machine_lines(scenarios: dict[str, dict[str, Any]]) -> str:
    """The load average (1, 5, 15 min) and other processes' CPU before each scenario."""
    lines = ["the machine before each scenario: load average 1/5/15 min; other processes"]
    for name, result in scenarios.items():
        state = result.get("machine_before")
        if not state:
            continue
        load = " ".join(f"{value:.2f}" for value in state["loadavg"])
        others = state.get("others_pct_of_core")
        lines.append(
            f"  {name:<13} {load}; {'n/a' if others is None else f'{others:.0f} %'} of a core"
        )
    return "\n".join(lines) if len(lines) > 1 else ""
