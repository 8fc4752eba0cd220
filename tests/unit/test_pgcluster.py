"""Tests of aiotutorial.pgcluster that start no PostgreSQL: the URLs it makes and reads, and how
it finds the programs of a PostgreSQL (the machine's, or the pgserver wheel's).

tests/functional/test_pgcluster.py runs the clusters themselves, throwaway ones.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import shutil
import sys
import tempfile
import unittest
from pathlib import Path
from unittest import mock

from aiotutorial import pgcluster
from aiotutorial.pgcluster import binaries


class UrlTest(unittest.TestCase):
    def test_default_is_the_embedded_cluster(self) -> None:
        with mock.patch.dict(os.environ, clear=False) as environ:
            environ.pop("DATABASE_URL", None)
            environ.pop("TEST_DATABASE_URL", None)
            socket_dir = pgcluster.project_root() / "var" / "pg" / "run"
            self.assertEqual(
                pgcluster.default_database_url(),
                f"postgresql://aiotutorial@/aiotutorial?host={socket_dir}",
            )
            self.assertEqual(
                pgcluster.testing_database_url(),
                f"postgresql://aiotutorial@/aiotutorial_testing?host={socket_dir}",
            )

    def test_database_url_wins(self) -> None:
        url = "postgresql+psycopg2://app:s%40cret@db.example:5433/appdb?sslmode=disable"
        with mock.patch.dict(os.environ, {"DATABASE_URL": url}) as environ:
            environ.pop("TEST_DATABASE_URL", None)
            self.assertEqual(pgcluster.default_database_url(), url)
            self.assertEqual(
                pgcluster.testing_database_url(),
                "postgresql+psycopg2://app:s%40cret@db.example:5433/appdb_testing?sslmode=disable",
            )

    def test_test_database_url_wins(self) -> None:
        environ = {
            "DATABASE_URL": "postgresql://app@db.example/appdb",
            "TEST_DATABASE_URL": "postgresql://tester@db.example/scratch",
        }
        with mock.patch.dict(os.environ, environ):
            self.assertEqual(pgcluster.default_database_url(), environ["DATABASE_URL"])
            self.assertEqual(pgcluster.testing_database_url(), environ["TEST_DATABASE_URL"])

    def test_constructing_a_cluster_touches_nothing(self) -> None:
        tmp = tempfile.mkdtemp(prefix="aiotutorial-pgtest-")
        self.addCleanup(shutil.rmtree, tmp, True)
        cluster = pgcluster.Cluster(Path(tmp) / "pg")
        self.assertEqual(cluster.url("x"), f"postgresql://aiotutorial@/x?host={tmp}/pg/run")
        self.assertEqual(cluster.status(), "not initialised")
        self.assertFalse(cluster.stop())
        self.assertFalse((Path(tmp) / "pg").exists())


class BinariesTest(unittest.TestCase):
    """Where PostgreSQL's programs come from; pgcluster never installs them itself."""

    def setUp(self) -> None:
        binaries.find_bin_dir.cache_clear()
        self.addCleanup(binaries.find_bin_dir.cache_clear)
        environ = mock.patch.dict(os.environ)
        environ.start()
        self.addCleanup(environ.stop)
        os.environ.pop("PG_BIN", None)
        # As on a machine without PostgreSQL: no pg_config, no /usr/lib/postgresql, no pg_ctl.
        machine = mock.patch.object(binaries, "_machine_bin_dirs", return_value=iter(()))
        machine.start()
        self.addCleanup(machine.stop)
        # Nothing may be run, pip least of all.
        run = mock.patch("subprocess.run", side_effect=AssertionError("ran a program"))
        run.start()
        self.addCleanup(run.stop)

    def fake_pgserver(self) -> Path:
        """A package named pgserver on sys.path, with pginstall/bin as the wheel has it."""
        tmp = Path(tempfile.mkdtemp(prefix="aiotutorial-pgtest-"))
        self.addCleanup(shutil.rmtree, tmp, True)
        bin_dir = tmp / "pgserver" / "pginstall" / "bin"
        bin_dir.mkdir(parents=True)
        (tmp / "pgserver" / "__init__.py").write_text("")
        for name in ("pg_ctl", "initdb", "postgres"):
            (bin_dir / name).write_text("#!/bin/sh\n")
            (bin_dir / name).chmod(0o755)
        sys.path.insert(0, str(tmp))
        self.addCleanup(sys.path.remove, str(tmp))
        self.addCleanup(sys.modules.pop, "pgserver", None)
        importlib.invalidate_caches()
        return bin_dir

    def test_without_postgresql_it_says_what_to_install_and_installs_nothing(self) -> None:
        with mock.patch.object(binaries.importlib.util, "find_spec", return_value=None):
            with self.assertRaises(binaries.NoServerPrograms) as caught:
                pgcluster.find_bin_dir()
        message = str(caught.exception)
        self.assertIn("pgserver package is not installed", message)
        self.assertIn(f"{sys.executable} -m pip install -e '.[pgserver]'", message)
        self.assertIn(str(pgcluster.project_root()), message)
        self.assertIn("apt-get install postgresql", message)
        self.assertIn("PG_BIN", message)

    def test_uses_pgserver_when_it_is_importable(self) -> None:
        bin_dir = self.fake_pgserver()
        self.assertEqual(pgcluster.find_bin_dir(), bin_dir)

    def test_bindir_command_exits_3_without_postgresql(self) -> None:
        stdout, stderr = io.StringIO(), io.StringIO()
        with (
            mock.patch.object(binaries.importlib.util, "find_spec", return_value=None),
            contextlib.redirect_stdout(stdout),
            contextlib.redirect_stderr(stderr),
        ):
            self.assertEqual(pgcluster.main(["bindir"]), 3)
        self.assertEqual(stdout.getvalue(), "")
        self.assertIn("pip install -e '.[pgserver]'", stderr.getvalue())
        self.assertEqual(len(stderr.getvalue().splitlines()), 1)

    def test_bindir_command_prints_the_directory(self) -> None:
        bin_dir = self.fake_pgserver()
        stdout = io.StringIO()
        with contextlib.redirect_stdout(stdout):
            self.assertEqual(pgcluster.main(["bindir"]), 0)
        self.assertEqual(stdout.getvalue(), f"{bin_dir}\n")

    def test_a_wrong_pg_bin_is_an_error_not_a_missing_postgresql(self) -> None:
        os.environ["PG_BIN"] = "/nonexistent"
        with contextlib.redirect_stderr(io.StringIO()):
            self.assertEqual(pgcluster.main(["bindir"]), 1)


if __name__ == "__main__":
    unittest.main()
