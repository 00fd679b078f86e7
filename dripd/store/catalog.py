"""The catalog's operations now live in ``dripd.store.sqlite`` (sequences, contacts,
enrollment); this name stays while callers still import ``BulkResult`` from here. Import it
from ``dripd.store`` instead."""

from dripd.store.api import BulkResult

__all__ = ["BulkResult"]
