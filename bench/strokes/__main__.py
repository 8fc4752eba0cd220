"""``python -m bench.strokes listen|capacity|profile``: see cli.py."""

from __future__ import annotations

from .cli import main

main()
