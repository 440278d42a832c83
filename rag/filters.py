"""User filters: parsed against a small allow-list grammar, then re-emitted by us for Milvus.

Nothing the caller types reaches Milvus verbatim. The expression is tokenised and parsed into a
tree (`rag.filter_grammar`); the tree is checked (fields, operators, literal types, size) and
printed back here as a Milvus boolean expression. The tenant condition is AND-ed outside the
user's parentheses, and the user cannot name `tenant` at all, so `) or (tenant != ""` is a parse
error, not an escape.

Negation is pushed down to the comparisons (`not (a == 1)` is sent as `a != 1`, `not in` as a
conjunction of `!=`) because Milvus Lite 2.5 rejects a `not` node and Milvus Lite 3 rejects `in`
on a JSON path; what is emitted works on both. On a metadata key a chunk lacks, `!=` is true
(so a negated `==` matches it, as `not` should), while `<`, `<=`, `>`, `>=` are false, also after a
negation: `not (year < 2000)` does not match chunks without a `year`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from rag.config import check_tenant
from rag.errors import InvalidFilter
from rag.filter_grammar import (
    FLIP,
    MAX_LIST,
    And,
    Cmp,
    In,
    Like,
    Literal,
    Node,
    Not,
    Or,
    Parser,
    check_string,
    parse,
    typed,
)

__all__ = ["compile_filter", "from_mapping", "parse", "scoped", "source_condition"]


# ── emitting ─────────────────────────────────────────────────────────────────


def _push_not(node: Node, negate: bool = False) -> Node:
    """Negation normal form: `not` only ever lands on a comparison, where it flips the operator."""
    if isinstance(node, Not):
        return _push_not(node.item, not negate)
    if isinstance(node, And | Or):
        items = tuple(_push_not(n, negate) for n in node.items)
        flip = isinstance(node, And) == negate  # De Morgan
        return Or(items) if flip else And(items)
    if not negate:
        return node
    if isinstance(node, Cmp):
        return Cmp(node.field, FLIP[node.op], node.value)
    if isinstance(node, In):
        return In(node.field, node.values, not node.negated)
    return Like(node.field, node.pattern, not node.negated)


def _lit(v: Literal) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    return f'"{v}"'  # checked at tokenising: no quotes, backslashes or control characters


def _emit(node: Node) -> str:
    if isinstance(node, Cmp):
        return f"{node.field.emit()} {node.op} {_lit(node.value)}"
    if isinstance(node, In):
        op, joiner = ("!=", " and ") if node.negated else ("==", " or ")
        parts = [f"{node.field.emit()} {op} {_lit(v)}" for v in node.values]
        return parts[0] if len(parts) == 1 else "(" + joiner.join(parts) + ")"
    if isinstance(node, Like):
        if node.negated:
            raise InvalidFilter("a negated 'like' is not supported by the store")
        return f"{node.field.emit()} like {_lit(node.pattern)}"
    if isinstance(node, Not):  # unreachable after _push_not; kept so the printer is total
        return _emit(_push_not(node))
    joiner = " and " if isinstance(node, And) else " or "
    return "(" + joiner.join(_emit(n) for n in node.items) + ")"


def from_mapping(filters: Mapping[str, Any]) -> Node:
    """`{"source": "a.md", "lang": ["en", "fr"]}`: equality per key, a list means any of, all AND-ed."""
    if not filters:
        raise InvalidFilter("empty filter")
    items: list[Node] = []
    for key, value in filters.items():
        p = Parser(key)  # the key goes through the same field rules as in an expression
        field = p.field()
        if p.peek().kind != "end":
            raise InvalidFilter(f"invalid filter key {key!r}")
        vals = tuple(value) if isinstance(value, list | tuple) else (value,)
        if not vals or len(vals) > MAX_LIST:
            raise InvalidFilter(f"filter key {key!r} needs 1 to {MAX_LIST} values")
        for v in vals:
            if not isinstance(v, str | int | float | bool) or (isinstance(v, float) and not math.isfinite(v)):
                raise InvalidFilter(f"filter key {key!r}: values must be strings, numbers or booleans")
            if isinstance(v, str):
                check_string(v, 0)
        node: Node = Cmp(field, "==", vals[0]) if len(vals) == 1 else In(field, vals)
        items.append(typed(node))  # type: ignore[arg-type]
    return items[0] if len(items) == 1 else And(tuple(items))


def compile_filter(user_filter: str | Mapping[str, Any] | None) -> str | None:
    """The caller's filter as a Milvus expression, or None for no filter."""
    if user_filter is None:
        return None
    node = from_mapping(user_filter) if isinstance(user_filter, Mapping) else parse(user_filter)
    return _emit(_push_not(node))


def scoped(tenant: str | None, user_filter: str | Mapping[str, Any] | None) -> str | None:
    """The expression a search runs with: the tenant condition AND the caller's filter.

    `tenant=None` is the unscoped (admin) search; any string, the empty one included, scopes it.
    """
    user = compile_filter(user_filter)
    if tenant is None:
        return user
    cond = f'tenant == "{check_tenant(tenant)}"'
    return cond if user is None else f"({cond}) and ({user})"


def source_condition(tenant: str | None, source_key: str) -> str:
    """Internal: one source's chunks, in one tenant or (None) in all of them.

    Sources are matched by `source_key`, a hex digest of the name, never by the name itself:
    file names may hold quotes and backslashes, which would need escaping in an expression.
    """
    if not re.fullmatch(r"[0-9a-f]{16,64}", source_key):
        raise ValueError("source_key must be a hex digest")
    cond = f'source_key == "{source_key}"'
    return cond if tenant is None else f'tenant == "{check_tenant(tenant)}" and {cond}'
