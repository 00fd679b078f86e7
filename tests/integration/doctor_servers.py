"""Real servers for the doctor's tests, each a separate process on 127.0.0.1:

- ``dns_server(zone_text)``: dnslib's authoritative server (UDP and TCP on one port) answering
  from a zone file; names not in the zone get NXDOMAIN.
- ``starttls_server(cert, key)``: an aiosmtpd submission server offering STARTTLS with the given
  certificate (aiosmtpd cannot run inside the test's trio process, see servers.py).

Run as a script, this module is the server process: ``dns ZONEFILE``, ``smtp CERT KEY`` or
``smtps CERT KEY`` (implicit TLS).
"""

from __future__ import annotations

import base64
import contextlib
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

_STARTUP_SECONDS = 30


@dataclass
class Server:
    port: int
    proc: subprocess.Popen[str]


@contextlib.contextmanager
def _process(*args: str) -> Iterator[Server]:
    proc = subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = _read_line(proc)
        if not line.startswith("PORT "):
            raise RuntimeError(f"{args[0]} server did not start: {line!r} {proc.stderr.read() if proc.stderr else ''}")
        yield Server(int(line.split()[1]), proc)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def _read_line(proc: subprocess.Popen[str]) -> str:
    """The server's first line, bounded in time so a broken server cannot hang the test."""
    import threading

    box: list[str] = []
    reader = threading.Thread(target=lambda: box.append(proc.stdout.readline() if proc.stdout else ""), daemon=True)
    reader.start()
    reader.join(_STARTUP_SECONDS)
    if not box:
        proc.kill()
        raise RuntimeError(f"server did not print its port within {_STARTUP_SECONDS}s")
    return box[0]


@contextlib.contextmanager
def dns_server(zone_text: str) -> Iterator[Server]:
    with tempfile.TemporaryDirectory(prefix="dripd-dns-") as root:
        zone = Path(root) / "zone.txt"
        zone.write_text(zone_text)
        with _process("dns", str(zone)) as server:
            yield server


@contextlib.contextmanager
def starttls_server(cert: Path, key: Path, *, implicit: bool = False) -> Iterator[Server]:
    """STARTTLS on a plain port, or (``implicit``) TLS from the first byte as on port 465."""
    with _process("smtps" if implicit else "smtp", str(cert), str(key)) as server:
        yield server


def txt(value: str) -> str:
    """A TXT rdata in zone syntax: quoted strings of at most 255 characters (RFC 1035 3.3.14)."""
    return " ".join(f'"{value[i:i + 255]}"' for i in range(0, len(value), 255))


def rsa_public_key_b64(bits: int) -> str:
    """A fresh RSA public key (DER SubjectPublicKeyInfo, base64), as a DKIM p= tag carries it."""
    key = subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", f"rsa_keygen_bits:{bits}"],
                         check=True, capture_output=True, timeout=60).stdout
    der = subprocess.run(["openssl", "pkey", "-pubout", "-outform", "DER"], input=key, check=True,
                         capture_output=True, timeout=60).stdout
    return base64.b64encode(der).decode()


def _serve_dns(zone_path: str) -> None:
    import socket
    import time

    from dnslib.server import DNSLogger, DNSServer
    from dnslib.zoneresolver import ZoneResolver

    with open(zone_path) as f:
        resolver = ZoneResolver(f)
    logger = DNSLogger("-request,-reply,-truncated,-error,-recv,-send,-data")
    # One port for UDP and TCP: dnspython retries a truncated (long TXT) answer over TCP.
    for _ in range(20):
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        try:
            udp = DNSServer(resolver, port=port, address="127.0.0.1", logger=logger)
            tcp = DNSServer(resolver, port=port, address="127.0.0.1", logger=logger, tcp=True)
        except OSError:
            continue
        udp.start_thread()
        tcp.start_thread()
        print(f"PORT {port}", flush=True)
        while udp.isAlive() and tcp.isAlive():
            time.sleep(0.2)
        return
    sys.exit("no free port for UDP and TCP")


def _serve_smtp(cert: str, key: str, implicit: bool) -> None:
    import asyncio
    import ssl

    from aiosmtpd.smtp import SMTP

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            return "250 2.0.0 OK"

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: SMTP(Handler(), hostname="submission.test", tls_context=None if implicit else context,
                         auth_require_tls=False),
            "127.0.0.1", 0, ssl=context if implicit else None)
        print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "dns":
        _serve_dns(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] in ("smtp", "smtps"):
        _serve_smtp(sys.argv[2], sys.argv[3], implicit=sys.argv[1] == "smtps")
    else:
        sys.exit("usage: doctor_servers.py dns ZONEFILE | smtp CERT KEY | smtps CERT KEY")
