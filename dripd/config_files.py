"""Are the files and directories the configuration names usable? Checked by ``--check-config``
and at start, so a missing secret stops the start with exit 78 naming the key (systemd's
``RestartPreventExitStatus=78`` then ends the restart loop) instead of a traceback, a paused
mailbox at the first send, or an API with no usable token.

Plugin tables take part through an optional ``unusable_files()`` method on their config model,
returning ``(key, rule)`` pairs; the helpers below are what they use.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from pydantic import BaseModel

from dripd.config import Config
from dripd.errors import ConfigError, DripdError


def readable_file_problem(path: Path, *, secret: bool = True) -> str | None:
    """Why ``path`` cannot serve as a file to read (None when it can). Never reads it out loud."""
    try:
        if not path.is_file():
            return f"{path} does not exist" if not path.exists() else f"{path} is not a file"
        with path.open("rb") as handle:
            data = handle.read(1 << 16)
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror}"
    if secret and not data.strip():
        return f"{path} is empty"
    return None


def directory_problem(path: Path) -> str | None:
    """Why dripd could neither use nor create the directory ``path`` (None when it can)."""
    if path.exists():
        if not path.is_dir():
            return f"{path} exists and is not a directory"
        if not os.access(path, os.W_OK | os.X_OK):
            return f"{path} is not writable (read-only, or not this user's)"
        return None
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        return f"{path} cannot be created: {parent} is not a directory"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"{path} cannot be created: {parent} is not writable"
    return None


def _socket_problem(config: Config, environ: Mapping[str, str]) -> str | None:
    if environ.get("LISTEN_FDS"):
        return None  # systemd hands over the socket; the configured path is not used
    directory = config.daemon.socket.parent
    if directory.absolute() == config.daemon.state_dir.absolute():
        return None  # dripd creates its state_dir, so a socket in it is fine
    if not directory.is_dir():
        # Not created on purpose: a typo would otherwise put the socket where dripctl never looks.
        return f"the directory {directory} does not exist (create it, or use the state_dir)"
    if not os.access(directory, os.W_OK | os.X_OK):
        return f"the directory {directory} is not writable by this user"
    return None


def _tracking_secret_problem(config: Config, environ: Mapping[str, str]) -> str | None:
    from dripd.tracking.tokens import load_secret

    try:
        load_secret(config.tracking.secret_file, dict(environ))
    except DripdError as exc:
        return exc.message
    return None


def _token_file_problem(path: Path) -> str | None:
    problem = readable_file_problem(path)
    if problem:
        return problem
    try:
        path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return f"{path} is not UTF-8 text"
    return None


def file_problems(config: Config, plugin_sections: Mapping[str, type[BaseModel]],
                  environ: Mapping[str, str] | None = None) -> list[ConfigError]:
    """Every file or directory the configuration names that dripd could not use, by key."""
    env = os.environ if environ is None else environ
    out: list[ConfigError] = []
    problem = directory_problem(config.daemon.state_dir)
    if problem:
        out.append(ConfigError("daemon.state_dir", problem))
    problem = _socket_problem(config, env)
    if problem:
        out.append(ConfigError("daemon.socket", problem))
    if config.tracking.listen:
        problem = _tracking_secret_problem(config, env)
        if problem:
            out.append(ConfigError("tracking.secret_file", problem))
    for index, path in enumerate(config.api.token_files):
        problem = _token_file_problem(path)
        if problem:
            out.append(ConfigError(f"api.token_files[{index}]", problem))
    for index, mailbox in enumerate(config.mailboxes):
        tables: dict[str, Any] = dict(mailbox.model_extra or {})
        tables.setdefault(mailbox.transport, {})
        for name, raw in tables.items():
            model = plugin_sections.get(name)
            check = getattr(model, "unusable_files", None) if model is not None else None
            if model is None or check is None:
                continue
            section = model.model_validate(raw)
            for key, rule in section.unusable_files():  # type: ignore[attr-defined]
                out.append(ConfigError(f"mailboxes[{index}].{name}.{key}", rule))
    return out


def config_warnings(config: Config) -> list[str]:
    """Settings that work but lose something the user probably wants (said at --check-config)."""
    out: list[str] = []
    base = config.tracking.base_url
    if base and base.startswith("http://"):
        out.append("tracking.base_url: is http://, so messages carry no one-click unsubscribe "
                   "(RFC 8058 needs an https:// URL; mailbox providers then show no unsubscribe button)")
    return out
