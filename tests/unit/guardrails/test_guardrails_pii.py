"""PII / secret detection: positives and near-miss negatives per entity type."""

from __future__ import annotations

import pytest

from guardrails.pii import ALL_TYPES, check, find_entities

# Vendor-prefixed fakes are assembled at runtime so secret scanners do not flag this file.
GH = "gh" + "p_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5"
SLACK = "xo" + "xb-" + "123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"
OPENAI = "s" + "k-proj-" + "Xy12Ab34Cd56Ef78Gh90Ij12Kl34"
GOOGLE = "AI" + "za" + "SyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    ".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)


def types_of(text: str) -> list[tuple[str, str]]:
    return [(e.type, e.value) for e in find_entities(text)]


@pytest.mark.parametrize(
    ("text", "etype", "value"),
    [
        ("mail me: jane.doe+work@example.co.uk.", "EMAIL", "jane.doe+work@example.co.uk"),
        ("call (415) 555-0134 today", "PHONE", "(415) 555-0134"),
        ("Tel: +44 20 7946 0958", "PHONE", "+44 20 7946 0958"),
        ("mobile 07700 900 123", "PHONE", "07700 900 123"),
        ("US +1-212-555-0199 x42", "PHONE", "+1-212-555-0199 x42"),
        ("phone: 9498777106", "PHONE", "9498777106"),
        ("card 4111 1111 1111 1111 exp 12/29", "CREDIT_CARD", "4111 1111 1111 1111"),
        ("amex 378282246310005", "CREDIT_CARD", "378282246310005"),
        ("mc 5500-0000-0000-0004", "CREDIT_CARD", "5500-0000-0000-0004"),
        ("IBAN GB82 WEST 1234 5698 7654 32 for rent", "IBAN", "GB82 WEST 1234 5698 7654 32"),
        ("de89370400440532013000", "IBAN", "de89370400440532013000"),
        ("SSN 536-22-1234", "US_SSN", "536-22-1234"),
        ("my ssn is 536221234", "US_SSN", "536221234"),
        ("NI number AB 12 34 56 C", "UK_NINO", "AB 12 34 56 C"),
        ("host 192.168.10.200 is down", "IP_ADDRESS", "192.168.10.200"),
        ("ping 2001:db8::8a2e:370:7334 now", "IP_ADDRESS", "2001:db8::8a2e:370:7334"),
        ("AWS key AKIAIOSFODNN7EXAMPLE", "AWS_ACCESS_KEY", "AKIAIOSFODNN7EXAMPLE"),
        (
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "AWS_SECRET_KEY",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        ),
        (f"token {GH} here", "GITHUB_TOKEN", GH),
        (f"slack {SLACK}", "SLACK_TOKEN", SLACK),
        (f"OPENAI_API_KEY={OPENAI}", "OPENAI_KEY", OPENAI),
        (f"key={GOOGLE}", "GOOGLE_API_KEY", GOOGLE),
        (f"Authorization: {JWT}", "JWT", JWT),
        ('db_password = "S3cr3t!pw"', "GENERIC_SECRET", "S3cr3t!pw"),
        ("api_key: 9f8e7d6c5b4a", "GENERIC_SECRET", "9f8e7d6c5b4a"),
    ],
)
def test_detects(text: str, etype: str, value: str) -> None:
    assert (etype, value) in types_of(text)


def test_private_key_block_including_unterminated() -> None:
    pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA7\nQWERTY+/=\n-----END RSA PRIVATE KEY-----"
    ents = find_entities(f"key:\n{pem}\nthanks")
    assert [(e.type, e.value) for e in ents] == [("PRIVATE_KEY", pem)]
    # Half-streamed key: the header alone must already be caught.
    partial = find_entities("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAA")
    assert partial and partial[0].type == "PRIVATE_KEY"


@pytest.mark.parametrize(
    "text",
    [
        "card 4111 1111 1111 1112",  # fails Luhn
        "ref 1234567890123456",  # fails Luhn
        "id 9111111111111111111",  # no issuer starts with 9
        "IBAN GB82 WEST 1234 5698 7654 33",  # mod-97 fails
        "XX82WEST12345698765432",  # unknown country
        "SSN 000-12-3456",
        "SSN 666-12-3456",
        "SSN 912-34-5678",
        "SSN 536-00-1234",
        "SSN 536-22-0000",
        "NINO BG 12 34 56 A",  # never-issued prefix
        "NINO DA 12 34 56 A",  # D not allowed first
        "NINO AB 12 34 56 E",  # suffix must be A-D
        "on 2021-04-16 at 12:30:45",
        "born 12/05/1990",
        "I have 1234567 apples",
        "version 3.11.7 and 1.2.3.4.5",
        "256.1.1.1 is not an address",
        "std::vector<int> and a::b",
        "user@localhost is not an email",
        "sk-learn is a typo of sklearn",
        "AKIA1234 is too short",
        "eyJnotjson123.eyJabcdefgh.signature12",  # header is not base64 JSON
        "password = get_password()",
        "api_key = settings.api_key",
        'password: "${DB_PASSWORD}"',
        "The secret: always test your code",
        "the office is at 17031 2202 Rissik St",
        "license number is 2270-66-1551",
    ],
)
def test_near_misses_are_not_flagged(text: str) -> None:
    assert types_of(text) == []


def test_entities_sorted_non_overlapping_and_filterable() -> None:
    text = "x 4111111111111111 y jane@example.com z 10.0.0.1"
    ents = find_entities(text)
    assert [e.type for e in ents] == ["CREDIT_CARD", "EMAIL", "IP_ADDRESS"]
    assert all(a.end <= b.start for a, b in zip(ents, ents[1:], strict=False))
    assert all(text[e.start : e.end] == e.value for e in ents)
    assert [e.type for e in find_entities(text, types={"EMAIL"})] == ["EMAIL"]
    with pytest.raises(ValueError):
        find_entities(text, types={"NOT_A_TYPE"})


def test_overlap_prefers_validated_entity() -> None:
    # Digits inside an IBAN must not also surface as a phone or card.
    ents = find_entities("pay to DE89 3704 0044 0532 0130 00 please, tel 030 1234 5678")
    assert [e.type for e in ents] == ["IBAN", "PHONE"]


def test_check_verdict_has_no_values_in_detail() -> None:
    v = check("mail jane@example.com, card 4111111111111111")
    assert v.action == "mask" and v.rail == "sensitive_data"
    assert "jane" not in v.detail and "4111" not in v.detail
    assert v.detail == "CREDIT_CARD:1,EMAIL:1"
    assert check("nothing to see").action == "pass"


def test_type_catalogue() -> None:
    assert {"EMAIL", "PHONE", "CREDIT_CARD", "IBAN", "US_SSN", "UK_NINO", "IP_ADDRESS", "JWT"} <= ALL_TYPES
