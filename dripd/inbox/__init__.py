"""The reply inbox: every reply and auto-reply kept with its new text and a category.

``quoting`` (pure) finds the new text under which a client put the quoted history,
``categories`` (pure) reads a category from it, ``service`` keeps replies and applies what a
category asks for (an unsubscribe request suppresses the address)."""
