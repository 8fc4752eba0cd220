"""The command line: ``python -m aiotutorial.pgcluster COMMAND``.

``ensure``
    initialise the cluster if needed, start it if it is not running, create the database
    ``aiotutorial`` if missing and print its URL.  With ``DATABASE_URL`` set, only wait (up
    to 30 s) until that server accepts connections.
``stop``
    stop the embedded server (fast shutdown) if it runs.
``status``
    print running / stopped / not initialised; exit status 0 when running, else 3.
``url``
    print the default database URL.
``createdb NAME``
    create database NAME on the active server if it does not exist.
``bindir``
    print the directory of the PostgreSQL server programs in use; exit status 3 when there
    are none (``make db`` then installs the ``pgserver`` extra).
``psql [ARGS...]``
    run psql connected to the default database.

Errors are one line on stderr (``pgcluster: error: ...``) and exit status 1, not a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .binaries import NoServerPrograms, find_bin_dir, find_psql
from .cluster import DEFAULT_DBNAME, default_cluster
from .common import ClusterError, say
from .databases import (
    default_database_url,
    ensure_database,
    ensure_running,
    libpq_url,
    url_with_dbname,
)

__all__ = ["main"]

# Exit status of `bindir` when the machine has no PostgreSQL (as `status` uses 3 for stopped).
NO_SERVER_PROGRAMS = 3


def _cmd_ensure(args: argparse.Namespace) -> int:
    print(ensure_running())
    return 0


def _cmd_stop(args: argparse.Namespace) -> int:
    cluster = default_cluster()
    if not cluster.is_initialised():
        say(f"no embedded cluster in {cluster.data_dir}: nothing to stop")
    elif not cluster.stop():
        say("PostgreSQL is not running")
    else:
        say("PostgreSQL stopped")
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    cluster = default_cluster()
    state = cluster.status()
    detail = f" (pid {cluster.pid()})" if state == "running" else ""
    print(f"embedded PostgreSQL in {cluster.data_dir}: {state}{detail}")
    if os.environ.get("DATABASE_URL"):
        say("note: DATABASE_URL is set, so the application uses that server instead")
    return 0 if state == "running" else 3


def _cmd_url(args: argparse.Namespace) -> int:
    print(default_database_url())
    return 0


def _cmd_createdb(args: argparse.Namespace) -> int:
    if os.environ.get("DATABASE_URL"):
        base_url = os.environ["DATABASE_URL"]
    else:
        base_url = ensure_running()
    ensure_database(url_with_dbname(base_url, args.name))
    say(f"database {args.name} is there")
    return 0


def _cmd_bindir(args: argparse.Namespace) -> int:
    try:
        print(find_bin_dir())
    except NoServerPrograms as error:
        say(f"error: {error}")
        return NO_SERVER_PROGRAMS
    return 0


def _exec_psql(arguments: Sequence[str]) -> int:
    psql = find_psql()
    external = os.environ.get("DATABASE_URL")
    env = dict(os.environ)
    if external:
        argv = [psql, f"--dbname={libpq_url(external)}", *arguments]
    else:
        # Connection parameters through the environment, so that "-d otherdb" still works.
        cluster = default_cluster()
        env.update(
            PGHOST=str(cluster.socket_dir),
            PGPORT=str(cluster.port),
            PGUSER=cluster.superuser,
            PGDATABASE=DEFAULT_DBNAME,
        )
        argv = [psql, *arguments]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(psql, argv, env)
    return 127  # not reached


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m aiotutorial.pgcluster",
        description="Manage the embedded PostgreSQL cluster kept under var/pg/.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser(
        "ensure", help="initialise and start the cluster as needed, create the database"
    ).set_defaults(handler=_cmd_ensure)
    commands.add_parser("stop", help="stop the embedded server").set_defaults(handler=_cmd_stop)
    commands.add_parser(
        "status", help="running / stopped / not initialised (exit 0 if running, else 3)"
    ).set_defaults(handler=_cmd_status)
    commands.add_parser("url", help="print the default database URL").set_defaults(handler=_cmd_url)
    createdb = commands.add_parser("createdb", help="create a database if missing")
    createdb.add_argument("name")
    createdb.set_defaults(handler=_cmd_createdb)
    commands.add_parser(
        "bindir", help="print where the PostgreSQL programs are (exit 3 if there are none)"
    ).set_defaults(handler=_cmd_bindir)
    commands.add_parser("psql", help="run psql on the default database (arguments follow)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        if arguments and arguments[0] == "psql":
            return _exec_psql(arguments[1:])
        args = _parser().parse_args(arguments)
        return args.handler(args)
    except KeyboardInterrupt:
        return 130
    except ClusterError as error:
        say(f"error: {error}")
        return 1
    except Exception as error:  # a clear one-liner beats a traceback for a CLI user
        say(f"error: {type(error).__name__}: {str(error).strip()}")
        return 1
