from __future__ import annotations

from gateway import errors


def test_envelope_shape() -> None:
    body = errors.ContentPolicyViolation("blocked by rail 'pii'", param="messages").body()
    assert body == {"error": {"message": "blocked by rail 'pii'", "type": "invalid_request_error",
                              "param": "messages", "code": "content_policy_violation"}}


def test_sanitise_strips_traces_keys_and_urls() -> None:
    raw = "bad key sk-abcdefghijklmnop at https://internal.example/v1 Traceback (most recent call last):\n  File x"
    clean = errors.sanitise(raw)
    assert "sk-abc" not in clean and "internal.example" not in clean and "Traceback" not in clean
