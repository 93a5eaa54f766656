"""``lazy``: a read-only property computed on first use, then kept on the instance.

The same as :func:`functools.cached_property` without its lock: Python 3.11 takes a lock on each
first use, which costs more than most of the values it guards here (a parse computes thousands:
every part's children, texts, decoded bodies). A :class:`~bounceback.core.message.Mail` and its
parts live inside one ``parse`` call, so no other thread ever sees them half-computed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, Self, TypeVar, overload

T = TypeVar("T")


class lazy(Generic[T]):  # lower-case: a decorator, spelled like property
    """Decorates a method without arguments; its result replaces it on the instance."""

    def __init__(self, func: Callable[[Any], T]) -> None:
        self.func = func
        self.name = func.__name__
        self.__doc__ = func.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> Self: ...

    @overload
    def __get__(self, instance: object, owner: type | None = None) -> T: ...

    def __get__(self, instance: object | None, owner: type | None = None) -> T | Self:
        if instance is None:
            return self
        # Stored under the same name: the instance attribute now hides this (non-data)
        # descriptor, so later reads are plain attribute reads.
        value = instance.__dict__[self.name] = self.func(instance)
        return value
