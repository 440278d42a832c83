"""A recognizer turns text into candidate entities: regex (or custom finder) + validator + context."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from guardrails.pii.entity import Entity

Finder = Callable[[str], Iterator[tuple[int, int]]]


def keywords_regex(words: tuple[str, ...]) -> re.Pattern[str]:
    alternation = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    return re.compile(rf"(?<![A-Za-z])(?:{alternation})(?![A-Za-z])", re.IGNORECASE)


@dataclass(frozen=True)
class Recognizer:
    """One entity type, one candidate pattern.

    ``group`` selects the regex group that holds the value, so an assignment like
    ``password=hunter2`` masks only ``hunter2`` and keeps the key readable.
    Context keywords look ``context_window`` characters *before* the match; with
    ``context_after`` a short distance after is searched too, for ``context_after_words``
    (default: the same keywords), e.g. ``555 0134 (mobile)``. With ``require_context`` a candidate
    without context is dropped: that is how weak formats (bare digit groups) are allowed
    without flagging every number in a spreadsheet.
    """

    type: str
    score: float
    pattern: re.Pattern[str] | None = None
    finder: Finder | None = None
    group: int = 0
    validate: Callable[[str], bool] | None = None
    context: tuple[str, ...] = ()
    require_context: bool = False
    context_window: int = 40
    context_after: int = 0
    context_after_words: tuple[str, ...] = ()
    context_boost: float = 0.1
    _context_re: re.Pattern[str] | None = field(default=None, init=False, repr=False)
    _after_re: re.Pattern[str] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if (self.pattern is None) == (self.finder is None):
            raise ValueError(f"{self.type}: give exactly one of pattern / finder")
        if self.context:
            object.__setattr__(self, "_context_re", keywords_regex(self.context))
        after_words = self.context_after_words or self.context
        if after_words and self.context_after:
            object.__setattr__(self, "_after_re", keywords_regex(after_words))

    def _spans(self, text: str) -> Iterator[tuple[int, int]]:
        if self.finder is not None:
            yield from self.finder(text)
            return
        assert self.pattern is not None
        for m in self.pattern.finditer(text):
            if m.group(self.group) is not None:
                yield m.start(self.group), m.end(self.group)

    def has_context(self, text: str, start: int, end: int) -> bool:
        if self._context_re is None:
            return False
        if self._context_re.search(text[max(0, start - self.context_window) : start]):
            return True
        return self._after_re is not None and bool(self._after_re.search(text[end : end + self.context_after]))

    def find(self, text: str) -> Iterator[Entity]:
        for start, end in self._spans(text):
            value = text[start:end]
            if not value or (self.validate is not None and not self.validate(value)):
                continue
            score = self.score
            if self._context_re is not None:
                if self.has_context(text, start, end):
                    score = min(1.0, score + self.context_boost)
                elif self.require_context:
                    continue
            yield Entity(self.type, start, end, value, round(score, 3))
