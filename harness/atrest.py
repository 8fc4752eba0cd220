"""``vacuum_at_rest``: tables left as production's would be at rest, for plans to be read.

A plan test loads a scratch database in bulk, then ``VACUUM (ANALYZE)``s it so that the
planner sees what a database at rest has: fresh statistics and every page all-visible (which
is what makes an index-only scan cheap). But VACUUM marks a page all-visible only if no
snapshot in that database is older than its rows, and the bulk load itself wakes autovacuum,
whose ANALYZE holds a snapshot for a while: when the two meet (a busy machine makes it
likely), the pages stay not all-visible, the planner prefers a heap scan, and the test sees
another plan than production would. So: vacuum, check ``pg_class`` (pages all-visible against
pages), and vacuum again after a pause until it holds.
"""

from __future__ import annotations

import time
from typing import Any

__all__ = ["vacuum_at_rest"]

_SHORT = """
    SELECT c.relname, c.relpages, c.relallvisible
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind = 'r' AND n.nspname = current_schema()
      AND (%(tables)s::text[] IS NULL OR c.relname = ANY(%(tables)s::text[]))
      AND c.relallvisible < c.relpages
"""


def vacuum_at_rest(
    cursor: Any, tables: list[str] | None = None, attempts: int = 20, pause: float = 0.5
) -> None:
    """``VACUUM (ANALYZE)`` ``tables`` (every table of the schema when None) until each one's
    pages are all-visible; ``cursor`` on an autocommit connection. Raises RuntimeError, naming
    the tables, when they are not after ``attempts``."""
    for attempt in range(attempts):
        if attempt:
            time.sleep(pause)
        for statement in [f"VACUUM (ANALYZE) {table}" for table in tables or ()] or [
            "VACUUM (ANALYZE)"
        ]:
            cursor.execute(statement)
        cursor.execute(_SHORT, {"tables": tables})
        short = cursor.fetchall()
        if not short:
            return
    raise RuntimeError(
        "after VACUUM, pages not all-visible (a snapshot held open in the database?): "
        + ", ".join(f"{name} {seen}/{pages}" for name, pages, seen in short)
    )
