"""The pure rules of ``dripd migrate``: argument checks, table order, value conversion."""

from __future__ import annotations

from pathlib import Path

import pytest

from dripd.store.transfer import EX_CONFIG, EX_SOFTWARE, TransferFailure
from dripd.store.transfer.command import source_path, target_url
from dripd.store.transfer.target import TargetTable, _converter, copy_order


def test_source_is_a_sqlite_path() -> None:
    assert source_path("sqlite:/var/lib/dripd/dripd.sqlite3") == Path("/var/lib/dripd/dripd.sqlite3")
    assert source_path("sqlite:///var/lib/dripd/dripd.sqlite3") == Path("/var/lib/dripd/dripd.sqlite3")
    assert source_path("sqlite:var/dripd.sqlite3") == Path("var/dripd.sqlite3")
    for bad in ("/var/lib/dripd/dripd.sqlite3", "sqlite:", "postgresql://h/db"):
        with pytest.raises(TransferFailure) as caught:
            source_path(bad)
        assert caught.value.status == EX_CONFIG and caught.value.message.startswith("--from")


def test_target_url_never_holds_a_password() -> None:
    assert target_url("postgresql://dripd@db.internal/dripd") == "postgresql://dripd@db.internal/dripd"
    assert target_url("postgres://dripd@/dripd?host=/run/pg") == "postgres://dripd@/dripd?host=/run/pg"
    for bad, says in [("postgresql://dripd:s3cret@db/dripd", "password"), ("postgresql://db/d?password=s3cret", "password"),
                      ("mysql://db/dripd", "postgresql://"), ("postgresql://db/d?nonsense=1", "valid")]:
        with pytest.raises(TransferFailure) as caught:
            target_url(bad)
        assert caught.value.status == EX_CONFIG and says in caught.value.message
        assert "s3cret" not in caught.value.message


def test_parents_are_copied_before_children() -> None:
    tables = {
        "sequences": TargetTable("sequences", {}, frozenset()),
        "steps": TargetTable("steps", {}, frozenset({"sequences"})),
        "contacts": TargetTable("contacts", {}, frozenset()),
        "enrollments": TargetTable("enrollments", {}, frozenset({"sequences", "contacts"})),
        "outbox": TargetTable("outbox", {}, frozenset({"enrollments", "steps"})),
        "leases": TargetTable("leases", {}, frozenset()),
    }
    order = copy_order(tables, ["outbox", "enrollments", "steps", "contacts", "sequences"])
    assert sorted(order) == ["contacts", "enrollments", "outbox", "sequences", "steps"]
    for child, table in tables.items():
        for parent in table.parents:
            if child in order:
                assert order.index(parent) < order.index(child), (parent, child)


def test_values_take_the_postgresql_column_type() -> None:
    assert _converter("boolean", "t.c")(1) is True
    assert _converter("bigint", "t.c")(3.0) == 3
    assert _converter("double precision", "t.c")(2) == 2.0
    assert _converter("text", "t.c")(7) == "7"
    assert _converter("text", "t.c")(None) is None
    with pytest.raises(TransferFailure) as caught:
        _converter("bigint", "outbox.attempts")(2.5)
    assert caught.value.status == EX_SOFTWARE and "outbox.attempts" in caught.value.message
