"""A run's state shared by its scenarios: the profile, the table's rows, what it made.

``Context.row`` adds one line of the table: a figure of aiotutorial, the same figure of its
reference measured in the same run (interleaved with it), the ratio, the target and whether it
is met; with the runs behind each figure (or their ``spread``: min, max, count), the row also
carries their spread, and the ratio's spread over the rounds (round i of one server against
round i of the other).
``Context.begin`` records the machine's state before a scenario: the load average and the CPU
other processes used in a short sample (``bench.machine.snapshot``), and prints them.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import machine
from .profiles import Profile

__all__ = ["Context"]


def _spread(
    prefix: str,
    runs: Sequence[float | None] | None,
    given: tuple[float | None, float | None, int] | None,
) -> dict[str, Any]:
    if given is not None:
        low, high, count = given
        return {f"{prefix}_min": low, f"{prefix}_max": high, f"{prefix}_runs": count}
    present = [value for value in runs or () if value is not None]
    return {
        f"{prefix}_min": min(present) if present else None,
        f"{prefix}_max": max(present) if present else None,
        f"{prefix}_runs": len(present) if runs is not None else None,
    }


def _ratio_spread(
    runs: Sequence[float | None] | None, reference_runs: Sequence[float | None] | None
) -> dict[str, Any]:
    """Round by round ratios (the runs are interleaved: round i of each was measured
    together): their min and max, when both sides have the same rounds."""
    ratios: list[float] = []
    if runs is not None and reference_runs is not None and len(runs) == len(reference_runs):
        ratios = [a / b for a, b in zip(runs, reference_runs, strict=True) if a is not None and b]
    return {
        "ratio_min": min(ratios) if ratios else None,
        "ratio_max": max(ratios) if ratios else None,
    }


@dataclass
class Context:
    profile: Profile
    database_url: str
    generator: str  # "wrk" or "python"
    say: Callable[[str], None] = print
    notes: list[str] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    channels: list[str] = field(default_factory=list)  # made by this run, deleted after
    users: list[str] = field(default_factory=list)
    drop_seed: bool = False
    run_id: str = field(default_factory=lambda: secrets.token_hex(3))
    # Servers kept from the fan-out for the capacity scenario (smoke profile only).
    kept: dict[str, Any] = field(default_factory=dict)
    # The machine before each scenario: name -> load average and the others' CPU.
    before: dict[str, dict[str, Any]] = field(default_factory=dict)

    def begin(self, names: str | Sequence[str], title: str) -> dict[str, Any]:
        """Record (and print) the load average and the other processes' CPU before the
        scenarios ``names`` start."""
        state = machine.snapshot(self.profile.machine_sample)
        for name in [names] if isinstance(names, str) else names:
            self.before[name] = state
        load = " ".join(f"{value:.2f}" for value in state["loadavg"])
        others = state["others_pct_of_core"]
        self.say(
            f"{title} (load average {load}; other processes "
            f"{'n/a' if others is None else f'{others:.0f} %'} of a core)"
        )
        return state

    def row(
        self,
        scenario: str,
        figure: str,
        value: float | None,
        unit: str,
        reference: str | None = None,
        reference_value: float | None = None,
        *,
        runs: Sequence[float | None] | None = None,
        reference_runs: Sequence[float | None] | None = None,
        spread: tuple[float | None, float | None, int] | None = None,
        reference_spread: tuple[float | None, float | None, int] | None = None,
        ratio_target: float | None = None,
        below: float | None = None,
        above: float | None = None,
        target: str = "(report)",
    ) -> dict[str, Any]:
        ratio = None
        if value is not None and reference_value:
            ratio = value / reference_value
        met: bool | None = None
        if ratio_target is not None:
            met = ratio is not None and ratio >= ratio_target
        elif below is not None:
            met = value is not None and value < below
        elif above is not None:
            met = value is not None and value >= above
        entry = {
            "scenario": scenario,
            "figure": figure,
            "value": value,
            "unit": unit,
            "reference": reference,
            "reference_value": reference_value,
            "ratio": ratio,
            "target": target,
            "met": met,
            **_spread("value", runs, spread),
            **_spread("reference", reference_runs, reference_spread),
            **_ratio_spread(runs, reference_runs),
        }
        self.rows.append(entry)
        return entry
