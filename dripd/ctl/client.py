"""dripctl's HTTP client: the Unix socket by default, or TCP with a Bearer token."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Iterable

import httpx

EX_UNAVAILABLE = 69  # sysexits.h: the service is not there
EX_NOPERM = 77  # sysexits.h: permission denied


class CtlError(Exception):
    """One line for the user and the exit status."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class Client:
    def __init__(self, *, socket: Path, url: str | None = None, token: str | None = None,
                 timeout: float = 60.0) -> None:
        headers = {"Accept": "application/json"}
        if url:
            self.where = url
            if token:
                headers["Authorization"] = f"Bearer {token}"
            self._http = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout)
        else:
            self.where = str(socket)
            self._http = httpx.Client(base_url="http://dripd", headers=headers, timeout=timeout,
                                      transport=httpx.HTTPTransport(uds=str(socket)))

    def close(self) -> None:
        self._http.close()

    def request(self, method: str, path: str, *, body: Any = None, params: dict[str, Any] | None = None,
                content: Iterable[bytes] | bytes | None = None, content_type: str | None = None) -> Any:
        headers = {"Content-Type": content_type} if content_type else None
        try:
            response = self._http.request(method, path, json=body, params=params, content=content, headers=headers)
        except (httpx.ConnectError, httpx.RemoteProtocolError, FileNotFoundError, ConnectionRefusedError) as exc:
            if isinstance(exc.__cause__ or exc.__context__, PermissionError) or "Permission denied" in str(exc):
                # The socket is there but its mode (0660, group dripd) keeps this user out.
                raise CtlError(f"permission denied on {self.where} (is this user in the dripd group?)",
                               EX_NOPERM) from None
            raise CtlError(f"cannot reach dripd at {self.where} (is it running?)", EX_UNAVAILABLE) from None
        except httpx.TimeoutException:
            raise CtlError(f"dripd at {self.where} did not answer in time", EX_UNAVAILABLE) from None
        if response.status_code == 204:
            return None
        try:
            data = response.json()
        except json.JSONDecodeError:
            data = None
        if response.status_code >= 400:
            error = (data or {}).get("error") if isinstance(data, dict) else None
            if error:
                raise CtlError(f"{error.get('message')} [{error.get('code')}]", 1)
            raise CtlError(f"dripd answered HTTP {response.status_code}", 1)
        for warning in data.get("warnings", []) if isinstance(data, dict) else []:
            # Saved, but probably a mistake (a duplicate name, a trailing conditional): on stderr,
            # so --json output stays one document.
            print(f"warning: {warning.get('field')}: {warning.get('message')}", file=sys.stderr)
        return data

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None} or None)

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", path, body=body)

    def patch(self, path: str, body: Any) -> Any:
        return self.request("PATCH", path, body=body)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    # -- names users type, resolved to ids ----------------------------------------------------

    def sequence_id(self, ref: str) -> int:
        if ref.isdigit():
            return int(ref)
        found = self.get("/api/sequences", name=ref)["sequences"]
        if not found:
            raise CtlError(f"no sequence named {ref!r}")
        if len(found) > 1:
            ids = ", ".join(str(s["id"]) for s in found)
            raise CtlError(f"several sequences are named {ref!r} (ids {ids}); give the id")
        return int(found[0]["id"])

    def list_id(self, ref: str) -> int:
        if ref.isdigit():
            return int(ref)
        for item in self.get("/api/lists")["lists"]:
            if item["name"] == ref:
                return int(item["id"])
        raise CtlError(f"no list named {ref!r}")

    def contact_id(self, ref: str) -> int:
        if ref.isdigit():
            return int(ref)
        email = ref.strip().lower()
        for contact in self.get("/api/contacts", email=email, limit=50)["contacts"]:
            if contact["email"] == email:
                return int(contact["id"])
        raise CtlError(f"no contact with email {ref!r}")
