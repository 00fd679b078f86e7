"""``dripd``: run the daemon, or check a configuration file."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import trio
import trio_asyncio

from dripd import __version__, logs
from dripd.config import EX_CONFIG, Config, load_config
from dripd.config_files import config_warnings, file_problems
from dripd.config_load import problems_of
from dripd.daemon import Daemon
from dripd.errors import ConfigError, DripdError, PluginError
from dripd.gc_tuning import tune_collector
from dripd.plugins import Plugins

log = logging.getLogger("dripd")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dripd", description="Run multi-step email cadences from real mailboxes.",
                                     epilog="dripd migrate --help: move an installation from SQLite to PostgreSQL.")
    parser.add_argument("-c", "--config", type=Path, default=Path("/etc/dripd/dripd.toml"),
                        help="configuration file (default: /etc/dripd/dripd.toml)")
    parser.add_argument("--check-config", action="store_true", help="validate the configuration and exit (0 or 78)")
    parser.add_argument("--version", action="version", version=f"dripd {__version__}")
    return parser


async def _serve(config: Config, plugins: Plugins, config_path: Path) -> None:
    async with trio_asyncio.open_loop():
        await Daemon(config, plugins, config_path=config_path).run()


def _leaves(group: BaseExceptionGroup) -> list[BaseException]:
    out: list[BaseException] = []
    for exc in group.exceptions:
        out.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return out


def main(argv: list[str] | None = None) -> int:
    if (sys.argv[1:] if argv is None else argv)[:1] == ["migrate"]:
        from dripd.store.transfer.command import main as migrate  # PostgreSQL's driver loads only for it
        return migrate((sys.argv[1:] if argv is None else argv)[1:])
    args = _parser().parse_args(argv)
    try:
        plugins = Plugins()
    except PluginError as exc:
        print(f"dripd: plugin error: {exc.message}", file=sys.stderr)
        return EX_CONFIG
    try:
        config = load_config(args.config, plugins.config_sections(), plugins.transports)
    except ConfigError as exc:
        for problem in problems_of(exc):  # every broken key, one a line
            print(f"dripd: config error: {problem.message}", file=sys.stderr)
        return EX_CONFIG
    unusable = file_problems(config, plugins.config_sections())
    for problem in unusable:
        print(f"dripd: config error: {problem.message}", file=sys.stderr)
    if unusable:
        return EX_CONFIG
    warnings = plugins.check_parallelism(config)
    if args.check_config:
        for warning in [*warnings, *config_warnings(config)]:
            print(f"dripd: warning: {warning}", file=sys.stderr)
        print(f"dripd: {args.config}: ok ({len(config.mailboxes)} mailbox(es))")
        return 0
    logs.setup(config.daemon.log_level)
    for warning in warnings:
        log.warning("%s", warning)
    status = 0
    tune_collector()  # after the imports and the configuration: they are frozen, never walked again
    try:
        trio.run(_serve, config, plugins, args.config)
    except* DripdError as group:
        # Start-up failures (socket in use, database unavailable) arrive from the nursery.
        for failure in _leaves(group):
            log.error("%s", getattr(failure, "message", failure))
        status = 1
    except* KeyboardInterrupt:
        status = 130
    return status


if __name__ == "__main__":
    sys.exit(main())
