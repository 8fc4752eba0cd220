"""Alembic environment of the aiotutorial schema: online, offline or on a given connection."""

import os
import sys
import warnings
from logging.config import fileConfig
from typing import NoReturn

from alembic import context
from alembic.util import CommandError
from sqlalchemy import create_engine, exc, pool
from sqlalchemy.engine import Connection

from aiotutorial.db.schema import metadata

# SQLAlchemy 1.4 cannot reflect expression indexes such as lower(username); autogenerate then
# leaves them alone, which is what we want, so its warning is noise.
warnings.filterwarnings("ignore", message="Skipped unsupported reflection of expression-based")

config = context.config
target_metadata = metadata

# Options shared by online and offline runs; compare_* make autogenerate and `alembic check`
# notice type changes (String lengths, timezone) and server default changes, not just columns.
CONFIGURE_OPTS = {
    "target_metadata": target_metadata,
    "compare_type": True,
    "compare_server_default": True,
}

# Code that runs migrations in-process (aiotutorial.migrate, tests, the app) sets
# configure_logger to False so that the application's logging is left alone.
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def database_url() -> str:
    """The URL to migrate: -x url, a URL set by code, DATABASE_URL, else the embedded cluster."""
    url = context.get_x_argument(as_dictionary=True).get("url")
    if url:
        return url
    url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
    if url:
        return url
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    from aiotutorial.pgcluster import default_database_url

    return default_database_url()


def run_migrations_offline() -> None:
    """Emit the migration SQL to stdout (`alembic upgrade head --sql`) without a database."""
    context.configure(
        url=database_url(),
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        **CONFIGURE_OPTS,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_on(connection: Connection) -> None:
    """Run the migrations on an open connection, in one transaction (PostgreSQL DDL is)."""
    context.configure(connection=connection, **CONFIGURE_OPTS)
    with context.begin_transaction():
        context.run_migrations()


def cannot_connect(url: str, error: exc.OperationalError) -> NoReturn:
    """Report a database that cannot be reached in one line, not a traceback through SQLAlchemy.

    From the alembic command line: that line on stderr and exit status 1 (`alembic --raiseerr`
    still gets the traceback). From code (aiotutorial.migrate, tests): a CommandError.
    """
    from aiotutorial.pgcluster import connection_failure

    message = connection_failure(url, error)
    options = config.cmd_opts
    if options is not None and getattr(options, "raiseerr", False):
        raise error
    if options is not None:
        print(f"alembic: {message}", file=sys.stderr)
        raise SystemExit(1)
    raise CommandError(message) from error


def run_migrations_online() -> None:
    """Run the migrations on a connection given by the caller, or on a fresh one to the URL."""
    connection = config.attributes.get("connection")
    if connection is not None:
        run_migrations_on(connection)
        return
    url = database_url()
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        try:
            connection = engine.connect()
        except exc.OperationalError as error:
            cannot_connect(url, error)
        with connection:
            run_migrations_on(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
