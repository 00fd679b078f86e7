"""Files the config names are checked by ``dripd --check-config`` and at start (issue 20.6), and
the config's types are strict in the real process (issue 21.6): exit 78 naming each key, every
problem in one run, never a traceback."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.integration.daemon_process import DRIPD, DripdProcess, MakeDripd, fast_mailbox, free_port


def run(process: DripdProcess, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``dripd --check-config`` (or a start, without the flag) on the process's config file."""
    import os

    clean = {k: v for k, v in os.environ.items() if k not in ("CREDENTIALS_DIRECTORY", "LISTEN_FDS")}
    return subprocess.run([str(DRIPD), *args, "-c", str(process.config_path)], capture_output=True, text=True,
                          timeout=30, cwd=process.root, env={**clean, **(env or {})})


def errors(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert "Traceback" not in result.stderr, result.stderr
    return [line.removeprefix("dripd: config error: ") for line in result.stderr.splitlines()
            if line.startswith("dripd: config error: ")]


def smtp_box(root: Path, **table: Any) -> dict[str, Any]:
    box = {k: v for k, v in fast_mailbox(root, "smtp").items() if k != "maildir"}
    box.update(transport="smtp", smtp={"host": "127.0.0.1", "port": free_port(), "security": "none", **table})
    return box


def test_missing_files_fail_check_config_and_start_with_78_naming_each_key(
        tmp_path: Path, dripd_process: MakeDripd) -> None:
    (tmp_path / "short.key").write_bytes(b"short\n")
    not_a_dir = tmp_path / "plain-file"
    not_a_dir.write_text("x")
    mailboxes = [fast_mailbox(tmp_path, maildir={"path": str(not_a_dir / "outbox")}),
                 smtp_box(tmp_path, username="u", password_file=str(tmp_path / "no-password"))]
    process = dripd_process(tmp_path, mailboxes=mailboxes, daemon={"state_dir": str(not_a_dir)},
                            api={"token_files": [str(tmp_path / "no-token")]},
                            extra={"tracking": {"listen": f"127.0.0.1:{free_port()}", "base_url": "https://t.example",
                                                "secret_file": str(tmp_path / "short.key")}})
    expected = [
        f"daemon.state_dir: {not_a_dir} exists and is not a directory",
        "tracking.secret_file: the tracking secret " + str(tmp_path / "short.key") + " is shorter than 16 bytes",
        f"api.token_files[0]: {tmp_path / 'no-token'} does not exist",
        f"mailboxes[0].maildir.path: {not_a_dir / 'outbox'} cannot be created: {not_a_dir} is not a directory",
        f"mailboxes[1].smtp.password_file: {tmp_path / 'no-password'} does not exist",
    ]
    for args in (["--check-config"], []):
        result = run(process, *args)
        assert result.returncode == 78, result.stderr
        assert errors(result) == expected


def test_a_missing_secret_file_and_password_env(tmp_path: Path, dripd_process: MakeDripd) -> None:
    process = dripd_process(tmp_path, mailboxes=[fast_mailbox(tmp_path), smtp_box(
        tmp_path, username="u", password_env="DRIPD_TEST_UNSET_PASSWORD")],
        extra={"tracking": {"listen": f"127.0.0.1:{free_port()}", "base_url": "https://t.example",
                            "secret_file": str(tmp_path / "absent.key")}})
    result = run(process, "--check-config")
    assert result.returncode == 78
    assert errors(result) == [
        f"tracking.secret_file: cannot read the tracking secret {tmp_path / 'absent.key'}: No such file or directory",
        "mailboxes[1].smtp.password_env: the environment variable DRIPD_TEST_UNSET_PASSWORD is not set",
    ]
    # Supplied, both are fine.
    (tmp_path / "absent.key").write_bytes(b"0123456789abcdef0123")
    result = run(process, "--check-config", env={"DRIPD_TEST_UNSET_PASSWORD": "pw"})
    assert result.returncode == 0, result.stderr


def test_a_socket_in_a_missing_directory_is_refused_not_created(tmp_path: Path, dripd_process: MakeDripd) -> None:
    missing = tmp_path / "no-such-run"
    process = dripd_process(tmp_path, daemon={"socket": str(missing / "dripd.sock")})
    for args in (["--check-config"], []):
        result = run(process, *args)
        assert result.returncode == 78
        assert errors(result) == [f"daemon.socket: the directory {missing} does not exist "
                                  "(create it, or use the state_dir)"]
    assert not missing.exists()
    # In the state_dir (which dripd creates) it is fine: the shipped example does this.
    process.write_config({**process.config, "daemon": {**process.config["daemon"],
                                                       "socket": str(process.state_dir / "dripd.sock")}})
    assert run(process, "--check-config").returncode == 0


@pytest.mark.parametrize(("line", "expected"), [
    ('hourly_cap = "10"', "mailboxes[0].hourly_cap: must be an integer (no quotes, not true/false)"),
    ("hourly_cap = true", "mailboxes[0].hourly_cap: must be an integer (no quotes, not true/false)"),
    ('jitter_seconds = "5"', "mailboxes[0].jitter_seconds: must be a number (no quotes)"),
    ('warmup_start = "2026-11-01"',
     "mailboxes[0].warmup_start: must be a TOML date such as 2026-11-01 (no quotes, no time)"),
])
def test_strict_types_at_check_config(tmp_path: Path, line: str, expected: str) -> None:
    path = tmp_path / "dripd.toml"
    path.write_text(f"[daemon]\nstate_dir = 5\n[[mailboxes]]\nid = 'sales'\naddress = 'a@example.com'\n{line}\n"
                    f"[mailboxes.maildir]\npath = '{tmp_path / 'outbox'}'\n")
    result = subprocess.run([str(DRIPD), "--check-config", "-c", str(path)], capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 78
    assert errors(result) == ["daemon.state_dir: must be a path (a non-empty string)", expected]


def test_an_http_tracking_base_warns_at_check_config(tmp_path: Path, dripd_process: MakeDripd) -> None:
    (tmp_path / "t.key").write_bytes(b"0123456789abcdef0123")
    process = dripd_process(tmp_path, extra={"tracking": {"listen": f"127.0.0.1:{free_port()}",
                                                          "base_url": "http://t.example",
                                                          "secret_file": str(tmp_path / "t.key")}})
    result = run(process, "--check-config")
    assert result.returncode == 0, result.stderr
    assert "dripd: warning: tracking.base_url: is http://, so messages carry no one-click unsubscribe" in result.stderr
