"""No regular expression of the core can backtrack catastrophically.

Every compiled pattern the core holds (module-level patterns and the rule tables) is parsed and
checked for the shape behind exponential backtracking: an unbounded repeat nested inside another
unbounded repeat, like ``(a+)+`` or ``(\\s*x*)*``. The check is structural, so it holds for any
input, not just the inputs a timing test would try.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from re import _constants as C  # type: ignore[attr-defined]
from re import _parser  # type: ignore[attr-defined]
from typing import Any

import pytest

import bounceback.core
from bounceback.core.classify.rules.phrases import PHRASE_RULES
from bounceback.core.classify.rules.providers import PROVIDER_RULES

_REPEATS = {C.MAX_REPEAT, C.MIN_REPEAT, getattr(C, "POSSESSIVE_REPEAT", C.MAX_REPEAT)}


def _core_patterns() -> list[tuple[str, re.Pattern[str] | re.Pattern[bytes]]]:
    found = []
    for info in pkgutil.walk_packages(bounceback.core.__path__, "bounceback.core."):
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if isinstance(value, re.Pattern):
                found.append((f"{info.name}.{name}", value))
    found += [(f"phrase {r.id}", r.compiled()) for r in PHRASE_RULES]
    found += [(f"provider {r.id}", re.compile(r.pattern)) for r in PROVIDER_RULES if r.pattern]
    return found


def _nested_unbounded(items: Any, inside_unbounded: bool = False) -> bool:
    """True when an unbounded repeat sits (at any depth) inside another unbounded repeat."""
    for op, av in items:
        if op in _REPEATS:
            _, high, sub = av
            unbounded = high == C.MAXREPEAT
            if unbounded and inside_unbounded:
                return True
            children = [sub]
            inside = inside_unbounded or unbounded
        else:
            children = _children(op, av)
            inside = inside_unbounded
        if any(_nested_unbounded(child, inside) for child in children):
            return True
    return False


def _children(op: Any, av: Any) -> list[Any]:
    if op is C.SUBPATTERN:
        return [av[-1]]
    if op is C.BRANCH:
        return list(av[1])
    if op in (C.ASSERT, C.ASSERT_NOT):
        return [av[1]]
    return []


PATTERNS = _core_patterns()


def test_patterns_were_found() -> None:
    assert len(PATTERNS) > 30


@pytest.mark.parametrize(("name", "pattern"), PATTERNS, ids=[n for n, _ in PATTERNS])
def test_no_nested_unbounded_repeats(name: str, pattern: re.Pattern[Any]) -> None:
    tree = _parser.parse(pattern.pattern, pattern.flags)
    assert not _nested_unbounded(tree), f"{name}: nested unbounded repeat in {pattern.pattern!r}"


def test_the_check_finds_the_classic_shapes() -> None:
    for bad in (r"(a+)+b", r"(\w+\s?)*$", r"(x*y*)*z"):
        assert _nested_unbounded(_parser.parse(bad)), bad
    for good in (r"a+b+", r"(ab)+", r"[a-z]+@[a-z.]+", r"(?:x{0,40})+"):
        assert not _nested_unbounded(_parser.parse(good)), good
