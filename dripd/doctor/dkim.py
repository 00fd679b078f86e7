"""DKIM key records (RFC 6376 3.6.1), pure: parse the tags and measure the public key.

The key size is read from the DER SubjectPublicKeyInfo by hand (an RSA modulus is the first
INTEGER of the BIT STRING), so the doctor needs no crypto library.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses

MIN_BITS = 1024  # Gmail and Yahoo ignore shorter RSA keys
RECOMMENDED_BITS = 2048


@dataclasses.dataclass(frozen=True)
class KeyRecord:
    tags: dict[str, str]
    algorithm: str  # k=, "rsa" by default
    bits: int | None  # RSA modulus size; None for ed25519 or when unreadable
    problem: str | None  # why the record cannot verify a signature, None when it can


def tags(record: str) -> dict[str, str]:
    """``tag=value`` pairs separated by ';' (whitespace inside values is folding, dropped)."""
    found: dict[str, str] = {}
    for part in record.split(";"):
        if "=" in part:
            name, value = part.split("=", 1)
            found[name.strip().lower()] = "".join(value.split())
    return found


def parse_key(record: str) -> KeyRecord:
    found = tags(record)
    algorithm = found.get("k", "rsa").lower()
    if found.get("v", "DKIM1") != "DKIM1":
        return KeyRecord(found, algorithm, None, f"v={found['v']} is not DKIM1")
    if "p" not in found:
        return KeyRecord(found, algorithm, None, "no p= (public key) tag")
    if not found["p"]:
        return KeyRecord(found, algorithm, None, "p= is empty: the key is revoked")
    try:
        der = base64.b64decode(found["p"], validate=True)
    except (binascii.Error, ValueError):
        return KeyRecord(found, algorithm, None, "p= is not valid base64")
    if algorithm == "ed25519":
        ok = len(der) == 32
        return KeyRecord(found, algorithm, None, None if ok else "an ed25519 key must be 32 bytes")
    if algorithm != "rsa":
        return KeyRecord(found, algorithm, None, f"unknown key type k={algorithm}")
    bits = rsa_bits(der)
    return KeyRecord(found, algorithm, bits, None if bits else "p= is not an RSA public key")


def rsa_bits(der: bytes) -> int | None:
    """Modulus size of a DER SubjectPublicKeyInfo (or bare RSAPublicKey); None if unreadable."""
    try:
        tag, body, _ = _tlv(der, 0)
        if tag != 0x30:
            return None
        tag, first, after = _tlv(body, 0)
        if tag == 0x30:  # SubjectPublicKeyInfo: AlgorithmIdentifier, then BIT STRING
            tag, bitstring, _ = _tlv(body, after)
            if tag != 0x03 or not bitstring:
                return None
            tag, rsa_key, _ = _tlv(bitstring[1:], 0)  # skip the unused-bits octet
            if tag != 0x30:
                return None
            tag, first, _ = _tlv(rsa_key, 0)
        if tag != 0x02:
            return None
        modulus = first.lstrip(b"\x00")
        return int.from_bytes(modulus, "big").bit_length() if modulus else None
    except IndexError:
        return None


def _tlv(data: bytes, offset: int) -> tuple[int, bytes, int]:
    """(tag, value, offset after) of the DER element at ``offset``."""
    tag = data[offset]
    length = data[offset + 1]
    offset += 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4:
            raise IndexError("unsupported DER length")
        length = int.from_bytes(data[offset : offset + count], "big")
        offset += count
    if offset + length > len(data):
        raise IndexError("truncated DER")
    return tag, data[offset : offset + length], offset + length
