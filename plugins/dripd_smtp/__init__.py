"""Built-in SMTP transport plugin for dripd."""
