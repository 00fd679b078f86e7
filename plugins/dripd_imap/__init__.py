"""Built-in IMAP detector plugin for dripd: watches a mailbox for replies, bounces and auto-replies."""
