"""The SQLite backend's own tests: some start the real ``dripd`` against a database another
process has locked, so they share the integration suite's process fixture."""

from __future__ import annotations

from tests.integration.conftest import dripd_process

__all__ = ["dripd_process"]
