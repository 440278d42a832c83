"""Checksum and structure validators.

Regexes only propose candidates; these functions are what keeps a random 16-digit order
number from being called a card. Each takes the matched string and returns True if it
is plausibly real.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import re

_NON_DIGIT = re.compile(r"\D")
_NON_ALNUM = re.compile(r"[^0-9A-Za-z]")

# IBAN lengths per country (SWIFT IBAN registry). An unknown country code is rejected:
# without the table any 2 letters + mod-97 would pass ~1% of random alphanumerics.
IBAN_LENGTHS: dict[str, int] = {
    "AD": 24,
    "AE": 23,
    "AL": 28,
    "AT": 20,
    "AZ": 28,
    "BA": 20,
    "BE": 16,
    "BG": 22,
    "BH": 22,
    "BR": 29,
    "BY": 28,
    "CH": 21,
    "CR": 22,
    "CY": 28,
    "CZ": 24,
    "DE": 22,
    "DK": 18,
    "DO": 28,
    "EE": 20,
    "EG": 29,
    "ES": 24,
    "FI": 18,
    "FO": 18,
    "FR": 27,
    "GB": 22,
    "GE": 22,
    "GI": 23,
    "GL": 18,
    "GR": 27,
    "GT": 28,
    "HR": 21,
    "HU": 28,
    "IE": 22,
    "IL": 23,
    "IQ": 23,
    "IS": 26,
    "IT": 27,
    "JO": 30,
    "KW": 30,
    "KZ": 20,
    "LB": 28,
    "LC": 32,
    "LI": 21,
    "LT": 20,
    "LU": 20,
    "LV": 21,
    "MC": 27,
    "MD": 24,
    "ME": 22,
    "MK": 19,
    "MR": 27,
    "MT": 31,
    "MU": 30,
    "NL": 18,
    "NO": 15,
    "PK": 24,
    "PL": 28,
    "PS": 29,
    "PT": 25,
    "QA": 29,
    "RO": 24,
    "RS": 22,
    "SA": 24,
    "SC": 31,
    "SE": 24,
    "SI": 19,
    "SK": 24,
    "SM": 27,
    "ST": 25,
    "SV": 28,
    "TL": 23,
    "TN": 24,
    "TR": 26,
    "UA": 29,
    "VA": 22,
    "VG": 24,
    "XK": 20,
}


def digits_of(value: str) -> str:
    return _NON_DIGIT.sub("", value)


def luhn_ok(value: str) -> bool:
    digits = digits_of(value)
    if not digits:
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def credit_card_ok(value: str, min_digits: int = 13) -> bool:
    digits = digits_of(value)
    if not (min_digits <= len(digits) <= 19):
        return False
    if len(set(digits)) == 1:
        return False
    # Issuer prefixes: 2-6 cover Mastercard/Amex/Diners/JCB/Visa/Discover/Maestro/UnionPay;
    # 1800 is old JCB. Numbers starting 0, 7, 8, 9 are almost always something else.
    if digits[0] not in "23456" and not digits.startswith("1800"):
        return False
    # Separators must form a plausible grouping, not an arbitrary sprinkle of dashes.
    groups = re.split(r"[ -]", value)
    if len(groups) > 1 and any(len(g) < 3 or len(g) > 6 for g in groups[:-1]):
        return False
    return luhn_ok(digits)


def iban_ok(value: str) -> bool:
    compact = _NON_ALNUM.sub("", value).upper()
    country = compact[:2]
    expected = IBAN_LENGTHS.get(country)
    if expected is None or len(compact) != expected or not compact[2:4].isdigit():
        return False
    rearranged = compact[4:] + compact[:4]
    numeric = "".join(str(int(ch, 36)) for ch in rearranged)
    return int(numeric) % 97 == 1


# SSNs the SSA says will never be issued, plus famous published examples that show up in
# docs and test data far more often than as anyone's real number.
_SSN_NEVER = {"078051120", "219099999", "123456789", "111111111", "333333333"}


def us_ssn_ok(value: str) -> bool:
    digits = digits_of(value)
    if len(digits) != 9 or digits in _SSN_NEVER:
        return False
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    if area in ("000", "666") or area[0] == "9":
        return False
    return group != "00" and serial != "0000"


_NINO_BAD_FIRST = set("DFIQUV")
_NINO_BAD_SECOND = set("DFIQUVO")
_NINO_BAD_PREFIX = {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}


def uk_nino_ok(value: str) -> bool:
    compact = _NON_ALNUM.sub("", value).upper()
    if len(compact) != 9:
        return False
    prefix, digits, suffix = compact[:2], compact[2:8], compact[8]
    if not (prefix.isalpha() and digits.isdigit() and suffix in "ABCD"):
        return False
    if prefix[0] in _NINO_BAD_FIRST or prefix[1] in _NINO_BAD_SECOND:
        return False
    return prefix not in _NINO_BAD_PREFIX


def ipv4_ok(value: str) -> bool:
    try:
        addr = ipaddress.IPv4Address(value)
    except ValueError:
        return False
    # 0.0.0.0 and x.x.x.0-style netmasks are config boilerplate, not a person's address.
    return not addr.is_unspecified and value != "255.255.255.255"


def ipv6_ok(value: str) -> bool:
    try:
        ipaddress.IPv6Address(value)
    except ValueError:
        return False
    # Without these, C++ scopes (`a::b`) and hex-ish identifiers would count as addresses.
    groups = [g for g in value.split(":") if g]
    return value == "::1" or (len(groups) >= 3 and any(c.isdigit() for c in value))


def jwt_ok(value: str) -> bool:
    header = value.split(".", 1)[0]
    try:
        decoded = base64.urlsafe_b64decode(header + "=" * (-len(header) % 4))
        obj = json.loads(decoded)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return False
    return isinstance(obj, dict) and ("alg" in obj or "typ" in obj)


def high_entropy_ok(value: str, min_classes: int = 2) -> bool:
    """Reject placeholders like ``xxxxxxxx`` or ``your-key-here`` that look key-shaped."""
    classes = sum(
        (
            any(c.islower() for c in value),
            any(c.isupper() for c in value),
            any(c.isdigit() for c in value),
        )
    )
    return classes >= min_classes and len(set(value)) >= min(10, len(value) // 2)
