"""Streaming guard: checked windows, overlap, hold-back; secrets split across deltas never leak."""

from __future__ import annotations

import asyncio

from guardrails.pii import check as pii_check
from guardrails.pii import find_entities
from guardrails.streaming import StreamGuard
from guardrails.verdict import Verdict

KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def run(guard: StreamGuard, deltas: list[str]) -> tuple[str, bool]:
    out = []
    for d in deltas:
        dec = guard.feed(d)
        out.append(dec.release)
        if dec.stop:
            return "".join(out), True
    dec = guard.finish()
    out.append(dec.release)
    return "".join(out), dec.stop


def has_secret(text: str) -> bool:
    return bool(find_entities(text, types={"AWS_ACCESS_KEY", "AWS_SECRET_KEY", "PRIVATE_KEY", "GENERIC_SECRET"}))


def test_clean_stream_is_released_in_full_and_in_order() -> None:
    text = "The quick brown fox jumps over the lazy dog. " * 40
    guard = StreamGuard(has_secret, window=64, overlap=32)
    released, stopped = run(guard, [text[i : i + 7] for i in range(0, len(text), 7)])
    assert not stopped and released == text == guard.released_text


def test_secret_split_across_two_deltas_is_never_released() -> None:
    prefix = "Sure, here is the configuration you asked for. " * 3
    deltas = [prefix + "aws key: AKIAIOSF", "ODNN7EXAMPLE and the rest of the answer." * 3]
    guard = StreamGuard(has_secret, window=32, overlap=48)
    released, stopped = run(guard, deltas)
    assert stopped and guard.stopped
    assert "AKIA" not in released and not has_secret(released)
    assert guard.feed("more text").stop  # stays stopped


def test_secret_streamed_char_by_char_never_leaks_a_prefix() -> None:
    body = ("Some harmless text before the credentials. " * 10) + f"aws_secret_access_key = {SECRET}\nbye"
    guard = StreamGuard(has_secret, window=16, overlap=48)
    released, stopped = run(guard, list(body))
    assert stopped
    assert SECRET[:4] not in released and "wJal" not in released


def test_overlap_gives_context_from_released_text() -> None:
    # "password=" is released in one window; the value arrives later and is caught only
    # because the check sees the released tail.
    text = "config line one is fine and boring. password=" + " " * 2 + "Hunter2xyz9 trailing text " * 4
    guard = StreamGuard(has_secret, window=20, overlap=40, holdback=8)
    released, stopped = run(guard, [text[i : i + 5] for i in range(0, len(text), 5)])
    assert stopped and "Hunter2" not in released


def test_verdict_check_and_token_windows() -> None:
    calls: list[str] = []

    def check(text: str) -> Verdict:
        calls.append(text)
        return pii_check(text, action="block")

    guard = StreamGuard(check, window=5, overlap=24, unit="tokens")
    words = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"]
    released, stopped = run(guard, [w + " " for w in words] + ["mail bob@example.com now"])
    assert stopped and "bob@" not in released
    assert guard.verdict is not None and guard.verdict.rail == "sensitive_data"
    assert len(calls) >= 2  # checked per window, not once at the end


def test_async_check() -> None:
    async def acheck(text: str) -> bool:
        await asyncio.sleep(0)
        return KEY in text

    async def main() -> tuple[str, bool]:
        guard = StreamGuard(acheck, window=10, overlap=24)
        out = []
        for d in ["hello there, ", "the key is AKIAIOSFO", "DNN7EXAMPLE", " done"]:
            dec = await guard.afeed(d)
            out.append(dec.release)
            if dec.stop:
                return "".join(out), True
        dec = await guard.afinish()
        return "".join(out) + dec.release, dec.stop

    released, stopped = asyncio.run(main())
    assert stopped and "AKIA" not in released
