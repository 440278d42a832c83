"""The data flywheel: logged traffic + feedback → a training file.

Reads the gateway's request log (the `request_log` table in the shared database, reflected, so
nothing here imports the gateway) with filters (model, prompt version, score, time range) and:

- keeps answered chat/completion requests whose messages and answer were logged
  (`governance.log_content: true`);
- drops every request a rail blocked (a `block` verdict at any stage) and every request whose
  logged text still holds sensitive data (`guardrails.pii.find_entities` finds anything: masking
  leaves placeholders such as <EMAIL_1>, which pass);
- replaces the answer with the feedback's correction when there is one (a corrected answer is
  kept whatever its score), and otherwise needs a score ≥ `min_score` when that filter is set;
- drops exact duplicates (same turns and answer, compared case- and whitespace-insensitively).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.engine import Engine

from finetune.db import reading
from finetune.feedback import FeedbackStore
from finetune.records import Feedback
from guardrails.pii import find_entities

TRAINABLE_ROLES = ("system", "user", "assistant")
UNMASKABLE = "[content removed: masking failed]"  # what the log stores when masking failed
PAGE = 1000


class DatasetFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(None, description="Requests to this public model name.")
    prompt_name: str | None = None
    prompt_version: int | None = Field(None, ge=1)
    min_score: float | None = Field(None, ge=-1, le=1, description="Needs feedback scoring at least this.")
    require_feedback: bool = Field(False, description="Only requests someone gave feedback on.")
    since: datetime | None = None
    until: datetime | None = None
    limit: int | None = Field(None, ge=1, description="At most this many examples (oldest first).")


@dataclass
class BuildReport:
    examples: list[dict[str, Any]] = field(default_factory=list)
    scanned: int = 0
    blocked: int = 0
    sensitive: int = 0
    duplicates: int = 0
    no_content: int = 0
    unsupported: int = 0
    filtered_by_feedback: int = 0
    corrected: int = 0

    def stats(self) -> dict[str, int]:
        out = {k: v for k, v in asdict(self).items() if k != "examples"}
        return {"kept": len(self.examples), **out}

    def jsonl(self) -> bytes:
        return b"".join(orjson.dumps(e) + b"\n" for e in self.examples)


def request_log(engine: Engine) -> sa.Table | None:
    """The gateway's request log as it is in this database (None where the gateway never ran)."""
    with reading(engine) as conn:
        if not sa.inspect(conn).has_table("request_log"):
            return None
        return sa.Table("request_log", sa.MetaData(), autoload_with=conn)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _rows(engine: Engine, table: sa.Table, f: DatasetFilter) -> Iterator[list[Any]]:
    t = table.c
    stmt = sa.select(table).where(t.status == 200).where(t.endpoint.in_(("chat", "text_completion")))
    for column, value in ((t.model, f.model), (t.prompt_name, f.prompt_name), (t.prompt_version, f.prompt_version)):
        if value is not None:
            stmt = stmt.where(column == value)
    if f.since is not None:
        stmt = stmt.where(t.created_at >= _utc(f.since))
    if f.until is not None:
        stmt = stmt.where(t.created_at < _utc(f.until))
    after = 0
    while True:
        with reading(engine) as conn:
            rows = conn.execute(stmt.where(t.id > after).order_by(t.id).limit(PAGE)).all()
        if not rows:
            return
        yield list(rows)
        after = rows[-1].id


def _norm(text: str) -> str:
    return " ".join(text.split()).lower()


def _clean_messages(raw: Any) -> list[dict[str, str]] | None:
    if not isinstance(raw, list):
        return None
    out = []
    for m in raw:
        if not isinstance(m, dict) or m.get("role") not in TRAINABLE_ROLES:
            return None
        content = m.get("content")
        if isinstance(content, list):
            content = "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        if not isinstance(content, str):
            return None
        out.append({"role": m["role"], "content": content})
    return out


def _feedback_for(row: Any, found: dict[str, Feedback]) -> Feedback | None:
    cid = getattr(row, "completion_id", None)
    return (found.get(f"cmpl:{cid}") if cid else None) or found.get(f"req:{row.request_id}")


def _blocked(row: Any) -> bool:
    try:
        verdicts = orjson.loads(row.rails or "[]")
    except orjson.JSONDecodeError:
        return True  # unreadable verdicts: assume the worst
    return any(isinstance(v, dict) and v.get("action") == "block" for v in verdicts)


def _sensitive(texts: list[str]) -> bool:
    return any(find_entities(t) for t in texts if t)


def build_dataset(engine: Engine, feedback: FeedbackStore, f: DatasetFilter) -> BuildReport:
    report = BuildReport()
    table = request_log(engine)
    if table is None:
        return report
    has_cid = "completion_id" in table.c
    seen: set[str] = set()
    for rows in _rows(engine, table, f):
        found = feedback.latest_for(request_ids=[r.request_id for r in rows],
                                    completion_ids=[r.completion_id for r in rows if has_cid and r.completion_id])
        for row in rows:
            report.scanned += 1
            if _blocked(row):
                report.blocked += 1
                continue
            messages = _clean_messages(orjson.loads(row.messages)) if row.messages else None
            if row.messages and messages is None:
                report.unsupported += 1
                continue
            fb = _feedback_for(row, found)
            answer = fb.correction if fb is not None and fb.correction else row.answer
            if not messages or not answer or UNMASKABLE in (answer, *(m["content"] for m in messages)):
                report.no_content += 1
                continue
            corrected = fb is not None and bool(fb.correction)
            if (f.require_feedback and fb is None) or (
                f.min_score is not None and not corrected and (fb is None or fb.score is None or fb.score < f.min_score)
            ):
                report.filtered_by_feedback += 1
                continue
            if _sensitive([m["content"] for m in messages] + [answer]):
                report.sensitive += 1
                continue
            example = {"messages": [*messages, {"role": "assistant", "content": answer}]}
            key = hashlib.sha256(orjson.dumps([[m["role"], _norm(m["content"])] for m in example["messages"]])).hexdigest()
            if key in seen:
                report.duplicates += 1
                continue
            seen.add(key)
            report.corrected += int(corrected)
            report.examples.append(example)
            if f.limit is not None and len(report.examples) >= f.limit:
                return report
    return report


def labelled_requests(engine: Engine, feedback: FeedbackStore) -> list[tuple[str, int]]:
    """(text, label) of logged requests that feedback labelled `injection` or `benign`: the
    untrusted turns (user messages) as the injection rail screened them."""
    labelled = feedback.labelled()
    table = request_log(engine)
    if not labelled or table is None:
        return []
    by_request = {fb.request_id: fb for fb in labelled if fb.request_id}
    by_completion = {fb.completion_id: fb for fb in labelled if fb.completion_id}
    t = table.c
    conds = [t.request_id.in_(list(by_request))]
    if "completion_id" in t and by_completion:
        conds.append(t.completion_id.in_(list(by_completion)))
    with reading(engine) as conn:
        rows = conn.execute(sa.select(table).where(sa.or_(*conds)).order_by(t.id)).all()
    out = []
    for row in rows:
        fb = by_request.get(row.request_id) or by_completion.get(str(getattr(row, "completion_id", "")))
        messages = _clean_messages(orjson.loads(row.messages)) if row.messages else None
        text = "\n".join(m["content"] for m in messages or [] if m["role"] == "user")
        if fb is not None and text.strip():
            out.append((text, 1 if fb.label == "injection" else 0))
    return out
