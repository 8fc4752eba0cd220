"""The embedded default PostgreSQL: a private cluster kept under ``var/pg/`` of the project.

Without any configuration the application uses a PostgreSQL cluster that lives in the
project tree (``var/pg/data``) and listens only on a unix socket in ``var/pg/run``, so that
two clones of the project on one machine never compete for a TCP port.  Setting
``DATABASE_URL`` (and ``TEST_DATABASE_URL`` for the tests) points everything at an external
server instead.

The package, one concern a module:

``binaries``     where PostgreSQL's programs are (the machine's, or the ``pgserver`` wheel's)
``osuser``       the OS account the server runs as (PostgreSQL refuses root)
``processes``    which processes are a cluster's server (lock files against ``/proc``)
``serverfiles``  the settings file rewritten at every start, the server log
``cluster``      one cluster's lifecycle: :class:`Cluster`, :func:`default_cluster`
``databases``    URLs, creating databases, waiting for a server, :func:`ensure_running`
``cli``          ``python -m aiotutorial.pgcluster ensure|stop|status|url|createdb|bindir|psql``

Importing it has no side effect: nothing is started, created, installed or looked up until a
function is called.  Only the standard library is used, except psycopg2 for connecting.
"""

from .binaries import find_bin_dir
from .cli import main
from .cluster import DEFAULT_DBNAME, Cluster, default_cluster
from .common import ClusterError, project_root
from .databases import (
    connection_failure,
    default_database_url,
    ensure_database,
    ensure_running,
    testing_database_url,
    url_without_password,
    wait_for_server,
)
from .serverfiles import SETTINGS

__all__ = [
    "DEFAULT_DBNAME",
    "SETTINGS",
    "Cluster",
    "ClusterError",
    "connection_failure",
    "default_cluster",
    "default_database_url",
    "ensure_database",
    "ensure_running",
    "find_bin_dir",
    "main",
    "project_root",
    "testing_database_url",
    "url_without_password",
    "wait_for_server",
]
