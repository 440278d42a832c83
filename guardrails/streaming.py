"""Guard a streamed response: buffer deltas, check windows, release only checked text.

Two distances matter and are separate knobs:

* ``overlap``: characters of *already released* text prepended to each check, so context
  that arrived earlier ("password=" in one window, the value in the next) still informs it;
* ``holdback``: characters at the end of each checked window that are *not* released
  yet, because they may be the first half of an entity whose second half has not arrived.
  Set it to at least the longest thing you must never leak partially (AWS secret key: 40,
  JWT/PEM: use the header, which is detectable on its own).

Without the hold-back, overlap alone would catch a split secret only *after* its first
half had gone to the client. With it, no character leaves before it has been part of a
check that also saw ``holdback`` characters after it.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from guardrails.verdict import Verdict

CheckResult = bool | Verdict
CheckFn = Callable[[str], CheckResult] | Callable[[str], Awaitable[CheckResult]]
_TOKEN = re.compile(r"\w+|[^\w\s]")


def approx_tokens(text: str) -> int:
    """Cheap token count (words + punctuation); pass a real tokenizer's count if you have one."""
    return len(_TOKEN.findall(text))


@dataclass(frozen=True, slots=True)
class StreamDecision:
    """What the caller may send now. ``stop`` means: end the stream, send nothing more."""

    release: str
    stop: bool = False
    verdict: Verdict | None = None


class StreamGuard:
    """Accumulate deltas; every ``window`` units run ``check`` and release what passed.

    ``check`` returns ``True``/a non-pass ``Verdict`` for a hit. It may be sync or async;
    use :meth:`feed`/:meth:`finish` for sync checks and :meth:`afeed`/:meth:`afinish` for
    either. One guard per stream; it is not thread-safe.
    """

    def __init__(
        self,
        check: CheckFn,
        window: int = 256,
        overlap: int = 64,
        holdback: int | None = None,
        unit: Literal["chars", "tokens"] = "chars",
        count_tokens: Callable[[str], int] = approx_tokens,
        stop_on: frozenset[str] = frozenset({"block", "mask"}),
    ) -> None:
        if window <= 0 or overlap < 0:
            raise ValueError("window must be > 0 and overlap >= 0")
        self._check = check
        self.window = window
        self.overlap = overlap
        self.holdback = overlap if holdback is None else holdback
        self.unit = unit
        self._count = count_tokens
        self._stop_on = stop_on
        self._released: list[str] = []
        self._released_tail = ""
        self._pending = ""
        self.stopped = False
        self.verdict: Verdict | None = None

    # ------------------------------------------------------------------ internals
    def _size(self, text: str) -> int:
        return len(text) if self.unit == "chars" else self._count(text)

    def _ready(self) -> bool:
        # Enough new material beyond the hold-back to be worth a check.
        return self._size(self._pending[: max(0, len(self._pending) - self.holdback)]) >= self.window

    def _subject(self) -> str:
        return self._released_tail + self._pending

    def _is_hit(self, result: CheckResult) -> bool:
        if isinstance(result, Verdict):
            return result.action in self._stop_on
        return bool(result)

    def _apply(self, result: CheckResult, final: bool) -> StreamDecision:
        if self._is_hit(result):
            self.stopped = True
            self.verdict = result if isinstance(result, Verdict) else None
            self._pending = ""  # withheld for good
            return StreamDecision("", True, self.verdict)
        cut = len(self._pending) if final else max(0, len(self._pending) - self.holdback)
        out, self._pending = self._pending[:cut], self._pending[cut:]
        if out:
            self._released.append(out)
            self._released_tail = (self._released_tail + out)[-self.overlap :] if self.overlap else ""
        return StreamDecision(out, False, result if isinstance(result, Verdict) else None)

    def _stopped(self) -> StreamDecision:
        return StreamDecision("", True, self.verdict)

    @property
    def released_text(self) -> str:
        return "".join(self._released)

    # ------------------------------------------------------------------ sync API
    def _call_sync(self) -> CheckResult:
        result = self._check(self._subject())
        if inspect.isawaitable(result):
            raise TypeError("check is async: use afeed()/afinish()")
        return result

    def feed(self, delta: str) -> StreamDecision:
        if self.stopped:
            return self._stopped()
        self._pending += delta
        if not self._ready():
            return StreamDecision("")
        return self._apply(self._call_sync(), final=False)

    def finish(self) -> StreamDecision:
        """End of stream: check and release whatever is still pending."""
        if self.stopped:
            return self._stopped()
        if not self._pending:
            return StreamDecision("")
        return self._apply(self._call_sync(), final=True)

    # ------------------------------------------------------------------ async API
    async def _call_async(self) -> CheckResult:
        result = self._check(self._subject())
        if inspect.isawaitable(result):
            result = await result
        return result

    async def afeed(self, delta: str) -> StreamDecision:
        if self.stopped:
            return self._stopped()
        self._pending += delta
        if not self._ready():
            return StreamDecision("")
        return self._apply(await self._call_async(), final=False)

    async def afinish(self) -> StreamDecision:
        if self.stopped:
            return self._stopped()
        if not self._pending:
            return StreamDecision("")
        return self._apply(await self._call_async(), final=True)
