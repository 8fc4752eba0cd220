"""The site's administrators, from the command line (run where the app's database is reachable):

    python -m aiotutorial.admin promote alice    # alice administers the site
    python -m aiotutorial.admin demote alice
    python -m aiotutorial.admin list

An administrator moderates every channel (except reading conversations they are not in), sees
the reported messages at ``/reports`` and deactivates accounts there (or with
``POST /users/{name}/deactivate``). The database is ``DATABASE_URL``, else the ini's
``sqlalchemy.url`` (``--ini``, development.ini by default), else the embedded cluster.
"""

from __future__ import annotations

import argparse
import configparser
import sys
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa

from .db import schema as db
from .db.engine import database_url

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _settings(ini: Path) -> dict[str, str]:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(ini)
    return dict(parser.items("app:main")) if parser.has_section("app:main") else {}


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m aiotutorial.admin", description="Name the site's administrators."
    )
    parser.add_argument("command", choices=["promote", "demote", "list"])
    parser.add_argument("username", nargs="?", help="the account (promote, demote)")
    parser.add_argument(
        "--ini", type=Path, default=PROJECT_ROOT / "development.ini", help="the app's ini file"
    )
    args = parser.parse_args(argv)
    if args.command != "list" and not args.username:
        parser.error(f"{args.command} needs a username")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; returns the exit status."""
    args = _parse_args(argv)
    url = database_url(_settings(args.ini))
    engine = sa.create_engine(url.replace("postgresql+psycopg2://", "postgresql://", 1))
    try:
        with engine.begin() as conn:
            if args.command == "list":
                rows = conn.execute(
                    sa.select(db.site_admins.c.user, db.site_admins.c.since).order_by(
                        db.site_admins.c.user
                    )
                ).fetchall()
                for row in rows:
                    print(f"{row.user}\tsince {row.since:%Y-%m-%d %H:%M}")
                return 0
            name = conn.execute(
                sa.select(db.users.c.username).where(
                    sa.func.lower(db.users.c.username) == args.username.lower()
                )
            ).scalar()
            if name is None:
                print(f"admin: there is no user {args.username!r}", file=sys.stderr)
                return 1
            if args.command == "promote":
                conn.execute(
                    sa.text(
                        'INSERT INTO site_admins ("user", since) VALUES (:user, now()) '
                        "ON CONFLICT DO NOTHING"
                    ),
                    {"user": name},
                )
                print(f"{name} administers the site.")
            else:
                conn.execute(db.site_admins.delete().where(db.site_admins.c.user == name))
                print(f"{name} is no longer an administrator.")
    except sa.exc.OperationalError as exc:
        print(f"admin: cannot reach the database: {exc.orig}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
