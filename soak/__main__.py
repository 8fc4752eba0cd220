"""``python -m soak``: run the soak, print its report, exit 0 only if it passed."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from .run import BUSES, SoakConfig, run_soak

DEFAULT_LOGS = Path(__file__).resolve().parent.parent / "var" / "soak"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m soak",
        description="Faults under load: the chat must lose, duplicate and reorder nothing.",
    )
    parser.add_argument("--minutes", type=float, default=3.0, help="posting time (default 3)")
    parser.add_argument("--clients", type=int, default=24, help="checked clients (default 24)")
    parser.add_argument("--rate", type=float, default=10.0, help="messages a second (default 10)")
    parser.add_argument(
        "--quick", action="store_true", help="about 40 s: one fault of each kind in 30 s"
    )
    parser.add_argument(
        "--bus",
        choices=BUSES,
        default="postgresql",
        help="the bus between the instances: NOTIFY (default), or a Redis of the run's own, "
        "killed (kill -9) among the faults",
    )
    parser.add_argument(
        "--logs",
        type=Path,
        help=f"keep the servers' logs and the report there (default {DEFAULT_LOGS}/<time>)",
    )
    args = parser.parse_args(argv)
    if args.clients < 3 or args.rate <= 0 or args.minutes <= 0:
        parser.error("--clients is at least 3, --rate and --minutes above 0")
    logs = args.logs or DEFAULT_LOGS / time.strftime("%Y%m%d-%H%M%S")
    options = {"clients": args.clients, "rate": args.rate, "logs_dir": logs, "bus": args.bus}
    config = (
        SoakConfig.quick(**options)
        if args.quick
        else SoakConfig.for_minutes(args.minutes, **options)
    )
    try:
        result = asyncio.run(run_soak(config))
    except KeyboardInterrupt:
        print("soak: interrupted (everything it started has been stopped)", file=sys.stderr)
        return 130
    print()
    print(result.report())
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
