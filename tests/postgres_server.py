"""A real, temporary PostgreSQL server for the tests: Debian's ``postgresql`` binaries, a cluster
made with ``initdb`` in a temporary directory and run with ``pg_ctl``, reached over a Unix socket
in that directory (no TCP port to collide with another run).

``postgres_server()`` starts one cluster and yields a ``PostgresServer``; ``fresh_database()``
makes an empty database in it for one test, so tests never see each other's rows. A node's loss of
the database is simulated with ``stop()``/``start()`` on the same data directory.

PostgreSQL refuses to run as root, so under root (CI containers) every server command runs as
the ``postgres`` user that Debian's package creates, and the directory is handed to it.

The cluster runs with ``fsync = off``: these tests kill dripd processes, never the database's
machine, and PostgreSQL's own durability is not what is under test; it saves seconds per test.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

SUPERUSER = "dripd_test"
PASSWORD = "pg-secret-for-tests"  # the role's password: lets tests exercise password files too


def _bin_dir() -> Path:
    """Debian keeps the server programs out of PATH, under /usr/lib/postgresql/<major>/bin."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).resolve().parent
    raise RuntimeError("PostgreSQL's server programs are not installed (make deps-debian installs postgresql)")


def _as_server_user(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", "postgres", "--", *argv]


@dataclass
class PostgresServer:
    root: Path
    bin_dir: Path
    _names: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "run"

    def url(self, database: str = "postgres", *, password: bool = False) -> str:
        """A libpq URL over the Unix socket (``password=True`` puts the password inline)."""
        secret = f":{PASSWORD}" if password else ""
        return f"postgresql://{SUPERUSER}{secret}@/{database}?host={self.socket_dir}"

    def _run(self, argv: list[str]) -> None:
        result = subprocess.run(_as_server_user(argv), capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed ({result.returncode}): {result.stderr.strip() or result.stdout.strip()}")

    def start(self) -> None:
        self._run([str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-l", str(self.root / "server.log"),
                   "-w", "-t", "60", "start"])

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``immediate`` is the abrupt one: no checkpoint, clients cut off)."""
        self._run([str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", mode, "-w", "-t", "60", "stop"])

    def psql(self, sql: str, database: str = "postgres") -> str:
        result = subprocess.run([str(self.bin_dir / "psql"), "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                                 "-d", self.url(database), "-c", sql],
                                capture_output=True, text=True, timeout=60,
                                env={**os.environ, "PGPASSWORD": PASSWORD})
        if result.returncode != 0:
            raise RuntimeError(f"psql failed: {result.stderr.strip()}")
        return result.stdout.strip()

    def fresh_database(self) -> str:
        """An empty database of its own; returns its URL (password not inline)."""
        name = f"t{os.getpid()}_{next(self._names)}"
        self.psql(f"CREATE DATABASE {name}")
        return self.url(name)


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    bin_dir = _bin_dir()
    root = Path(tempfile.mkdtemp(prefix="dripd-pg-"))
    root.chmod(0o755)  # the postgres user must reach data/ and run/ under it
    server = PostgresServer(root=root, bin_dir=bin_dir)
    for sub in ("data", "run"):
        (root / sub).mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        for sub in ("data", "run"):
            shutil.chown(root / sub, "postgres")
    pwfile = root / "pwfile"
    pwfile.write_text(PASSWORD + "\n")
    pwfile.chmod(0o644)
    server._run([str(bin_dir / "initdb"), "-D", str(server.data_dir), "-U", SUPERUSER, "--pwfile", str(pwfile),
                 "--auth-local=scram-sha-256", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-instructions"])
    pwfile.unlink()
    with (server.data_dir / "postgresql.conf").open("a") as conf:
        conf.write(f"listen_addresses = ''\nunix_socket_directories = '{server.socket_dir}'\n"
                   "fsync = off\nfull_page_writes = off\nmax_connections = 200\n")
    # Local connections authenticate with the password (scram), as a deployment would. It is not
    # put in this process's environment: a daemon under test must find it through its own
    # configuration (a password file or its environment), or the test would prove nothing.
    server.start()
    try:
        yield server
    finally:
        try:
            server.stop("immediate")
        except RuntimeError:
            pass
        shutil.rmtree(root, ignore_errors=True)
