"""quick_init (dripd/quick_init.py): the faster __init__ must be the dataclass's own in every way a
caller can see: the same parameters, defaults, factories, keyword-only fields, __post_init__,
frozen instances, equality, hashing and ``dataclasses.replace``. Each decorated class of the
send path is checked against the __init__ dataclasses made for it."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
from dataclasses import InitVar, dataclass, field
from typing import Any

import pytest

import dripd
from dripd.quick_init import quick_init


def _shape(function: Any) -> list[tuple[str, Any, bool]]:
    return [(p.name, p.kind, p.default is not inspect.Parameter.empty)
            for p in inspect.signature(function).parameters.values()]


def _decorated() -> list[type]:
    found: dict[int, type] = {}
    for module in pkgutil.walk_packages(dripd.__path__, "dripd."):
        if not module.name.endswith("__main__"):
            for value in vars(importlib.import_module(module.name)).values():
                if isinstance(value, type) and hasattr(value.__init__, "dataclass_init"):
                    found[id(value)] = value
    return sorted(found.values(), key=lambda cls: f"{cls.__module__}.{cls.__qualname__}")


DECORATED = _decorated()


def test_the_send_paths_classes_are_found() -> None:
    names = {cls.__qualname__ for cls in DECORATED}
    assert {"Enrollment", "RunContext", "Claim", "Envelope", "Event", "SendResult", "RunResult"} <= names


@pytest.mark.parametrize("cls", DECORATED, ids=lambda cls: f"{cls.__module__}.{cls.__qualname__}")
def test_each_decorated_class_takes_what_its_dataclass_init_took(cls: type) -> None:
    assert _shape(cls.__init__) == _shape(cls.__init__.dataclass_init)  # type: ignore[misc]
    for f in dataclasses.fields(cls):
        parameter = inspect.signature(cls.__init__).parameters[f.name]
        if f.default is not dataclasses.MISSING:
            assert parameter.default is f.default


@dataclass(frozen=True)
class _Base:
    a: int
    b: str = "b"
    c: list[int] = field(default_factory=list)
    d: tuple[int, ...] = field(default=(), kw_only=True)
    e: int = field(kw_only=True, default=5)


@quick_init
@dataclass(frozen=True)
class _Quick(_Base):
    pass


@quick_init
@dataclass(frozen=True, slots=True, kw_only=True)
class _Slotted:
    x: int
    y: str = "y"
    z: dict[str, int] = field(default_factory=dict)


@quick_init
@dataclass(frozen=True)
class _Checked:
    n: int
    doubled: int = 0

    def __post_init__(self) -> None:
        if self.n < 0:
            raise ValueError("n must be >= 0")
        object.__setattr__(self, "doubled", self.n * 2)


def test_values_defaults_and_factories_are_the_dataclasses() -> None:
    for args, kwargs in (((1,), {}), ((1, "x"), {"d": (2,)}), ((1, "x", [3]), {"e": 7})):
        quick = _Quick(*args, **kwargs)  # type: ignore[arg-type]
        plain = _Base(*args, **kwargs)  # type: ignore[arg-type]  # dataclasses' own __init__
        assert dataclasses.asdict(quick) == dataclasses.asdict(plain)
    first, second = _Quick(1), _Quick(1)
    assert first.c == [] and first.c is not second.c  # a fresh list per instance, as the factory says
    assert first == second and hash(_Quick(1, c=None)) == hash(_Quick(1, c=None))  # type: ignore[arg-type]


def test_instances_stay_frozen_and_replace_works() -> None:
    quick = _Quick(1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        quick.a = 2  # type: ignore[misc]
    assert dataclasses.replace(quick, b="z") == _Quick(1, "z")
    slotted = _Slotted(x=1)
    assert (slotted.x, slotted.y, slotted.z) == (1, "y", {}) and not hasattr(slotted, "__dict__")
    with pytest.raises(dataclasses.FrozenInstanceError):
        slotted.x = 2  # type: ignore[misc]
    assert dataclasses.replace(slotted, y="w") == _Slotted(x=1, y="w")


@dataclass(frozen=True, slots=True)
class _SlottedBase:
    inherited: int


@quick_init
@dataclass(frozen=True)
class _OnASlottedBase(_SlottedBase):
    own: str = "own"


def test_a_field_held_by_a_bases_slot_goes_into_the_slot() -> None:
    made = _OnASlottedBase(3)
    assert (made.inherited, made.own) == (3, "own")
    assert "inherited" not in made.__dict__ and made.__dict__ == {"own": "own"}
    assert made == _OnASlottedBase(3) and dataclasses.replace(made, inherited=4).inherited == 4


@quick_init
@dataclass(frozen=True)
class _NamedLikeItsMachinery:
    values: int
    self: str = "s"
    extra: list[int] = field(default_factory=list)


def test_fields_named_like_the_generated_codes_own_names_get_their_values() -> None:
    made = _NamedLikeItsMachinery(1, "me")
    assert (made.values, made.self, made.extra) == (1, "me", [])
    assert made == _NamedLikeItsMachinery(values=1, self="me")


def test_the_same_errors_for_wrong_arguments() -> None:
    with pytest.raises(TypeError):
        _Quick()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        _Quick(1, "b", [], (), 5)  # type: ignore[misc]  # d and e are keyword-only
    with pytest.raises(TypeError):
        _Slotted(1)  # type: ignore[misc]
    with pytest.raises(TypeError):
        _Quick(1, f=2)  # type: ignore[call-arg]


def test_post_init_runs() -> None:
    assert _Checked(4).doubled == 8
    with pytest.raises(ValueError, match="n must be"):
        _Checked(-1)


def test_classes_it_cannot_copy_are_refused_at_decoration() -> None:
    @dataclass(frozen=True)
    class WithInitVar:
        a: int
        scale: InitVar[int] = 1

    @dataclass(frozen=True)
    class WithHidden:
        a: int
        hidden: int = field(init=False, default=0)

    @dataclass
    class NotFrozen:
        a: int

    for cls in (WithInitVar, WithHidden, NotFrozen):
        with pytest.raises(TypeError, match="quick_init"):
            quick_init(cls)
