"""The doctor's TLS I/O: connect to the submission server as the SMTP transport would (implicit
TLS, or EHLO + STARTTLS) and verify its certificate for the host name. Nothing is sent."""

from __future__ import annotations

import ssl
from pathlib import Path

import trio

from dripd.doctor.verdicts import TlsProbe


class _Lines:
    """SMTP replies off a byte stream (multi-line replies end at "NNN ")."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.buffer = b""

    async def reply(self) -> list[str]:
        lines: list[str] = []
        while True:
            while b"\n" not in self.buffer:
                chunk = await self.stream.receive_some(4096)
                if not chunk:
                    raise ConnectionError("the server closed the connection")
                self.buffer += chunk
                if len(self.buffer) > 65536:
                    raise ConnectionError("reply line too long")
            raw, self.buffer = self.buffer.split(b"\n", 1)
            line = raw.decode("utf-8", "replace").rstrip("\r")
            lines.append(line)
            if len(line) < 4 or line[3] != "-":
                return lines


async def probe_tls(host: str, port: int, security: str, ca_file: Path | None, timeout: float,
                    helo: str = "dripd-doctor.invalid") -> TlsProbe:
    """Connect, upgrade and verify; every failure is recorded in the probe, never raised."""
    try:
        with trio.fail_after(timeout):
            stream = await trio.open_tcp_stream(host, port)
    except (OSError, trio.TooSlowError) as exc:
        return TlsProbe(host, port, security, reached=False, error=_why(exc))
    try:
        with trio.fail_after(timeout):
            return await _converse(stream, host, port, security, ca_file, helo)
    except trio.TooSlowError:
        return TlsProbe(host, port, security, reached=True, error=f"no answer within {timeout:g}s")
    except (OSError, ConnectionError, trio.BrokenResourceError, ssl.SSLError) as exc:
        return TlsProbe(host, port, security, reached=True, error=_why(exc))
    finally:
        with trio.move_on_after(1):
            await stream.aclose()


async def _converse(stream: trio.SocketStream, host: str, port: int, security: str, ca_file: Path | None,
                    helo: str) -> TlsProbe:
    offered: bool | None = None
    if security != "tls":
        lines = _Lines(stream)
        greeting = await lines.reply()
        if not greeting[-1].startswith("220"):
            return TlsProbe(host, port, security, reached=True, error=f"greeting {greeting[-1][:100]!r}")
        await stream.send_all(f"EHLO {helo}\r\n".encode())
        ehlo = await lines.reply()
        offered = any(line[4:].strip().upper().startswith("STARTTLS") for line in ehlo)
        if security == "none" or not offered:
            await stream.send_all(b"QUIT\r\n")
            return TlsProbe(host, port, security, reached=True, starttls_offered=offered)
        await stream.send_all(b"STARTTLS\r\n")
        answer = await lines.reply()
        if not answer[-1].startswith("220"):
            return TlsProbe(host, port, security, reached=True, starttls_offered=True,
                            error=f"STARTTLS refused: {answer[-1][:100]}")
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    tls = trio.SSLStream(stream, context, server_hostname=host)
    try:
        await tls.do_handshake()
    except trio.BrokenResourceError as exc:
        cause = exc.__cause__
        if isinstance(cause, ssl.SSLCertVerificationError):
            return TlsProbe(host, port, security, reached=True, starttls_offered=offered,
                            cert_error=cause.verify_message or str(cause))
        return TlsProbe(host, port, security, reached=True, starttls_offered=offered, error=_why(cause or exc))
    version = tls.version()
    return TlsProbe(host, port, security, reached=True, starttls_offered=offered, version=version)


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:200]
