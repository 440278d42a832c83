"""Recognizers for credentials. Vendor-prefixed tokens are near-certain; the rest need context."""

from __future__ import annotations

import re
from collections.abc import Iterator

from guardrails.pii import entity as T
from guardrails.pii import validators as v
from guardrails.pii.recognizer import Recognizer

AWS_ACCESS_KEY = Recognizer(
    T.AWS_ACCESS_KEY,
    0.95,
    pattern=re.compile(
        r"(?<![A-Z0-9])(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|AROA|APKA|ASCA)"
        r"[A-Z0-9]{16}(?![A-Z0-9])"
    ),
)
# A bare 40-char base64 string is also a git SHA-ish blob or a hash; only the keyword
# makes it an AWS secret.
AWS_SECRET_KEY = Recognizer(
    T.AWS_SECRET_KEY,
    0.9,
    pattern=re.compile(r"(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])"),
    validate=lambda s: v.high_entropy_ok(s, min_classes=3),
    context=("aws", "secret_access_key", "secret access key", "aws_secret", "secretaccesskey"),
    require_context=True,
    context_window=80,
    context_boost=0.0,
)
GITHUB_TOKEN = Recognizer(
    T.GITHUB_TOKEN,
    0.95,
    pattern=re.compile(
        r"(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{60,255})(?![A-Za-z0-9_])"
    ),
)
SLACK_TOKEN = Recognizer(
    T.SLACK_TOKEN,
    0.95,
    pattern=re.compile(
        r"(?<![A-Za-z0-9])(?:xox[abposre]-[A-Za-z0-9-]{10,250}[A-Za-z0-9]"
        r"|https://hooks\.slack\.com/services/T[A-Z0-9]{6,}/B[A-Z0-9]{6,}/[A-Za-z0-9]{16,})"
    ),
)
OPENAI_KEY = Recognizer(
    T.OPENAI_KEY,
    0.9,
    pattern=re.compile(
        r"(?<![A-Za-z0-9_-])sk-(?:proj-|svcacct-|admin-|ant-(?:api|admin)\d{2}-)?[A-Za-z0-9_-]{20,}(?![A-Za-z0-9_-])"
    ),
    validate=lambda s: v.high_entropy_ok(s.split("-", 1)[1]),
)
GOOGLE_API_KEY = Recognizer(
    T.GOOGLE_API_KEY,
    0.95,
    pattern=re.compile(r"(?<![A-Za-z0-9_-])AIza[0-9A-Za-z_-]{35}(?![A-Za-z0-9_-])"),
)
JWT = Recognizer(
    T.JWT,
    0.95,
    pattern=re.compile(
        r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}(?![A-Za-z0-9_-])"
    ),
    validate=v.jwt_ok,
)
# An unterminated block is still matched (header + base64 lines) so a key that is being
# streamed out is caught before its END line arrives.
PRIVATE_KEY = Recognizer(
    T.PRIVATE_KEY,
    1.0,
    pattern=re.compile(
        r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
        r"(?:[\s\S]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
        r"|(?:[ \t]*\r?\n[A-Za-z0-9+/=:, \t-]*)*)"
    ),
)

_SECRET_KEYS = (
    r"password|passwd|pwd|passphrase|secret|secret[_-]?key|secret[_-]?access[_-]?key|client[_-]?secret|"
    r"api[_-]?key|apikey|api[_-]?token|access[_-]?token|auth[_-]?token|refresh[_-]?token|"
    r"private[_-]?key|db[_-]?password|connection[_-]?string"
)
_ASSIGNMENT = re.compile(
    rf"""(?i)(?<![A-Za-z0-9])["']?(?:[A-Za-z0-9]{{1,30}}[_-]){{0,4}}(?:{_SECRET_KEYS})["']?\s*(:=|=>|[:=])\s*"""
    r"""(?:"([^"\s]{4,200})"|'([^'\s]{4,200})'|([^\s"'`,;()\[\]{}<>]{4,200}))"""
)
_BEARER = re.compile(r"(?i)\bbearer\s+([A-Za-z0-9\-._~+/]{20,}=*)")
_PLACEHOLDERS = {
    "password",
    "passwd",
    "secret",
    "changeme",
    "change_me",
    "none",
    "null",
    "true",
    "false",
    "example",
    "redacted",
    "hidden",
    "xxxx",
    "****",
    "required",
    "optional",
    "string",
    "str",
    "undefined",
    "your_password",
    "yourpassword",
    "your_api_key",
    "mypassword",
    "value",
}


def _looks_like_real_value(value: str, text: str, end: int) -> bool:
    low = value.lower()
    if low.rstrip("=:") in _PLACEHOLDERS or low.startswith(("your", "<", "$", "{", "%", "os.", "env", "process.")):
        return False
    if len(set(value)) <= 2:  # "****", "xxxx", "...."
        return False
    if end < len(text) and text[end] == "(":  # `password = get_password()`
        return False
    # `api_key = settings.api_key`, `password=user_password`: a code reference, not a value.
    return not (re.fullmatch(r"[A-Za-z_][A-Za-z_.]*", value) and ("." in value or "_" in value))


def _assignment_spans(text: str) -> Iterator[tuple[int, int]]:
    for m in _ASSIGNMENT.finditer(text):
        g = next(i for i in (2, 3, 4) if m.group(i) is not None)
        value = m.group(g)
        # "The secret: always test" is prose; with ':' insist on something password-like.
        if m.group(1) == ":" and g == 4 and value.isalpha():
            continue
        if _looks_like_real_value(value, text, m.end(g)):
            yield m.start(g), m.end(g)
    for m in _BEARER.finditer(text):
        yield m.start(1), m.end(1)


GENERIC_SECRET = Recognizer(T.GENERIC_SECRET, 0.7, finder=_assignment_spans)

RECOGNIZERS: tuple[Recognizer, ...] = (
    PRIVATE_KEY,
    AWS_ACCESS_KEY,
    AWS_SECRET_KEY,
    GITHUB_TOKEN,
    SLACK_TOKEN,
    OPENAI_KEY,
    GOOGLE_API_KEY,
    JWT,
    GENERIC_SECRET,
)
