"""What travels between the gateway and Triton, protocol-neutral: chat messages flattened for a
text-only model (or refused with a clear error), server errors mapped to gateway errors (PyTriton
sends whole tracebacks; only their last line is kept, sanitised), and tensor values decoded."""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from gateway import errors

# OpenAI parameters the local model cannot honour: refuse them rather than ignore them silently.
UNSUPPORTED = ("tools", "tool_choice", "functions", "function_call", "response_format")

_CODE = re.compile(r"\[(context_length_exceeded|invalid_request)\]\s*(.*)", re.S)
_UNAVAILABLE_HINTS = ("unknown model", "is not found", "not ready", "is not available", "failed to connect")


def _flatten_content(content: Any, role: str) -> str:
    if content is None:
        if role == "assistant":
            raise errors.UnsupportedParameter(
                "assistant messages without text (tool calls) are not supported by this model", param="messages"
            )
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and part.get("type") in ("text", "input_text"):
                parts.append(str(part.get("text") or ""))
            else:
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise errors.UnsupportedParameter(
                    f"message content of type {kind!r} is not supported by this model", param="messages"
                )
        return "\n".join(parts)
    raise errors.InvalidRequest("message content must be a string or a list of parts", param="messages")


def normalise_messages(messages: list[dict[str, Any]]) -> list[dict[str, str]]:
    out = []
    for m in messages:
        role = m.get("role")
        if role == "developer":
            role = "system"
        if role not in ("system", "user", "assistant"):
            raise errors.UnsupportedParameter(
                f"messages with role {role!r} are not supported by this model", param="messages"
            )
        if m.get("tool_calls") or m.get("function_call"):
            raise errors.UnsupportedParameter("tool calls are not supported by this model", param="messages")
        out.append({"role": role, "content": _flatten_content(m.get("content"), role)})
    return out


def chatml(messages: list[dict[str, str]]) -> str:
    """Fallback template when no tokenizer was given (ChatML, as SmolLM2 and Qwen use)."""
    body = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
    return body + "<|im_start|>assistant\n"


def _server_message(raw: str) -> tuple[str | None, str]:
    """(code, message) from a server error: PyTriton sends a whole traceback; keep its last line."""
    text = raw.strip()
    if "Traceback (most recent call last)" in text:
        lines = [ln for ln in text.splitlines() if ln.strip()]
        text = lines[-1] if lines else ""
        head, sep, tail = text.partition(": ")
        if sep and re.fullmatch(r"[\w.]+", head):
            text = tail
    m = _CODE.search(text)
    if m:
        return m.group(1), m.group(2).strip()
    return None, text


def map_server_error(raw: str, status: str | None = None) -> errors.GatewayError:
    """Turn a Triton/model error (message and gRPC/HTTP status) into a gateway error."""
    status = (status or "").upper()
    if "DEADLINE_EXCEEDED" in status or "deadline exceeded" in raw.lower():
        return errors.UpstreamTimeout("the model server did not answer in time")
    if "UNAVAILABLE" in status:
        return errors.ServiceUnavailable("the model server is unavailable")
    code, message = _server_message(raw)
    clean = errors.sanitise(message)
    if code == "context_length_exceeded":
        return errors.InvalidRequest(clean, param="messages", code="context_length_exceeded")
    if code == "invalid_request":
        return errors.UpstreamClientError(f"the model server rejected the request: {clean}")
    if "NOT_FOUND" in status or any(h in message.lower() for h in _UNAVAILABLE_HINTS):
        return errors.ServiceUnavailable(f"the model is not available on the server: {clean}")
    return errors.UpstreamError(f"model server error: {clean}")


def first_value(arr: Any) -> Any:
    if arr is None:
        return None
    flat = np.asarray(arr).reshape(-1)
    if not flat.size:
        return None
    v = flat[0]
    return v.item() if isinstance(v, np.generic) else v


def text_value(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bytes):
        return v.decode("utf-8", errors="replace")
    return str(v)
