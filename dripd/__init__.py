"""dripd: a self-hosted daemon that runs multi-step email cadences from real mailboxes."""

__version__ = "0.1.0"
