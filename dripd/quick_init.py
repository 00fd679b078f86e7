"""A faster ``__init__`` for the frozen dataclasses every send makes. Pure.

A frozen dataclass's generated ``__init__`` sets each field through
``object.__setattr__(self, name, value)``: a global lookup, an attribute lookup and a generic
setattr per field, 2-4x the cost of a plain class's ``__init__``. A send builds about 23 of them
(the run's context, its claim, its envelope, the plan, the result, the events; bench_dispatch's
null transport, counted per step), and their ``__init__`` lines were ~7 % of the event loop's
samples in the headline (py-spy --gil; issue 14, BENCHMARKS.md). ``quick_init`` replaces that
``__init__`` with one that writes the same values where ``object.__setattr__`` would have put
them: through the class's data descriptor for the name (a slot), else into the instance's
``__dict__``. The class stays frozen (its ``__setattr__`` still refuses), and
``dataclasses.replace`` and ``__post_init__`` work as before.

Only for plain fields: a class with an ``InitVar`` or an ``init=False`` field is refused when it
is decorated, so a class this cannot copy fails at import, not at its first use.
tests/unit/test_quick_init.py holds each decorated class to the ``__init__`` dataclasses made
for it.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, TypeVar, cast

__all__ = ["quick_init"]

T = TypeVar("T")

_FACTORY = object()  # the default of a field with a default_factory: "call the factory"


def quick_init(cls: type[T]) -> type[T]:
    """Give the frozen dataclass ``cls`` a faster ``__init__`` with the same signature and
    effect. Applied above ``@dataclass(frozen=True, ...)``."""
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or not params.init:
        raise TypeError(f"quick_init: {cls.__qualname__} is not a frozen dataclass with an __init__")
    # The generated code's own names are ``__quick_...__``, which no field is called: a field
    # named like one of them (``values``, say) would shadow it. As in dataclasses, the instance
    # is ``__dataclass_self__`` when a field is named ``self``.
    fields = dataclasses.fields(cast(Any, cls))
    me = "__dataclass_self__" if any(field.name == "self" for field in fields) else "self"
    namespace: dict[str, Any] = {"__quick_factory__": _FACTORY}
    positional: list[str] = []
    keyword_only: list[str] = []
    body: list[str] = []
    in_dict = False
    for field in fields:
        if not field.init:
            raise TypeError(f"quick_init: {cls.__qualname__}.{field.name} is init=False")
        name = field.name
        parameter = name
        if field.default is not dataclasses.MISSING:
            namespace[f"__quick_default_{name}__"] = field.default
            parameter += f"=__quick_default_{name}__"
        elif field.default_factory is not dataclasses.MISSING:
            namespace[f"__quick_factory_{name}__"] = field.default_factory
            parameter += "=__quick_factory__"
            body.append(f"    if {name} is __quick_factory__: {name} = __quick_factory_{name}__()")
        (keyword_only if field.kw_only else positional).append(parameter)
        descriptor = inspect.getattr_static(cls, name, None)
        if hasattr(type(descriptor), "__set__"):  # a slot (this class's or a base's): it holds the value
            namespace[f"__quick_set_{name}__"] = descriptor.__set__
            body.append(f"    __quick_set_{name}__({me}, {name})")
        else:
            in_dict = True
            body.append(f"    __quick_dict__[{name!r}] = {name}")
    if in_dict:
        body.insert(0, f"    __quick_dict__ = {me}.__dict__")
    if hasattr(cls, "__post_init__"):
        body.append(f"    {me}.__post_init__()")
    signature = ", ".join([me, *positional, *(["*", *keyword_only] if keyword_only else [])])
    source = f"def __init__({signature}):\n" + "\n".join(body or ["    pass"]) + "\n"
    exec(source, namespace)  # as dataclasses itself does; the names are fields, checked by it
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    if _shape(init) != _shape(cls.__init__):  # an InitVar, say: a parameter that is no field
        raise TypeError(f"quick_init: {cls.__qualname__}.__init__ takes parameters that are not its fields")
    init.dataclass_init = cls.__init__  # kept for tests/unit/test_quick_init.py to compare with
    setattr(cls, "__init__", init)
    return cls


def _shape(function: Any) -> list[tuple[str, Any, bool]]:
    """Each parameter's name, kind and whether it has a default."""
    return [(p.name, p.kind, p.default is not inspect.Parameter.empty)
            for p in inspect.signature(function).parameters.values()]
