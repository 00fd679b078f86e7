"""Fixtures the integration tests share: real servers and the real daemon.

- ``imap_server``: one Debian Dovecot for the session (STARTTLS offered, plain IMAP allowed);
  each test takes a fresh user (``imap_server.new_user()``), whose Maildir starts empty.
- ``sink``: the scripted aiosmtpd sink (a separate process), accepting everything, per test.
- ``dripd``: the real ``dripd`` process on the default config (one Maildir mailbox "sales"),
  one per module; a module needing another config defines its own ``dripd`` fixture.
- ``api``: an HTTP client on that daemon's Unix socket.
- ``dripd_process``: makes ``DripdProcess`` objects for a test that starts, signals, kills and
  restarts its own daemon; any still running when the test ends is killed, so a failing test
  never leaves a daemon behind.

The in-process daemon in simulated time (``make_config``, ``running_daemon``, the
thread-aware ``autojump_clock``) is in ``tests/conftest.py``. The helpers these build on stay
plain modules: ``servers`` (Dovecot, SMTP sinks, the OAuth2 mock), ``daemon_process``
(``DripdProcess``), ``waiting`` (the one ``wait_until``), ``simulated`` (scripted in-process
runs), ``plugin_harness`` (transport and detector on their own), ``api_client`` and
``store_reader``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from tests.integration.daemon_process import DripdProcess, MakeDripd, running_dripd
from tests.integration.servers import Dovecot, SmtpSink, dovecot, smtp_sink


@pytest.fixture(scope="session")
def imap_server() -> Iterator[Dovecot]:
    with dovecot(tls=True) as server:
        yield server


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with smtp_sink() as server:
        yield server


@pytest.fixture(scope="module")
def dripd(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DripdProcess]:
    with running_dripd(tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])) as process:
        yield process


@pytest.fixture
def api(dripd: DripdProcess) -> Iterator[httpx.Client]:
    with dripd.client() as client:
        yield client


@pytest.fixture
def dripd_process() -> Iterator[MakeDripd]:
    made: list[DripdProcess] = []

    def make(root: Path, **kwargs: Any) -> DripdProcess:
        process = DripdProcess(root, **kwargs)
        made.append(process)
        return process

    yield make
    for process in made:
        process.kill()
