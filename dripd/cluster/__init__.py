"""Several dripd nodes on one PostgreSQL database: each mailbox leased to one node at a time.

``settings`` is the ``[cluster]`` table; ``assignment`` the pure rule of which node should hold
which mailbox; ``leases`` the lease manager (heartbeat, acquire, renew, release, the fence the
store checks); ``keeper`` starts and stops a mailbox's lane as its lease comes and goes.
With SQLite (one node) none of this runs: the node holds every mailbox.
"""
