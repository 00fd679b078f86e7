"""One CSV record split into its fields, with the field-length rule: a field longer than
``MAX_FIELD_CHARS`` makes its row invalid (named by line) instead of escaping as the csv
module's own ``Error`` (which answered 500). The CSV import calls ``split_record`` for the
header and for every row.
"""

from __future__ import annotations

import csv
from typing import Any

from dripd.errors import ValidationError

# The csv module's own default limit (csv.field_size_limit()), stated here so the rule and its
# message do not depend on a process-wide setting some other code could change.
MAX_FIELD_CHARS = 131_072


def split_record(record: str, **dialect: Any) -> list[str]:
    """The fields of ``record``, or ValidationError (field ``row``); the caller adds the line."""
    try:
        values = next(csv.reader([record], **dialect), [])
    except csv.Error as exc:
        if "field larger than field limit" in str(exc):
            raise ValidationError("row", f"a field is longer than {MAX_FIELD_CHARS:,} characters") from None
        raise ValidationError("row", str(exc)) from None
    for value in values:  # belt and braces: the limit holds even if csv's was raised elsewhere
        if len(value) > MAX_FIELD_CHARS:
            raise ValidationError("row", f"a field is longer than {MAX_FIELD_CHARS:,} characters")
    return values
