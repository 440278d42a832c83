"""Recognizers for personal data: contact details, payment and national identifiers, IPs."""

from __future__ import annotations

import re
from collections.abc import Iterator

from guardrails.pii import entity as T
from guardrails.pii import validators as v
from guardrails.pii.recognizer import Recognizer

EMAIL = Recognizer(
    T.EMAIL,
    0.95,
    pattern=re.compile(
        r"(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}"
        r"[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-])"
    ),
)

# ---------------------------------------------------------------- phone numbers
# "number"/"office" alone are deliberately absent before the digits: "license number is
# 2270-66-1551" and "office is at 17031 Main St" are not phones. After the digits
# ("416 60 039 office") they are a strong hint.
_PHONE_CONTEXT = (
    "phone",
    "tel",
    "telephone",
    "mobile",
    "cell",
    "cellphone",
    "fax",
    "call",
    "called",
    "calling",
    "contact",
    "whatsapp",
    "sms",
    "text me",
    "messages to",
    "reach me",
    "reach us",
    "dial",
    "landline",
    "hotline",
    "ph",
    "answering",
    "phone number",
    "mobile number",
)
_PHONE_AFTER = ("office", "fax", "mobile", "cell", "home", "work", "desk", "direct", "tel")
_SEP = r"[ .\-]"
_EXT = r"(?:\s?(?:x|ext\.?|extension|#)\s?\d{1,5})?"
_US_PHONE = rf"(?:(?:\+1|001|1){_SEP}?)?(?:\(\d{{3}}\)\s?|\d{{3}}{_SEP})\d{{3}}{_SEP}\d{{4}}{_EXT}"
# +CC, optional "(0)" trunk hint, then 2-6 digit groups: E.164 allows at most 15 digits.
_INTL_PHONE = rf"\+\d{{1,3}}(?:\s?\(0\))?(?:{_SEP}?\(?\d{{1,5}}\)?){{2,6}}{_EXT}"
# National format with a leading trunk 0 (UK 07700 900 123, FR 03.93.92.16.85, AU (08) 8747 6301).
_TRUNK_PHONE = rf"(?:\(0\d{{1,4}}\)|0\d{{1,4}})(?:{_SEP}\d{{2,4}}){{1,4}}"
_END = r"(?![\w]|[\-/.]\d)"
_STRONG_PHONE = re.compile(rf"(?<![\w+.\-/])(?:{_US_PHONE}|{_INTL_PHONE}|{_TRUNK_PHONE}){_END}")
# Bare digit groups ("467 3395", "9498777106"): only with a phone word nearby.
_WEAK_PHONE = re.compile(rf"(?<![\w+.\-/])(?:\(?\d{{2,5}}\)?(?:{_SEP}\d{{2,5}}){{1,4}}|\d{{7,12}}){_EXT}{_END}")
_DATE_LIKE = re.compile(r"^(?:\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./](?:\d{2}|\d{4}))$")
_YEAR = re.compile(r"^(?:19|20)\d{2}$")
# 3-2-4 with dashes is the SSN layout; no phone plan writes numbers that way.
_SSN_SHAPE = re.compile(r"^\d{3}-\d{2}-\d{4}$")


def _phone_ok(value: str, min_digits: int = 8) -> bool:
    digits = v.digits_of(value.split("x")[0].split("ext")[0].split("#")[0])
    if not (min_digits <= len(digits) <= 15) or len(set(digits)) < 3:
        return False
    return not (_DATE_LIKE.match(value.strip()) or _SSN_SHAPE.match(value))


def _weak_phone_ok(value: str) -> bool:
    return _phone_ok(value, min_digits=7) and not _YEAR.match(value)


PHONE_STRONG = Recognizer(
    T.PHONE,
    0.75,
    pattern=_STRONG_PHONE,
    validate=_phone_ok,
    context=_PHONE_CONTEXT,
    context_after=12,
    context_after_words=_PHONE_AFTER,
    context_boost=0.2,
)
PHONE_WEAK = Recognizer(
    T.PHONE,
    0.5,
    pattern=_WEAK_PHONE,
    validate=_weak_phone_ok,
    context=_PHONE_CONTEXT,
    require_context=True,
    context_window=25,
    context_after=12,
    context_after_words=_PHONE_AFTER,
    context_boost=0.1,
)

# ---------------------------------------------------------------- payment cards & IBAN
_CARD_CONTEXT = (
    "card",
    "credit",
    "debit",
    "visa",
    "mastercard",
    "amex",
    "american express",
    "discover",
    "diners",
    "jcb",
    "maestro",
    "cc",
    "ccn",
    "pan",
    "payment",
    "paid with",
    "charge",
)
CREDIT_CARD = Recognizer(
    T.CREDIT_CARD,
    0.85,
    pattern=re.compile(r"(?<![\w\-.])\d(?:[ \-]?\d){12,18}(?![\w\-]|\.\d)"),
    validate=v.credit_card_ok,
    context=_CARD_CONTEXT,
    context_boost=0.1,
)
# 12-digit Maestro numbers exist but so do many 12-digit references; require a card word.
CREDIT_CARD_SHORT = Recognizer(
    T.CREDIT_CARD,
    0.6,
    pattern=re.compile(r"(?<![\w\-.])\d{12}(?![\w\-]|\.\d)"),
    validate=lambda s: v.credit_card_ok(s, min_digits=12),
    context=_CARD_CONTEXT,
    require_context=True,
    context_window=60,
)

_IBAN_START = re.compile(r"(?<![A-Za-z0-9])([A-Za-z]{2})(\d{2})")


def _iban_spans(text: str) -> Iterator[tuple[int, int]]:
    """Walk forward from each country code, taking exactly the registry length.

    A regex cannot know where an IBAN printed in groups of four ends ("... 7654 32 and"),
    but the country's fixed length tells us, so we consume alphanumerics (allowing single
    spaces/dashes between them) until that length is reached.
    """
    for m in _IBAN_START.finditer(text):
        expected = v.IBAN_LENGTHS.get(m.group(1).upper())
        if expected is None:
            continue
        pos, count, end = m.start(), 0, m.start()
        n = len(text)
        while pos < n and count < expected:
            ch = text[pos]
            if ch.isascii() and ch.isalnum():
                count += 1
                pos += 1
                end = pos
            elif ch in " -" and pos + 1 < n and text[pos + 1].isascii() and text[pos + 1].isalnum() and count >= 4:
                pos += 1
            else:
                break
        if count == expected and not (end < n and text[end].isascii() and text[end].isalnum()):
            yield m.start(), end


IBAN = Recognizer(T.IBAN, 0.95, finder=_iban_spans, validate=v.iban_ok)

# ---------------------------------------------------------------- national identifiers
_SSN_CONTEXT = ("ssn", "social security", "social-security", "ss#", "ss no", "taxpayer")
US_SSN = Recognizer(
    T.US_SSN,
    0.85,
    pattern=re.compile(r"(?<![\w\-])\d{3}([- ])\d{2}\1\d{4}(?![\w\-])"),
    validate=v.us_ssn_ok,
    context=_SSN_CONTEXT,
    context_boost=0.1,
)
US_SSN_BARE = Recognizer(
    T.US_SSN,
    0.7,
    pattern=re.compile(r"(?<![\w\-])\d{9}(?![\w\-])"),
    validate=v.us_ssn_ok,
    context=_SSN_CONTEXT,
    require_context=True,
)
UK_NINO = Recognizer(
    T.UK_NINO,
    0.85,
    pattern=re.compile(r"(?<![A-Za-z0-9])[A-Z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-D](?![A-Za-z0-9])"),
    validate=v.uk_nino_ok,
    context=("national insurance", "nino", "ni number", "ni no"),
)

# ---------------------------------------------------------------- IP addresses
IPV4 = Recognizer(
    T.IP_ADDRESS,
    0.85,
    pattern=re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)"),
    validate=v.ipv4_ok,
)
IPV6 = Recognizer(
    T.IP_ADDRESS,
    0.85,
    pattern=re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|(?:\d{1,3}\.){3}\d{1,3})?(?![\w:])"),
    validate=v.ipv6_ok,
)

RECOGNIZERS: tuple[Recognizer, ...] = (
    EMAIL,
    PHONE_STRONG,
    PHONE_WEAK,
    CREDIT_CARD,
    CREDIT_CARD_SHORT,
    IBAN,
    US_SSN,
    US_SSN_BARE,
    UK_NINO,
    IPV4,
    IPV6,
)
