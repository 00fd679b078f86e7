"""Real mail servers for the integration tests, each in its own temp dir on a loopback port.

- ``dovecot()``: Debian's Dovecot (imapd), any user name logs in with password ``secret``;
  ``Dovecot.deliver(user, raw)`` puts a message into a mailbox with ``doveadm save``.
- ``smtp_sink(plan)``: an aiosmtpd server run as a separate process (aiosmtpd's threaded
  Controller cannot start inside a trio-asyncio process). ``plan`` scripts its faults:
  reply codes at EHLO/MAIL/RCPT/DATA/after the final dot, dropping the connection before or
  after the final dot, stalling; ``times`` limits a rule to the first N matches (greylisting).
  It logs every event as JSON lines and keeps each accepted message.
- ``postfix_sink(*args)``: Postfix's own ``smtp-sink`` with its fault options (-r/-f/-q/-Q/-w).
- ``token_endpoint()``: a MOCK OAuth2 provider (the only mock here): it answers the
  refresh-token grant with a fresh access token, and a tokeninfo URL that validates the tokens
  it issued, so XOAUTH2 can be tested without a provider. ``dovecot(oauth2_url=...)`` makes
  Dovecot check XOAUTH2 bearer tokens against that URL (its real oauth2 passdb).

Run ``python tests/integration/servers.py smtp-sink PLAN_JSON`` to start the sink by hand.
"""

from __future__ import annotations

import base64
import contextlib
import http.server
import itertools
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from tests.integration.waiting import wait_until

PASSWORD = "secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[Any] | None = None, timeout: float = 30.0) -> None:
    """Until something accepts connections on 127.0.0.1:``port`` (``proc`` exiting first fails)."""

    def listening() -> bool:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with status {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
        return False

    wait_until(listening, timeout=timeout, interval=0.02, what=f"nothing listens on 127.0.0.1:{port}")


def stop_process(proc: subprocess.Popen[Any], timeout: float = 5.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited within ``timeout``; always reaped."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _world_readable_tempdir(prefix: str) -> Path:
    # Dovecot's auth runs as "dovecot", mail as "nobody", smtp-sink as "nobody": every parent
    # must be traversable (a mkdtemp dir is 0700).
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


# -- Dovecot ---------------------------------------------------------------------------------

DOVECOT_CONF = """\
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
instance_name = dripd-test-{port}
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
default_login_user = dovenull
default_internal_user = dovecot
ssl = {ssl}
{ssl_files}
disable_plaintext_auth = no
auth_failure_delay = 0
auth_mechanisms = plain login{oauth2_mechanisms}
mail_location = maildir:{root}/mail/%u
first_valid_uid = 1
{oauth2_passdb}passdb {{
  driver = static
  args = password={password}
{static_mechanisms}}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={root}/home/%u{userdb_extra}
}}
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Sent {{
    special_use = \\Sent
    auto = create
  }}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
service stats {{
  inet_listener http {{
    port = 0
  }}
}}
"""


@dataclass
class Dovecot:
    root: Path
    port: int
    conf: Path
    ca_file: Path | None = None
    _users: Iterator[int] = field(default_factory=itertools.count)

    def new_user(self, prefix: str = "user") -> str:
        """A fresh mailbox (a new user name has an empty Maildir)."""
        return f"{prefix}{next(self._users)}@example.com"

    def deliver(self, user: str, raw: bytes, folder: str = "INBOX") -> None:
        """Deliver ``raw`` into ``user``'s ``folder`` as the MDA would (doveadm save)."""
        subprocess.run(["doveadm", "-c", str(self.conf), "save", "-u", user, "-m", folder], input=raw, check=True,
                       capture_output=True, timeout=10)

    def flags(self, user: str, folder: str = "INBOX") -> list[str]:
        out = subprocess.run(["doveadm", "-c", str(self.conf), "fetch", "-u", user, "flags", "mailbox", folder, "all"],
                             check=True, capture_output=True, timeout=10, text=True).stdout
        return [line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("flags:")]

    def kick(self, user: str) -> None:
        """Disconnect every IMAP session of ``user`` (as an admin or a server restart would)."""
        subprocess.run(["doveadm", "-c", str(self.conf), "kick", user], capture_output=True, timeout=10)

    def count(self, user: str, folder: str) -> int:
        out = subprocess.run(["doveadm", "-c", str(self.conf), "search", "-u", user, "mailbox", folder, "all"],
                             capture_output=True, timeout=10, text=True).stdout
        return len(out.splitlines())

    def imap_table(self, user: str, **overrides: Any) -> dict[str, Any]:
        table: dict[str, Any] = {
            "host": "127.0.0.1", "port": self.port, "security": "none", "username": user,
            "password_env": "DRIPD_TEST_IMAP_PASSWORD", "folders": ["INBOX"], "sent_folder": "Sent",
            "timeout_seconds": 5,
        }
        table.update(overrides)
        return table


def _self_signed(root: Path) -> tuple[Path, Path]:
    cert, key = root / "cert.pem", root / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=30)
    key.chmod(0o644)
    return cert, key


# With ``oauth2_url``: XOAUTH2/OAUTHBEARER logins are checked by Dovecot's oauth2 passdb, which
# asks the (MOCK) token endpoint's tokeninfo URL about each bearer token; the static password
# passdb then serves only PLAIN/LOGIN, so a bearer token is never taken for a password.
DOVECOT_OAUTH2_PASSDB = """\
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {args}
}}
"""

DOVECOT_OAUTH2_EXT = """\
tokeninfo_url = {url}?access_token=
username_attribute = email
timeout_msecs = 5000
"""


@contextlib.contextmanager
def dovecot(*, tls: bool = False, idle: bool = True, oauth2_url: str | None = None) -> Iterator[Dovecot]:
    """A Dovecot imapd on 127.0.0.1 (plain IMAP; with ``tls`` STARTTLS is offered too;
    ``idle=False`` hides the IDLE capability, as some servers lack it; ``oauth2_url``, a
    tokeninfo URL such as ``TokenEndpoint.tokeninfo_url``, turns on XOAUTH2 and OAUTHBEARER)."""
    if shutil.which("dovecot") is None:
        raise RuntimeError("dovecot is not installed (make deps-debian)")
    os.environ.setdefault("DRIPD_TEST_IMAP_PASSWORD", PASSWORD)
    root = _world_readable_tempdir("dripd-dovecot-")
    for sub in ("run", "state", "mail", "home"):
        (root / sub).mkdir()
    for sub in ("mail", "home"):
        (root / sub).chmod(0o777)
    ca_file = None
    ssl_files = ""
    if tls:
        cert, key = _self_signed(root)
        ssl_files = f"ssl_cert = <{cert}\nssl_key = <{key}"
        ca_file = cert
    port = free_port()
    conf = root / "dovecot.conf"
    oauth2_mechanisms = oauth2_passdb = ""
    if oauth2_url is not None:
        ext = root / "dovecot-oauth2.conf.ext"
        ext.write_text(DOVECOT_OAUTH2_EXT.format(url=oauth2_url))
        ext.chmod(0o644)
        oauth2_mechanisms = " xoauth2 oauthbearer"
        oauth2_passdb = DOVECOT_OAUTH2_PASSDB.format(args=ext)
    text = DOVECOT_CONF.format(root=root, port=port, password=PASSWORD, ssl="yes" if tls else "no", ssl_files=ssl_files,
                               oauth2_mechanisms=oauth2_mechanisms, oauth2_passdb=oauth2_passdb,
                               static_mechanisms="  mechanisms = plain login\n" if oauth2_url is not None else "",
                               # doveadm's user lookups must not ask the oauth2 passdb (it needs a token)
                               userdb_extra=" allow_all_users=yes" if oauth2_url is not None else "")
    if not idle:
        text += "imap_capability = IMAP4rev1 LITERAL+ SASL-IR LOGIN-REFERRALS ID ENABLE UIDPLUS NAMESPACE\n"
    conf.write_text(text)
    proc = subprocess.Popen(["dovecot", "-F", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_port(port, proc)
        yield Dovecot(root, port, conf, ca_file)
    finally:
        stop_process(proc, timeout=10)
        shutil.rmtree(root, ignore_errors=True)


# -- the scripted SMTP sink (aiosmtpd, separate process) ---------------------------------------


@dataclass
class SmtpSink:
    port: int
    root: Path
    proc: subprocess.Popen[Any]

    def events(self) -> list[dict[str, Any]]:
        path = self.root / "events.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def count(self, event: str) -> int:
        return sum(1 for e in self.events() if e["event"] == event)

    def messages(self) -> list[bytes]:
        return [p.read_bytes() for p in sorted((self.root / "messages").iterdir())]

    def smtp_table(self, **overrides: Any) -> dict[str, Any]:
        table: dict[str, Any] = {"host": "127.0.0.1", "port": self.port, "security": "none", "connections": 1,
                                 "timeout_seconds": 2}
        table.update(overrides)
        return table


@contextlib.contextmanager
def smtp_sink(plan: dict[str, Any] | None = None) -> Iterator[SmtpSink]:
    """Start the scripted aiosmtpd sink as a separate process (see the module docstring)."""
    root = _world_readable_tempdir("dripd-sink-")
    (root / "messages").mkdir()
    plan = dict(plan or {})
    plan["root"] = str(root)
    proc = subprocess.Popen([sys.executable, __file__, "smtp-sink", json.dumps(plan)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"smtp sink did not start: {line!r} {proc.stderr.read() if proc.stderr else ''}")
        yield SmtpSink(int(line.split()[1]), root, proc)
    finally:
        stop_process(proc)
        shutil.rmtree(root, ignore_errors=True)


def _run_sink(plan: dict[str, Any]) -> None:
    """The sink process: aiosmtpd with handler hooks that follow ``plan['rules']``."""
    import asyncio

    from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

    root = Path(plan["root"])
    rules: list[dict[str, Any]] = plan.get("rules", [])
    auth = plan.get("auth")  # {"user": ..., "password": ...} and/or {"user": ..., "token": ...}
    used = [0] * len(rules)
    counter = itertools.count()

    def log(event: str, **data: Any) -> None:
        with open(root / "events.jsonl", "a") as f:
            f.write(json.dumps({"event": event, **data}) + "\n")

    def rule_for(stage: str, rcpt: str = "") -> dict[str, Any] | None:
        for index, rule in enumerate(rules):
            if rule["on"] != stage or rule.get("match", "") not in rcpt:
                continue
            if rule.get("times") is not None and used[index] >= rule["times"]:
                continue
            used[index] += 1
            return rule
        return None

    async def act(server: Any, rule: dict[str, Any] | None, default: str) -> str:
        if rule is None:
            return default
        action = rule.get("action", "reply")
        if action == "drop":
            server.transport.abort()
            await asyncio.sleep(3600)  # cancelled by aiosmtpd when the connection goes
        if action == "stall":
            await asyncio.sleep(3600)
        return str(rule["reply"])

    class Handler:
        async def handle_EHLO(self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]) -> list[str]:
            session.host_name = hostname
            log("ehlo", hostname=hostname)
            rule = rule_for("ehlo")
            if rule is not None:
                return [await act(server, rule, "")]
            if plan.get("pipelining"):  # aiosmtpd reads pipelined commands line by line; it only
                responses.insert(-1, "250-PIPELINING")  # does not say so (RFC 2920)
            return responses

        async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
            log("mail", sender=address)
            rule = rule_for("mail")
            if rule is None:
                envelope.mail_from = address
            return await act(server, rule, "250 2.1.0 OK")

        async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
            log("rcpt", to=address)
            rule = rule_for("rcpt", address)
            if rule is None:
                envelope.rcpt_tos.append(address)
            return await act(server, rule, "250 2.1.5 OK")

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            rcpt = ",".join(envelope.rcpt_tos)
            rule = rule_for("dot", rcpt)
            log("dot", to=rcpt, rule=(rule or {}).get("action", "reply") if rule else None)
            if rule is None:
                (root / "messages" / f"{next(counter):04d}.eml").write_bytes(envelope.original_content)
                log("accepted", to=rcpt)
            return await act(server, rule, "250 2.0.0 OK: queued")

        async def auth_XOAUTH2(self, server: Any, args: list[str]) -> AuthResult:
            blob = args[1] if len(args) > 1 else ""
            decoded = base64.b64decode(blob).decode("ascii", "replace") if blob else ""
            fields = dict(part.split("=", 1) for part in decoded.split("\x01") if "=" in part)
            ok = auth is not None and fields.get("user") == auth.get("user") \
                and fields.get("auth") == f"Bearer {auth.get('token')}"
            log("auth", mechanism="XOAUTH2", ok=ok)
            return AuthResult(success=ok, handled=False)

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = (isinstance(data, LoginPassword) and auth is not None
              and data.login.decode() == auth.get("user") and data.password.decode() == auth.get("password"))
        log("auth", mechanism=mechanism, ok=ok)
        return AuthResult(success=ok, handled=False)

    class ScriptedSMTP(SMTP):
        async def smtp_DATA(self, arg: str) -> None:
            rcpt = ",".join(self.envelope.rcpt_tos) if self.envelope else ""
            if self.envelope and self.envelope.rcpt_tos:
                rule = rule_for("data", rcpt)
                if rule is not None:
                    log("data", to=rcpt, rule=rule.get("action", "reply"))
                    if rule.get("action") == "drop-mid-data":
                        # Take the 354, read a little of the message, then reset the connection
                        # while the client still has bytes to send (before the final dot).
                        await self.push("354 End data with <CR><LF>.<CR><LF>")
                        await self._reader.read(rule.get("read", 1024))
                        transport: Any = self.transport
                        sock = transport.get_extra_info("socket")
                        if sock is not None:
                            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                        transport.abort()
                        return
                    await self.push(await act(self, rule, ""))
                    return
            await super().smtp_DATA(arg)

        async def smtp_NOOP(self, arg: str) -> None:
            await super().smtp_NOOP(arg)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        handler = Handler()

        def factory() -> SMTP:
            log("connect")
            kwargs: dict[str, Any] = {"auth_require_tls": False, "data_size_limit": 64 * 1024 * 1024}
            if auth:
                kwargs.update(authenticator=authenticator, auth_required=True)
            return ScriptedSMTP(handler, hostname="sink.test", **kwargs)

        server = await loop.create_server(factory, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        print(f"PORT {port}", flush=True)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


# -- Postfix smtp-sink ---------------------------------------------------------------------------


@dataclass
class PostfixSink:
    port: int
    dump_dir: Path

    def messages(self) -> list[bytes]:
        return [p.read_bytes() for p in sorted(self.dump_dir.iterdir()) if p.is_file()]

    def smtp_table(self, **overrides: Any) -> dict[str, Any]:
        table: dict[str, Any] = {"host": "127.0.0.1", "port": self.port, "security": "none", "timeout_seconds": 2}
        table.update(overrides)
        return table


@contextlib.contextmanager
def postfix_sink(*options: str) -> Iterator[PostfixSink]:
    """Postfix's smtp-sink with the given fault options, e.g. ``("-Q", "rcpt")``."""
    binary = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
    root = _world_readable_tempdir("dripd-postfix-sink-")
    dump = root / "dump"
    dump.mkdir()
    dump.chmod(0o777)
    port = free_port()
    proc = subprocess.Popen([binary, "-u", "nobody", "-d", f"{dump}/m.", *options, f"127.0.0.1:{port}", "16"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_port(port, proc)
        yield PostfixSink(port, dump)
    finally:
        stop_process(proc)
        shutil.rmtree(root, ignore_errors=True)


# -- the MOCK OAuth2 token endpoint --------------------------------------------------------------


@dataclass
class TokenEndpoint:
    url: str  # the token endpoint (POST, refresh_token grant)
    refresh_token: str
    client_id: str
    issued: list[str]  # access tokens handed out, in order
    tokeninfo_url: str = ""  # where a server checks a bearer token (Dovecot's oauth2 passdb: tokeninfo_url)
    grants: dict[str, str] = field(default_factory=dict)  # refresh token -> the email its access tokens are for
    owners: dict[str, str] = field(default_factory=dict)  # access token -> email
    expired: set[str] = field(default_factory=set)  # access tokens tokeninfo calls expired (tests add to it)
    checked: list[str] = field(default_factory=list)  # access tokens asked about at tokeninfo, in order

    def grant(self, email: str) -> str:
        """A new refresh token whose access tokens authenticate ``email``."""
        refresh = f"refresh-{len(self.grants) + 1}-{email}"
        self.grants[refresh] = email
        return refresh


@contextlib.contextmanager
def token_endpoint(*, refresh_token: str = "refresh-1", client_id: str = "dripd-test", lifetime: int = 3600,
                   email: str = "alice@example.com", client_secret: str | None = None) -> Iterator[TokenEndpoint]:
    """A MOCK OAuth2 provider in a thread of this process (nothing here is a real provider):

    - ``POST /token``: the refresh_token grant (RFC 6749 6) answers a fresh access token
      (``access-1``, ``access-2``, ...) to the right refresh token and client id (and client
      secret when ``client_secret`` is given), else ``400 invalid_grant``;
    - ``GET /tokeninfo?access_token=T``: what a mail server asks to validate a bearer token
      (Google's tokeninfo shape, used by Dovecot's oauth2 passdb): ``200 {"email": ...,
      "expires_in": ...}`` for a token it issued, ``400 invalid_token`` for any other token or
      one in ``TokenEndpoint.expired``.
    """
    endpoint = TokenEndpoint("", refresh_token, client_id, [])
    endpoint.grants[refresh_token] = email
    lock = threading.Lock()

    class Handle(http.server.BaseHTTPRequestHandler):
        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
            owner = endpoint.grants.get(form.get("refresh_token", ""))
            if form.get("grant_type") != "refresh_token" or owner is None or form.get("client_id") != client_id \
                    or (client_secret is not None and form.get("client_secret") != client_secret):
                self._answer(400, {"error": "invalid_grant"})
                return
            with lock:
                token = f"access-{len(endpoint.issued) + 1}"
                endpoint.issued.append(token)
                endpoint.owners[token] = owner
            self._answer(200, {"access_token": token, "token_type": "Bearer", "expires_in": lifetime})

        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            if url.path != "/tokeninfo":
                self._answer(404, {"error": "not_found"})
                return
            token = dict(urllib.parse.parse_qsl(url.query)).get("access_token", "")
            with lock:
                endpoint.checked.append(token)
                owner = endpoint.owners.get(token)
            if owner is None or token in endpoint.expired:
                self._answer(400, {"error": "invalid_token", "error_description": "Invalid or expired token"})
                return
            self._answer(200, {"email": owner, "email_verified": "true", "expires_in": str(lifetime),
                               "aud": client_id, "scope": "https://mail.google.com/"})

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handle)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    endpoint.url, endpoint.tokeninfo_url = f"{base}/token", f"{base}/tokeninfo"
    try:
        yield endpoint
    finally:
        server.shutdown()
        server.server_close()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "smtp-sink":
        _run_sink(json.loads(sys.argv[2]))
    else:
        sys.exit("usage: servers.py smtp-sink PLAN_JSON")
