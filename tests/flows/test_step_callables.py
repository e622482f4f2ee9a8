"""A step's callable takes the scope when it has exactly one positional parameter without a
default (a bound method counts its own ``self`` out); otherwise it is called with no argument."""

from __future__ import annotations

import functools
from typing import Any

import pytest

from cruxcelery.flows.scope import _wants_scope


class _Steps:
    def with_scope(self, scope: Any) -> int:
        return 1

    def without(self) -> int:
        return 1


def _plain(scope: Any) -> int:
    return 1


@functools.wraps(_plain)
def _wrapped(*args: Any, **kwargs: Any) -> int:
    return _plain(*args, **kwargs)


@pytest.mark.parametrize(("fn", "wants"), [
    (lambda: 1, False),
    (lambda scope: 1, True),
    (lambda i=3: i, False),  # a loop variable bound by a default: no scope
    (lambda scope, i=3: i, True),
    (lambda scope, *, k=1: k, True),
    (lambda a, b, c=1: c, False),
    (_Steps().with_scope, True),
    (_Steps().without, False),
    (functools.partial(lambda scope, i: i, i=1), True),
    (_wrapped, True),  # inspect follows __wrapped__ to the function it wraps
], ids=["none", "scope", "default-only", "scope-and-default", "scope-and-kwonly", "two-required", "method",
        "method-without", "partial", "wrapped"])
def test_a_step_callable_takes_the_scope_only_when_it_asks_for_it(fn: Any, wants: bool) -> None:
    assert _wants_scope(fn) is wants
