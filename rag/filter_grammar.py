"""The filter grammar: tokens, tree and parser (see `rag.filters` for how it is used).

    expr       := and_expr ("or" and_expr)*
    and_expr   := unary ("and" unary)*
    unary      := "not" unary | "(" expr ")" | comparison
    comparison := field ("==" | "!=" | "<" | "<=" | ">" | ">=") literal
                | field ["not"] "in" "[" literal ("," literal)* "]"
                | field "like" string
    field      := "source" | "chunk_index" | "metadata" ("[" string "]")+ | name   (name = metadata["name"])
    literal    := string | number | "true" | "false"

Keywords are case-insensitive. Strings are quoted with " or ' and may not hold quotes, backslashes
or control characters: with no escapes to interpret there is no escaping to get wrong.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Union

from rag.errors import InvalidFilter

MAX_LENGTH = 2000
MAX_DEPTH = 16
MAX_TERMS = 64
MAX_LIST = 100

COLUMNS = {"source": "str", "chunk_index": "int"}
# Stored columns a filter may not name: tenant is the gateway's, the rest are not useful to filter on.
RESERVED = {"tenant", "id", "text", "sparse", "vector", "source_key", "fingerprint", "chunk_count"}
KEYWORDS = {"and", "or", "not", "in", "like", "true", "false"}
_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
FLIP = {"==": "!=", "!=": "==", "<": ">=", ">=": "<", ">": "<=", "<=": ">"}

Literal = Union[str, int, float, bool]  # noqa: UP007  (a runtime alias)

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<num>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
    | (?P<str>"[^"]*"|'[^']*')
    | (?P<op>==|!=|<=|>=|<|>)
    | (?P<punct>[()\[\],])
    | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class Field:
    path: tuple[str, ...]  # ("source",) for a column, ("metadata", "k", ...) for a JSON path

    @property
    def kind(self) -> str:
        return COLUMNS.get(self.path[0], "any") if len(self.path) == 1 else "any"

    def emit(self) -> str:
        head, *keys = self.path
        return head + "".join(f'["{k}"]' for k in keys)


@dataclass(frozen=True)
class Cmp:
    field: Field
    op: str
    value: Literal


@dataclass(frozen=True)
class In:
    field: Field
    values: tuple[Literal, ...]
    negated: bool = False


@dataclass(frozen=True)
class Like:
    field: Field
    pattern: str
    negated: bool = False


@dataclass(frozen=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    item: Node


Node = Union[Cmp, In, Like, And, Or, Not]  # noqa: UP007


# ── tokenising ───────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class _Tok:
    kind: str  # num | str | op | punct | word | end
    text: str
    pos: int


def _tokens(src: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    while pos < len(src):
        m = _TOKEN.match(src, pos)
        if m is None or m.lastgroup is None:
            rest = src[pos:]
            if not rest.strip():
                break
            at = pos + len(rest) - len(rest.lstrip())
            raise InvalidFilter(f"unexpected character {src[at]!r} at position {at}")
        kind = m.lastgroup
        text = m.group(kind)
        if kind == "str":
            check_string(text[1:-1], m.start(kind))
        out.append(_Tok(kind, text, m.start(kind)))
        pos = m.end()
    out.append(_Tok("end", "", len(src)))
    return out


def check_string(body: str, pos: int) -> None:
    if "\\" in body or '"' in body or "'" in body:
        raise InvalidFilter(f"string at position {pos} holds a quote or backslash, which filters do not allow")
    if any(ord(c) < 32 or ord(c) == 127 for c in body):
        raise InvalidFilter(f"string at position {pos} holds a control character")


# ── parsing ──────────────────────────────────────────────────────────────────


class Parser:
    def __init__(self, src: str) -> None:
        self.toks = _tokens(src)
        self.i = 0
        self.terms = 0

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def next(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def word(self, *words: str) -> bool:
        tok = self.peek()
        return tok.kind == "word" and tok.text.lower() in words

    def expect(self, kind: str, text: str | None = None) -> _Tok:
        tok = self.next()
        if tok.kind != kind or (text is not None and tok.text != text):
            want = text or kind
            got = tok.text or "end of filter"
            raise InvalidFilter(f"expected {want!r} at position {tok.pos}, found {got!r}")
        return tok

    def parse(self) -> Node:
        node = self.expr(0)
        tok = self.peek()
        if tok.kind != "end":
            raise InvalidFilter(f"unexpected {tok.text!r} at position {tok.pos}")
        return node

    def expr(self, depth: int) -> Node:
        if depth > MAX_DEPTH:
            raise InvalidFilter(f"filter nests deeper than {MAX_DEPTH} levels")
        items = [self.and_expr(depth)]
        while self.word("or"):
            self.next()
            items.append(self.and_expr(depth))
        return items[0] if len(items) == 1 else Or(tuple(items))

    def and_expr(self, depth: int) -> Node:
        items = [self.unary(depth)]
        while self.word("and"):
            self.next()
            items.append(self.unary(depth))
        return items[0] if len(items) == 1 else And(tuple(items))

    def unary(self, depth: int) -> Node:
        if self.word("not"):
            self.next()
            return Not(self.unary(depth + 1))
        tok = self.peek()
        if tok.kind == "punct" and tok.text == "(":
            self.next()
            node = self.expr(depth + 1)
            self.expect("punct", ")")
            return node
        return self.comparison()

    def comparison(self) -> Node:
        self.terms += 1
        if self.terms > MAX_TERMS:
            raise InvalidFilter(f"filter has more than {MAX_TERMS} comparisons")
        field = self.field()
        tok = self.peek()
        if tok.kind == "op":
            self.next()
            return typed(Cmp(field, tok.text, self.literal()))
        negated = False
        if self.word("not"):
            self.next()
            negated = True
            if not self.word("in"):
                raise InvalidFilter(f"expected 'in' after 'not' at position {self.peek().pos}")
        if self.word("in"):
            self.next()
            return typed(In(field, self.list_literal(), negated))
        if self.word("like"):
            self.next()
            pattern = self.literal()
            if not isinstance(pattern, str):
                raise InvalidFilter("'like' takes a string pattern")
            return typed(Like(field, pattern))
        raise InvalidFilter(f"expected an operator after {field.emit()!r} at position {tok.pos}")

    def field(self) -> Field:
        tok = self.next()
        if tok.kind != "word" or tok.text.lower() in KEYWORDS:
            raise InvalidFilter(f"expected a field name at position {tok.pos}, found {tok.text or 'end of filter'!r}")
        name = tok.text
        if name.lower() in RESERVED:  # any case: `TENANT` would be a metadata key, but reads like the field
            why = "it is set by the gateway" if name.lower() == "tenant" else "it is not filterable"
            raise InvalidFilter(f"field '{name}' may not appear in a filter: {why}")
        if name == "metadata":
            keys: list[str] = []
            while self.peek().kind == "punct" and self.peek().text == "[":
                self.next()
                key = self.expect("str").text[1:-1]
                self.expect("punct", "]")
                keys.append(_check_key(key))
            if not keys or len(keys) > 4:
                raise InvalidFilter("'metadata' needs one to four [\"key\"] subscripts")
            return Field(("metadata", *keys))
        if name in COLUMNS:
            return Field((name,))
        return Field(("metadata", _check_key(name)))

    def literal(self) -> Literal:
        tok = self.next()
        if tok.kind == "str":
            return tok.text[1:-1]
        if tok.kind == "num":
            value: float = float(tok.text)
            if not math.isfinite(value):
                raise InvalidFilter(f"number out of range at position {tok.pos}")
            is_int = re.fullmatch(r"-?\d+", tok.text) is not None
            return int(tok.text) if is_int else value
        if tok.kind == "word" and tok.text.lower() in ("true", "false"):
            return tok.text.lower() == "true"
        raise InvalidFilter(f"expected a string, number, true or false at position {tok.pos}")

    def list_literal(self) -> tuple[Literal, ...]:
        self.expect("punct", "[")
        values: list[Literal] = []
        while True:
            values.append(self.literal())
            tok = self.next()
            if tok.kind == "punct" and tok.text == "]":
                break
            if not (tok.kind == "punct" and tok.text == ","):
                raise InvalidFilter(f"expected ',' or ']' at position {tok.pos}")
            if self.peek().kind == "punct" and self.peek().text == "]":
                self.next()
                break
        if len(values) > MAX_LIST:
            raise InvalidFilter(f"'in' lists hold at most {MAX_LIST} values")
        return tuple(values)


def _check_key(key: str) -> str:
    if not _KEY.match(key):
        raise InvalidFilter(f"invalid metadata key {key!r}: 1-64 of A-Z a-z 0-9 _ . -")
    return key


def typed(node: Cmp | In | Like) -> Cmp | In | Like:
    """Column types are known; reject comparisons Milvus would refuse, with our message rather than its."""
    kind = node.field.kind
    values = node.values if isinstance(node, In) else (node.pattern if isinstance(node, Like) else node.value,)
    name = node.field.emit()
    for v in values:
        if kind == "str" and not isinstance(v, str):
            raise InvalidFilter(f"'{name}' is a string field; compare it with a string")
        if kind == "int" and (isinstance(v, bool) or not isinstance(v, int)):
            raise InvalidFilter(f"'{name}' is an integer field; compare it with an integer")
    if isinstance(node, Like) and kind == "int":
        raise InvalidFilter(f"'like' does not apply to the integer field '{name}'")
    if isinstance(node, Cmp) and isinstance(node.value, bool) and node.op not in ("==", "!="):
        raise InvalidFilter(f"booleans compare only with == or != ('{name}')")
    return node


def parse(expression: str) -> Node:
    if len(expression) > MAX_LENGTH:
        raise InvalidFilter(f"filter longer than {MAX_LENGTH} characters")
    if not expression.strip():
        raise InvalidFilter("empty filter")
    return Parser(expression).parse()
