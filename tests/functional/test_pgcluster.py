"""Tests of aiotutorial.pgcluster on a throwaway cluster in a temporary directory, and of what it
says when no PostgreSQL answers.

What starts no PostgreSQL (URLs, finding the programs) is tests/unit/test_pgcluster.py's.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path
from unittest import mock

import psycopg2

from aiotutorial import pgcluster
from aiotutorial.pgcluster import databases
from harness.cluster import ThrowawayCluster


def _database_names(url: str) -> list[str]:
    connection = psycopg2.connect(url)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT datname FROM pg_database ORDER BY datname")
            return [row[0] for row in cursor.fetchall()]
    finally:
        connection.close()


class ClusterTest(unittest.TestCase):
    """One cluster for the whole class (harness/cluster.py, no database made in it), stopped
    and removed at the end."""

    throwaway: ThrowawayCluster
    cluster: pgcluster.Cluster

    @classmethod
    def setUpClass(cls) -> None:
        # mkdtemp makes a mode 0700 directory: as root, the cluster code must make it
        # traversable for the server user.
        cls.throwaway = ThrowawayCluster(prefix="aiotutorial-pgtest-", database=None)
        try:
            cls.cluster = cls.throwaway.create().cluster
        except BaseException:
            cls.throwaway.destroy()
            raise

    @classmethod
    def tearDownClass(cls) -> None:
        cls.throwaway.destroy()

    def url(self, dbname: str = "postgres") -> str:
        return self.cluster.url(dbname)

    def test_layout_and_status(self) -> None:
        self.assertTrue(self.cluster.is_initialised())
        self.assertTrue(self.cluster.is_running())
        self.assertEqual(self.cluster.status(), "running")
        self.assertTrue((self.cluster.data_dir / "PG_VERSION").is_file())
        self.assertTrue((self.cluster.socket_dir / ".s.PGSQL.5432").exists())
        self.assertEqual(self.cluster.socket_dir.stat().st_mode & 0o777, 0o700)
        owner = pwd.getpwuid(self.cluster.base_dir.stat().st_uid).pw_name
        self.assertEqual(owner, self.cluster.server_user)
        if os.geteuid() == 0:
            self.assertNotEqual(self.cluster.server_user, "root")
        # Idempotent: nothing to do the second time.
        self.assertFalse(self.cluster.init())
        self.assertFalse(self.cluster.start())

    def test_accepts_connections_on_the_socket_only(self) -> None:
        connection = psycopg2.connect(self.url())
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
                self.assertEqual(cursor.fetchone(), (1,))
                cursor.execute("SHOW listen_addresses")
                self.assertEqual(cursor.fetchone(), ("",))
                cursor.execute("SELECT current_user, current_setting('server_encoding')")
                self.assertEqual(cursor.fetchone(), ("aiotutorial", "UTF8"))
        finally:
            connection.close()

    def test_url_works_with_sqlalchemy(self) -> None:
        import sqlalchemy as sa

        engine = sa.create_engine(self.url(), poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as connection:
                self.assertEqual(connection.execute(sa.text("SELECT 2")).scalar(), 2)
        finally:
            engine.dispose()

    def test_ensure_database_creates_once(self) -> None:
        name = 'ensure me "quoted"'
        self.assertNotIn(name, _database_names(self.url()))
        pgcluster.ensure_database(self.url(name))
        self.assertEqual(_database_names(self.url()).count(name), 1)
        pgcluster.ensure_database(self.url(name))  # no error the second time
        self.assertEqual(_database_names(self.url()).count(name), 1)
        connection = psycopg2.connect(self.url(name))
        connection.close()

    def test_restart_keeps_data(self) -> None:
        pgcluster.ensure_database(self.url("restart"))
        connection = psycopg2.connect(self.url("restart"))
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("CREATE TABLE survivor (id integer PRIMARY KEY, name text)")
            cursor.execute("INSERT INTO survivor VALUES (1, 'still here')")
        connection.close()

        try:
            self.assertTrue(self.cluster.stop())
            self.assertFalse(self.cluster.is_running())
            self.assertEqual(self.cluster.status(), "stopped")
            self.assertFalse(self.cluster.stop())  # stopping twice is no error
            with self.assertRaises(psycopg2.OperationalError):
                psycopg2.connect(self.url("restart"), connect_timeout=2)
        finally:
            self.cluster.start()

        self.assertTrue(self.cluster.is_running())
        connection = psycopg2.connect(self.url("restart"))
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT name FROM survivor WHERE id = 1")
                self.assertEqual(cursor.fetchone(), ("still here",))
        finally:
            connection.close()

    def test_start_survives_lock_files_with_a_reused_pid(self) -> None:
        # After a reboot, the pid in a leftover postmaster.pid may belong to another live
        # process of the server user, which makes a bare `pg_ctl start` fail.
        self.cluster.stop()
        account = pwd.getpwnam(self.cluster.server_user)
        user = account.pw_uid if os.geteuid() == 0 else None
        sleeper = subprocess.Popen(["sleep", "60"], user=user, cwd="/")
        try:
            lines = [
                str(sleeper.pid),
                str(self.cluster.data_dir),
                "1700000000",
                "5432",
                str(self.cluster.socket_dir),
                "",
                "  5432001         1",
                "ready   ",
            ]
            text = "\n".join(lines) + "\n"
            for path in (
                self.cluster.data_dir / "postmaster.pid",
                self.cluster.socket_dir / ".s.PGSQL.5432.lock",
            ):
                path.write_text(text)
                os.chown(path, account.pw_uid, account.pw_gid)
            self.assertFalse(self.cluster.is_running())
            self.assertEqual(self.cluster.status(), "stopped")
            self.assertTrue(self.cluster.start())
            self.assertNotEqual(self.cluster.pid(), sleeper.pid)
        finally:
            sleeper.kill()
            sleeper.wait()
            self.cluster.start()
        connection = psycopg2.connect(self.url())
        connection.close()


class StartFailureTest(unittest.TestCase):
    def test_bad_setting_reports_the_log(self) -> None:
        tmp = tempfile.mkdtemp(prefix="aiotutorial-pgtest-")
        self.addCleanup(shutil.rmtree, tmp, True)
        cluster = pgcluster.Cluster(
            Path(tmp) / "pg", settings={**pgcluster.SETTINGS, "shared_buffers": "lots"}
        )
        self.addCleanup(cluster.stop, "immediate")
        with self.assertRaises(pgcluster.ClusterError) as caught:
            cluster.start()
        self.assertIn("did not start", str(caught.exception))
        self.assertIn("shared_buffers", str(caught.exception))
        self.assertEqual(cluster.status(), "stopped")


class ConnectionFailureTest(unittest.TestCase):
    """Failing to connect is said in one line: which URL (no password), and what to do."""

    def test_password_is_hidden(self) -> None:
        hide = pgcluster.url_without_password
        self.assertEqual(
            hide("postgresql+psycopg2://app:s%40cret@db.example:5433/appdb?sslmode=disable"),
            "postgresql+psycopg2://app:***@db.example:5433/appdb?sslmode=disable",
        )
        self.assertEqual(
            hide("postgresql://app@/appdb?host=/run/pg&password=s3cret"),
            "postgresql://app@/appdb?host=/run/pg&password=***",
        )
        self.assertEqual(hide("postgresql://app@/appdb?host=/x"), "postgresql://app@/appdb?host=/x")

    def failure(self, url: str) -> str:
        with self.assertRaises(psycopg2.OperationalError) as caught:
            psycopg2.connect(url, connect_timeout=2)
        return pgcluster.connection_failure(url, caught.exception)

    def test_nothing_listening_on_the_socket(self) -> None:
        tmp = tempfile.mkdtemp(prefix="aiotutorial-pgtest-")
        self.addCleanup(shutil.rmtree, tmp, True)
        url = f"postgresql://ann:s3cret@/appdb?host={tmp}"
        message = self.failure(url)
        self.assertEqual(
            message,
            f"database not reachable at postgresql://ann:***@/appdb?host={tmp} (No such file or "
            "directory): is that server running? (`make db` starts the project's embedded one)",
        )

    def test_the_embedded_cluster_stopped(self) -> None:
        tmp = tempfile.mkdtemp(prefix="aiotutorial-pgtest-")
        self.addCleanup(shutil.rmtree, tmp, True)
        stopped = pgcluster.Cluster(Path(tmp) / "pg")
        with mock.patch.object(databases, "default_cluster", return_value=stopped):
            message = self.failure(stopped.url())
        self.assertTrue(message.startswith(f"database not reachable at {stopped.url()} ("))
        self.assertTrue(message.endswith("): start it with `make db`"), message)

    def test_ensure_database_says_it_in_one_line(self) -> None:
        tmp = tempfile.mkdtemp(prefix="aiotutorial-pgtest-")
        self.addCleanup(shutil.rmtree, tmp, True)
        with self.assertRaises(pgcluster.ClusterError) as caught:
            pgcluster.ensure_database(f"postgresql://ann:s3cret@/appdb?host={tmp}")
        message = str(caught.exception)
        self.assertEqual(len(message.splitlines()), 1)
        self.assertIn(f"database not reachable at postgresql://ann:***@/appdb?host={tmp}", message)
        self.assertNotIn("s3cret", message)


class PackageTest(unittest.TestCase):
    def test_command_line_runs_as_a_module(self) -> None:
        environ = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
        result = subprocess.run(
            [sys.executable, "-m", "aiotutorial.pgcluster", "url"],
            capture_output=True,
            text=True,
            env=environ,
            cwd=pgcluster.project_root(),
            timeout=60,
            check=False,
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.strip(), pgcluster.default_cluster().url())


if __name__ == "__main__":
    unittest.main()
