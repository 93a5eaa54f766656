"""``quick_init``: a faster ``__init__`` for the frozen, slotted dataclasses that ``parse`` builds
for every message (Facts, Decision, RecipientResult, Original, Report), and :func:`replace`, a
faster :func:`dataclasses.replace` for them.

A frozen dataclass's own ``__init__`` stores each field with ``object.__setattr__(self, name,
value)``, which looks the name up in the class on every call. Storing through each field's slot
descriptor, looked up once when the class is made, does the same in about half the time. The
parameters, their defaults and default factories are the dataclass's own, and the instance stays
frozen: only ``__init__`` is replaced, assignment still raises FrozenInstanceError.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

# The copy function quick_init made for each class, for replace().
_REPLACERS: dict[type, Callable[[Any, dict[str, Any]], Any]] = {}


class _Factory:
    """The default of a parameter whose field has a default factory (as in dataclasses)."""

    def __repr__(self) -> str:
        return "<factory>"


_FACTORY = _Factory()


def quick_init(cls: type[T]) -> type[T]:
    """Give a ``@dataclass(frozen=True, slots=True)`` class the faster ``__init__``. Apply it
    above the ``@dataclass`` decorator (it needs the class that dataclass made)."""
    env: dict[str, Any] = {"_FACTORY": _FACTORY}
    params: list[str] = []
    body: list[str] = []
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if not f.init:
            raise TypeError(f"{cls.__name__}.{f.name}: quick_init needs every field in __init__")
        env[f"_set_{f.name}"] = cls.__dict__[f.name].__set__  # the slot's descriptor
        if f.default is not dataclasses.MISSING:
            env[f"_default_{f.name}"] = f.default
            params.append(f"{f.name}=_default_{f.name}")
        elif f.default_factory is not dataclasses.MISSING:
            env[f"_factory_{f.name}"] = f.default_factory
            params.append(f"{f.name}=_FACTORY")
            body.append(f"if {f.name} is _FACTORY: {f.name} = _factory_{f.name}()")
        else:
            params.append(f.name)
        body.append(f"_set_{f.name}(self, {f.name})")
    source = f"def __init__(self, {', '.join(params)}):\n" + "".join(f"    {b}\n" for b in body)
    exec(source, env)  # the way dataclasses makes its own __init__
    init = env["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__doc__ = cls.__init__.__doc__
    setattr(cls, "__init__", init)  # noqa: B010 (mypy refuses an assignment to a method)
    _REPLACERS[cls] = _make_replacer(cls, env)
    return cls


def _make_replacer(cls: type, env: dict[str, Any]) -> Callable[[Any, dict[str, Any]], Any]:
    """A function (instance, changes) -> a new instance: each field from ``changes`` or else
    from the instance, stored through the slot descriptors ``env`` holds (as __init__ does)."""
    names = [f.name for f in dataclasses.fields(cls)]
    env.update({"_cls": cls, "_new": object.__new__, "_names": frozenset(names)})
    body = [
        "if not _names.issuperset(changes):",
        "    raise TypeError(f'{_cls.__name__} has no field among {sorted(changes)}')",
        "new = _new(_cls)",
        *(f"_set_{n}(new, changes['{n}'] if '{n}' in changes else obj.{n})" for n in names),
        "return new",
    ]
    exec("def _replace(obj, changes):\n" + "".join(f"    {b}\n" for b in body), env)
    replacer: Callable[[Any, dict[str, Any]], Any] = env["_replace"]
    return replacer


def replace(obj: T, **changes: Any) -> T:
    """:func:`dataclasses.replace` for an instance of a quick_init class: the same new instance
    (no field is given a default or a factory's value again: each is the old one or the
    change), in about half the time, as no ``__init__`` call and keyword dict are made."""
    made: T = _REPLACERS[type(obj)](obj, changes)
    return made
