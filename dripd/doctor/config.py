"""The ``[doctor]`` table: where `dripctl doctor` asks its DNS questions and what it looks for."""

from __future__ import annotations

import ipaddress

from pydantic import BaseModel, ConfigDict, Field, field_validator

from dripd.doctor.verdicts import COMMON_SELECTORS, DEFAULT_DNSBLS


def split_nameserver(value: str) -> tuple[str, int]:
    """``"192.0.2.1"``, ``"192.0.2.1:5353"`` or ``"[2001:db8::1]:53"`` -> (address, port)."""
    host, port = value, 53
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        if rest:
            port = int(rest.lstrip(":"))
    elif value.count(":") == 1:
        host, text = value.split(":")
        port = int(text)
    ipaddress.ip_address(host)
    if not 0 < port < 65536:
        raise ValueError("port out of range")
    return host, port


class DoctorConfig(BaseModel):
    """Deliverability checks (`dripctl doctor`): SPF, DKIM, DMARC, MX, TLS, blocklists, message shape."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    nameservers: list[str] = Field(
        default=[], description="DNS servers to ask (`IP` or `IP:port`); empty uses the system's resolv.conf.",
        json_schema_extra={"rule": "IP addresses, optionally with a port (`[v6]:port` for IPv6)"})
    timeout_seconds: float = Field(default=5.0, gt=0, description="How long one DNS question or the TLS probe may take.")
    dkim_selectors: list[str] = Field(
        default=list(COMMON_SELECTORS),
        description="DKIM selectors tried when a mailbox names none in `dkim_selector`.")
    dnsbls: list[str] = Field(default=list(DEFAULT_DNSBLS), description="DNS blocklists the sending addresses are looked up in.")
    sending_ips: list[str] = Field(
        default=[], description="Addresses mail leaves from, when not the SMTP server's own (a relay's outbound IPs).",
        json_schema_extra={"rule": "IPv4 or IPv6 addresses"})

    @field_validator("nameservers")
    @classmethod
    def _nameservers(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                split_nameserver(item)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address with an optional :port") from None
        return value

    @field_validator("sending_ips")
    @classmethod
    def _ips(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_address(item)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address") from None
        return value
