"""``[api.limits]``: how much a client may send and how long it may take (issue 20).

Every request body is read in full, within these bounds, before the request takes an admission
slot (dripd/api/body.py), so clients that hold a body open cannot starve the others; CSV imports
stream under their own, smaller slot count. Pure: the model only.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

MIB = 1024 * 1024


class ApiLimits(BaseModel):
    """Request size and time limits of the control API (Unix socket and TCP alike). Apply on reload."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    json_body_bytes: int = Field(
        default=1 * MIB, gt=0, le=1024 * MIB,
        description="Largest request body of every endpoint but the CSV import and form uploads; a larger one gets 413 "
                    "(`too_large`) from its Content-Length, before it is read, or as soon as it grows past.")
    csv_body_bytes: int = Field(
        default=64 * MIB, gt=0, le=16 * 1024 * MIB,
        description="Largest CSV file `POST /api/sequences/{id}/enroll/csv` accepts (413 `too_large` beyond); "
                    "it is streamed, so memory does not grow with the file. Also the limit of a "
                    "`multipart/form-data` upload (read whole).")
    string_chars: int = Field(
        default=100_000, gt=0, le=1024 * MIB,
        description="Longest string value anywhere in a JSON body and longest CSV field, in characters "
                    "(422 naming the field).")
    body_idle_seconds: float = Field(
        default=10.0, gt=0, le=3600,
        description="A request whose body makes no progress for this long gets 408 (`request_timeout`) "
                    "and is closed.")
    body_seconds: float = Field(
        default=30.0, gt=0, le=3600,
        description="A JSON body must arrive in full within this long (408 otherwise). A CSV upload is "
                    "bounded by `body_idle_seconds` only.")
    concurrent_imports: int = Field(
        default=2, gt=0, le=64,
        description="CSV imports handled at once; more wait their turn. Imports do not take the slots of "
                    "`max_concurrent_requests`, so a slow upload never holds up other requests.")
    import_batch_rows: int = Field(
        default=2000, gt=0, le=100_000,
        description="A CSV import enrolls its rows in transactions of this many, so sends interleave with "
                    "a large import.")
