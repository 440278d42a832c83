"""A featurisation memo for training runs.

A retrain fits five models (four folds and the whole train split) on the same texts and scores
them again to calibrate: before this memo a third of the flywheel's retrain went to featurising the
same text (hashing, cue regexes, topic vectors) seven or eight times. Featurisation is a pure
function of its arguments, so the memo changes no bit of a result (tested).

Off unless a ``memoised()`` block is open, and a context variable, so it is per thread: a gateway
that runs a fine-tuning job beside live traffic memoises the job's texts and never a request's."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

T = TypeVar("T")

_memo: ContextVar[dict[Hashable, Any] | None] = ContextVar("injection_feature_memo", default=None)


@contextmanager
def memoised() -> Iterator[None]:
    """Memoise featurisation in this block (nested blocks share the outer block's memo)."""
    outer = _memo.get()
    token = _memo.set({} if outer is None else outer)
    try:
        yield
    finally:
        _memo.reset(token)


def cached(key: Hashable, compute: Callable[[], T]) -> T:
    """``compute()``, computed once per ``key`` inside a ``memoised()`` block; always computed outside."""
    memo = _memo.get()
    if memo is None:
        return compute()
    if key not in memo:
        memo[key] = compute()
    return memo[key]  # type: ignore[no-any-return]
