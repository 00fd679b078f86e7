"""``dripd migrate``: move an installation's whole state from its SQLite file into an empty
PostgreSQL database, in one transaction, keeping every id, and verify the row counts.

``source`` reads SQLite read-only inside one read transaction (a consistent snapshot while the
daemon keeps writing through WAL); ``target`` creates the schema with the PostgreSQL backend's own
migration runner and copies table by table; ``command`` is the command line and its exit codes.
"""

from __future__ import annotations


class TransferFailure(Exception):
    """Why a migration stopped, and the process exit status that says so (sysexits.h)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


# sysexits.h: the exit statuses `dripd migrate` uses (docs/deployment.md lists them).
EX_DATAERR = 65      # the source is not at this dripd's schema version
EX_NOINPUT = 66      # the source cannot be opened or read
EX_UNAVAILABLE = 69  # the target cannot be reached or refused a statement
EX_SOFTWARE = 70     # the copied counts do not match (rolled back)
EX_CANTCREAT = 73    # the target database is not empty
EX_CONFIG = 78       # bad arguments: a URL, a password inline, an unreadable password file
