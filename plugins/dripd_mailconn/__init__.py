"""What the SMTP transport and the IMAP detector share, so that neither imports the other.

- ``config``: the keys of a mail server table (``ServerConfig``) and the ``[mailboxes.imap]``
  table (the detector watches its folders; the transport finds the Sent folder there);
- ``credentials``: where a server's secret comes from (files, the environment, OAuth2 tokens);
- ``session``: one IMAP connection over the trio-asyncio bridge, its errors, and the faults
  after which a user of a session drops it and tries again.

Not an entry-point plugin: it registers nothing.
"""
