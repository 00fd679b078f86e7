"""`dripctl doctor`: is each mailbox's From domain set up so the big providers take its mail?

Checks SPF (parses, authorises the sending host, at most 10 lookups, no +all), DKIM (a key of
at least 1024 bits under the mailbox's selector or a common one), DMARC (a policy, and the From
domain aligned through SPF or DKIM), MX (replies can arrive), the submission server's TLS,
DNS blocklists, and the shape of the messages dripd builds (Message-ID, Date, one-click
List-Unsubscribe).

The rooms: ``checks``, ``spf``, ``dkim`` and ``verdicts`` are pure (facts in, verdicts out);
``lookup`` (DNS, dnspython) and ``tls_probe`` (a socket) are the I/O; ``run`` ties them together
for one mailbox. A fact that could not be read gives ``unknown`` ("cannot resolve"), never a pass.
"""

# Submodules are imported by name (dripd.doctor.run, dripd.doctor.config): dripd.config imports
# dripd.doctor.config, so importing run here would be circular.
