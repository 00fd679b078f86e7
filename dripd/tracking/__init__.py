"""The public tracking room: signed tokens, link rewriting, the listener, scanner detection.

Nothing here decides what a contact receives next: hits become events in the store, and the
engine reads them (unflagged only) when it evaluates ``if_opened`` / ``if_clicked``.
"""
