"""The web console (``/app``): server-rendered pages over the control API (see docs/console.md)."""

from dripd.console.app import create_console

__all__ = ["create_console"]
