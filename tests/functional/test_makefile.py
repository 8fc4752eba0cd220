"""The Makefile's own parts: `make help`, the first install's progress, what each target
installs (serving for `make run`, the test tools for `make test` and `make lint`), the pgserver
extra.

The install and `db` recipes run in a scratch copy of the Makefile with a stand-in Python
(``PYTHON=...``) that records what it is asked to do, so nothing is installed or started.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import unittest
from pathlib import Path

from harness.paths import PROJECT_ROOT

ROOT = PROJECT_ROOT
MAKEFILE = ROOT / "Makefile"

# The stand-in for python: `-c` runs the real one; `-m venv DIR` makes DIR/bin/python (this
# script again); `-m pip ...` prints what pip prints unless --quiet; `-m aiotutorial.pgcluster
# bindir` exits 3 ("no PostgreSQL") when FAKE_NO_POSTGRESQL is set; `-c "import redis"` fails
# when FAKE_NO_REDIS is set. Every other call is logged.
FAKE_PYTHON = f"""\
#!{sys.executable}
import json, os, shutil, sys
args = sys.argv[1:]
if args == ["-c", "import redis"] and os.environ.get("FAKE_NO_REDIS"):
    sys.exit(1)
if args[:1] == ["-c"]:
    os.execv({sys.executable!r}, [{sys.executable!r}, *args])
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps(args) + "\\n")
if args[:2] == ["-m", "venv"]:
    os.makedirs(os.path.join(args[2], "bin"))
    shutil.copy(__file__, os.path.join(args[2], "bin", "python"))
elif args[:3] == ["-m", "pip", "install"] and "--quiet" not in args:
    print("Collecting something-from-pip")
elif args[:3] == ["-m", "aiotutorial.pgcluster", "bindir"]:
    sys.exit(3 if os.environ.get("FAKE_NO_POSTGRESQL") else 0)
"""


def _phony_targets(makefile: str) -> list[str]:
    targets: list[str] = []
    for line in makefile.splitlines():
        if line.startswith(".PHONY:"):
            targets += line.split(":", 1)[1].split()
    return targets


@unittest.skipUnless(shutil.which("make"), "make is not installed")
class HelpTest(unittest.TestCase):
    def test_help_lists_every_target_with_one_line(self) -> None:
        result = subprocess.run(
            ["make", "--no-print-directory", "help"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        described = {}
        for line in result.stdout.splitlines():
            match = re.fullmatch(r"make (\S+) +(\S.*)", line)
            self.assertIsNotNone(match, f"not 'make TARGET  what it does': {line!r}")
            assert match is not None
            described[match[1]] = match[2]
        targets = _phony_targets(MAKEFILE.read_text())
        for expected in ("run", "test", "test-min", "db", "db-stop", "db-status", "psql"):
            self.assertIn(expected, targets)
        self.assertEqual(sorted(described), sorted(set(targets)))


@unittest.skipUnless(shutil.which("make"), "make is not installed")
class InstallTest(unittest.TestCase):
    """The recipes that install things, run with the stand-in Python."""

    def setUp(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="aiotutorial-maketest-"))
        self.addCleanup(shutil.rmtree, self.tmp, True)
        shutil.copy(MAKEFILE, self.tmp / "Makefile")
        (self.tmp / "setup.py").write_text("")
        self.python = self.tmp / "fake-python"
        self.python.write_text(textwrap.dedent(FAKE_PYTHON))
        self.python.chmod(0o755)
        self.log = self.tmp / "calls.jsonl"

    def make(self, *targets: str, **env: str) -> str:
        environ = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("MAKE") and key not in ("MFLAGS", "DATABASE_URL", "BUS_URL")
        }
        result = subprocess.run(
            ["make", "--no-print-directory", f"PYTHON={self.python}", *targets],
            cwd=self.tmp,
            env={**environ, "FAKE_LOG": str(self.log), **env},
            capture_output=True,
            text=True,
            timeout=60,
        )
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        return result.stdout + result.stderr

    def calls(self) -> list[list[str]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def pip_installs(self) -> list[str]:
        """What each ``pip install`` so far installed (its last argument), in order."""
        return [call[-1] for call in self.calls() if call[:3] == ["-m", "pip", "install"]]

    def test_first_install_shows_its_progress_and_the_second_is_quiet(self) -> None:
        output = self.make(".venv/.installed")
        self.assertIn("creating the virtualenv", output)
        self.assertIn("installing aiotutorial and what it needs to serve", output)
        self.assertIn("about 20 s", output)
        self.assertIn("Collecting something-from-pip", output)  # pip's own output comes through
        self.assertRegex(output, r"\.venv is ready to serve \(\d+ s\)")
        self.assertIn(["-m", "venv", ".venv"], self.calls())
        self.assertEqual(self.pip_installs(), ["pip", "."])

        calls = len(self.calls())
        output = self.make(".venv/.installed")
        self.assertEqual(output.strip(), "make: '.venv/.installed' is up to date.")
        self.assertEqual(len(self.calls()), calls)

    def test_run_installs_what_serving_needs_and_no_test_tools(self) -> None:
        self.make(".venv/.installed")
        # A stand-in gunicorn, so that `make run` returns: it records its call like python.
        gunicorn = self.tmp / ".venv" / "bin" / "gunicorn"
        shutil.copy(self.python, gunicorn)
        output = self.make("run")
        self.assertEqual(self.calls()[-1], ["--paste", "development.ini"])
        self.assertEqual(self.pip_installs(), ["pip", "."])
        self.assertNotIn("test and lint tools", output)

    def test_run_installs_the_redis_client_when_bus_url_names_redis(self) -> None:
        self.make(".venv/.installed")
        shutil.copy(self.python, self.tmp / ".venv" / "bin" / "gunicorn")
        self.make("run", FAKE_NO_REDIS="1")  # no BUS_URL: nothing more
        self.assertEqual(self.pip_installs(), ["pip", "."])
        output = self.make("run", FAKE_NO_REDIS="1", BUS_URL="redis://127.0.0.1:6379/0")
        self.assertIn("BUS_URL names Redis", output)
        self.assertEqual(self.pip_installs(), ["pip", ".", ".[redis]"])
        self.assertEqual(self.calls()[-1], ["--paste", "development.ini"])
        self.make("run", BUS_URL="redis://127.0.0.1:6379/0")  # the client is there: nothing
        self.assertEqual(self.pip_installs(), ["pip", ".", ".[redis]"])

    def test_lint_installs_the_test_tools_once_after_the_package(self) -> None:
        output = self.make(".venv/.testing-installed")
        self.assertEqual(self.pip_installs(), ["pip", ".", ".[testing]"])
        self.assertIn("installing aiotutorial and what it needs to serve", output)
        self.assertIn("installing the test and lint tools", output)
        self.assertIn("playwright", output)
        self.assertRegex(output, r"the test and lint tools are ready \(\d+ s\)")

        output = self.make(".venv/.testing-installed")
        self.assertEqual(output.strip(), "make: '.venv/.testing-installed' is up to date.")
        self.assertEqual(self.pip_installs(), ["pip", ".", ".[testing]"])

        # setup.py changed (a new dependency, say): both are installed again, in order.
        future = (self.tmp / ".venv" / ".testing-installed").stat().st_mtime + 10
        os.utime(self.tmp / "setup.py", (future, future))
        self.make(".venv/.testing-installed")
        self.assertEqual(self.pip_installs()[3:], ["pip", ".", ".[testing]"])

    def test_test_installs_what_the_bench_smoke_tests_start(self) -> None:
        # `make -n` prints the recipes it would run: nothing is run, nothing installed with apt.
        self.make(".venv/.testing-installed")
        test = self.make("-n", "test")
        run = self.make("-n", "run")
        self.assertIn("-e '.[bench]'", test)
        self.assertIn("scripts/ensure-redis", test)
        self.assertNotIn(".[bench]", run)
        self.assertNotIn("ensure-redis", run)

    def test_db_installs_the_pgserver_extra_only_without_postgresql(self) -> None:
        self.make(".venv/.installed")
        pgserver = ["-m", "pip", "install", "--disable-pip-version-check", "-e", ".[pgserver]"]

        output = self.make("db")
        self.assertIn(["-m", "aiotutorial.pgcluster", "bindir"], self.calls())
        self.assertNotIn(pgserver, self.calls())
        self.assertNotIn("pgserver", output)

        output = self.make("db", FAKE_NO_POSTGRESQL="1")
        self.assertIn(pgserver, self.calls())
        self.assertIn("no PostgreSQL on this machine", output)
        self.assertIn("pip install -e '.[pgserver]'", output)
        self.assertEqual(self.calls()[-2], ["-m", "aiotutorial.pgcluster", "ensure"])

    def test_db_with_database_url_looks_for_no_postgresql(self) -> None:
        self.make(".venv/.installed")
        self.make("db", DATABASE_URL="postgresql://app@db.example/app", FAKE_NO_POSTGRESQL="1")
        self.assertNotIn(["-m", "aiotutorial.pgcluster", "bindir"], self.calls())
        self.assertIn(["-m", "aiotutorial.pgcluster", "ensure"], self.calls())


if __name__ == "__main__":
    unittest.main()
