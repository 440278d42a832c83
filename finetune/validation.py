"""Line-by-line validation of training files, with errors that name the line.

Two formats, one per file:

- chat (OpenAI's fine-tuning format): `{"messages": [{"role": "system"|"user"|"assistant",
  "content": "...", "weight": 0|1}, ...]}`; at least one assistant message with weight 1.
- labelled text (guardrail detector jobs): `{"text": "...", "label": "injection"|"benign"|1|0}`.

`parse_file` returns the examples, so the worker trains on exactly what was validated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import orjson

from finetune.errors import InvalidFile, LineError

Kind = Literal["chat", "labelled"]
ROLES = ("system", "user", "assistant")
# Keys whose presence means a feature the local model cannot learn: say so instead of ignoring them.
_UNSUPPORTED_TOP = {"tools": "tools", "functions": "functions", "parallel_tool_calls": "tool calls"}
_UNSUPPORTED_MSG = {"tool_calls": "tool calls", "function_call": "function calls"}
_LABELS: dict[Any, int] = {"injection": 1, "benign": 0, 1: 1, 0: 0}  # True and False equal 1 and 0
MAX_ERRORS = 100


@dataclass(frozen=True)
class ChatExample:
    messages: tuple[dict[str, Any], ...]  # {"role", "content", "weight"}
    line: int


@dataclass(frozen=True)
class LabelledExample:
    text: str
    label: int
    line: int


@dataclass(frozen=True)
class ParsedFile:
    kind: Kind
    chat: tuple[ChatExample, ...] = ()
    labelled: tuple[LabelledExample, ...] = ()

    @property
    def examples(self) -> int:
        return len(self.chat) if self.kind == "chat" else len(self.labelled)


def _content(value: Any, where: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        parts = []
        for i, part in enumerate(value):
            if not (isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)):
                raise ValueError(f"{where}.content[{i}] must be a text part {{\"type\": \"text\", \"text\": ...}}")
            parts.append(part["text"])
        return "\n".join(parts)
    raise ValueError(f"{where}.content must be a string or a list of text parts")


def _message(m: Any, i: int) -> dict[str, Any]:
    where = f"messages[{i}]"
    if not isinstance(m, dict):
        raise ValueError(f"{where} must be an object")
    for key, what in _UNSUPPORTED_MSG.items():
        if key in m:
            raise ValueError(f"{where}.{key}: {what} are not supported by the local model")
    role = m.get("role")
    if role not in ROLES:
        if role in ("tool", "function"):
            raise ValueError(f"{where}.role '{role}' is not supported: the local model does not call tools")
        raise ValueError(f"{where}.role must be one of {', '.join(ROLES)}; got {role!r}")
    if "content" not in m or m["content"] is None:
        raise ValueError(f"{where}.content is missing")
    content = _content(m["content"], where)
    weight = m.get("weight", 1)
    if "weight" in m and role != "assistant":
        raise ValueError(f"{where}.weight is only allowed on assistant messages")
    if weight not in (0, 1) or isinstance(weight, bool):
        raise ValueError(f"{where}.weight must be 0 or 1")
    return {"role": role, "content": content, "weight": int(weight)}


def _chat(obj: dict[str, Any], line: int) -> ChatExample:
    for key, what in _UNSUPPORTED_TOP.items():
        if key in obj:
            raise ValueError(f"'{key}': {what} are not supported by the local model")
    messages = obj["messages"]
    if not isinstance(messages, list) or not messages:
        raise ValueError("'messages' must be a non-empty list")
    parsed = [_message(m, i) for i, m in enumerate(messages)]
    if parsed[0]["role"] == "assistant":
        raise ValueError("messages[0]: a conversation cannot open with an assistant message")
    if not any(m["role"] == "assistant" and m["weight"] == 1 for m in parsed):
        raise ValueError("no assistant message to learn from (add one, or set its weight to 1)")
    return ChatExample(tuple(parsed), line)


def _labelled(obj: dict[str, Any], line: int) -> LabelledExample:
    text = obj["text"]
    if not isinstance(text, str) or not text.strip():
        raise ValueError("'text' must be a non-empty string")
    label = obj.get("label")
    if not isinstance(label, str | int) or label not in _LABELS:
        raise ValueError(f"'label' must be \"injection\" or \"benign\" (or 1 / 0); got {label!r}")
    return LabelledExample(text, _LABELS[label], line)


def _kind_of(obj: dict[str, Any]) -> Kind:
    if "messages" in obj:
        return "chat"
    if "text" in obj:
        return "labelled"
    raise ValueError("expected a 'messages' list (chat format) or 'text' and 'label' (labelled text)")


def parse_file(content: bytes, filename: str, *, min_examples: int = 1) -> ParsedFile:
    """Parse and validate a JSONL training file; raise `InvalidFile` listing the bad lines."""
    errors: list[LineError] = []
    chat: list[ChatExample] = []
    labelled: list[LabelledExample] = []
    kind: Kind | None = None
    first_line = 0
    for n, raw in enumerate(content.split(b"\n"), start=1):
        if len(errors) >= MAX_ERRORS:
            break
        if not raw.strip():
            continue  # blank lines (a trailing newline, spacing) carry nothing
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            errors.append(LineError(n, "not UTF-8 text"))
            continue
        try:
            obj = orjson.loads(text)
        except orjson.JSONDecodeError as err:
            errors.append(LineError(n, f"not valid JSON ({err})"))
            continue
        try:
            if not isinstance(obj, dict):
                raise ValueError("expected a JSON object")
            line_kind = _kind_of(obj)
            if kind is None:
                kind, first_line = line_kind, n
            elif line_kind != kind:
                raise ValueError(f"a file holds one format; line {first_line} was {kind}, this line is {line_kind}")
            if line_kind == "chat":
                chat.append(_chat(obj, n))
            else:
                labelled.append(_labelled(obj, n))
        except ValueError as err:
            errors.append(LineError(n, str(err)))
    if errors:
        raise InvalidFile(filename, errors)
    parsed = ParsedFile(kind or "chat", tuple(chat), tuple(labelled))
    if parsed.examples < min_examples:
        raise InvalidFile(filename, reason=f"it holds {parsed.examples} example(s); at least {min_examples} are needed")
    return parsed
