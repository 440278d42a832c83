"""Runs kept: every run with its suite, targets (model, prompt name/label/version, rails) and scores.

SQLite under the data folder by default (`var/evals.sqlite3`), any SQLAlchemy URL otherwise
(`LLMOPS_EVALS_DATABASE_URL`, `--store`). The gateway serves it at `/v1/evals/runs`; a prompt label
move can require a passing run through `prompt_gate` (built on `latest_passing_run`).
"""

from __future__ import annotations

import datetime
import os
import uuid
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, ValidationError

ENV_URL = "LLMOPS_EVALS_DATABASE_URL"
DEFAULT_FILE = "evals.sqlite3"
ROOT = Path(__file__).resolve().parent.parent

metadata = sa.MetaData()
runs_table = sa.Table(
    "eval_runs", metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("suite", sa.String(128), nullable=False, index=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("started_at", sa.String(40), nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("passed", sa.Boolean, nullable=False),
    sa.Column("exit_code", sa.Integer, nullable=False),
    sa.Column("n_items", sa.Integer, nullable=False),
    sa.Column("duration_s", sa.Float, nullable=False),
    sa.Column("source", sa.Text, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("results", sa.JSON, nullable=False),
)
targets_table = sa.Table(
    "eval_run_targets", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(64), sa.ForeignKey("eval_runs.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("kind", sa.String(32), nullable=True),
    sa.Column("model", sa.String(256), nullable=True),
    sa.Column("prompt_name", sa.String(128), nullable=True),
    sa.Column("prompt_label", sa.String(128), nullable=True),
    sa.Column("prompt_version", sa.String(32), nullable=True),
    sa.Column("rails", sa.String(256), nullable=True),
    sa.Column("version", sa.String(256), nullable=True),
    sa.Column("passed", sa.Boolean, nullable=False),
    sa.Column("metrics", sa.JSON, nullable=False),
    sa.Index("ix_eval_run_targets_prompt", "prompt_name", "prompt_version"),
)


class InvalidRun(ValueError):
    """The document to record is not a run's results."""


class RunTarget(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    kind: str | None = None
    model: str | None = None
    prompt_name: str | None = None
    prompt_label: str | None = None
    prompt_version: str | None = None
    rails: str | None = None
    version: str | None = None
    passed: bool
    metrics: dict[str, float | None] = Field(default_factory=dict, description="Each metric's primary statistic.")


class Run(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str
    object: str = "eval.run"
    suite: str
    created_at: datetime.datetime
    started_at: str | None = None
    status: str
    passed: bool
    exit_code: int
    n_items: int
    duration_s: float
    source: str | None = None
    error: str | None = None
    targets: list[RunTarget]
    results: dict[str, Any] | None = Field(None, description="The full results document (only on a single read).")


class _TargetDoc(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str
    kind: str | None = None
    model: str | None = None
    prompt_name: str | None = None
    prompt_label: str | None = None
    prompt_version: str | int | None = None
    rails: str | None = None
    version: str | None = None
    passed: bool
    metrics: dict[str, dict[str, Any]] = Field(default_factory=dict)


class _RunDoc(BaseModel):
    model_config = ConfigDict(extra="ignore")
    suite: str = Field(min_length=1, max_length=128)
    status: str = Field(pattern="^(passed|failed|error)$")
    exit_code: int = Field(ge=0, le=2)
    started_at: str | None = None
    duration_s: float = 0.0
    n_items: int = 0
    source: str | None = None
    error: str | None = None
    targets: list[_TargetDoc] = Field(default_factory=list)
    regression_checks: list[dict[str, Any]] = Field(default_factory=list)


def _version(v: str | int | None) -> str | None:
    if v is None:
        return None
    s = str(v).strip()
    return s[1:] if s[:1] in ("v", "V") and s[1:].isdigit() else s


def default_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / DEFAULT_FILE}"


class EvalStore:
    def __init__(self, url: str) -> None:
        self.url = url
        kwargs: dict[str, Any] = {}
        if url.startswith("sqlite"):
            db = sa.engine.make_url(url).database
            if db and db != ":memory:":
                Path(db).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        self.engine = sa.create_engine(url, **kwargs)
        metadata.create_all(self.engine)

    @classmethod
    def for_data_dir(cls, data_dir: Path, url: str | None = None) -> EvalStore:
        """The store the gateway and the CLI share: `url`, else $LLMOPS_EVALS_DATABASE_URL, else data_dir/evals.sqlite3."""
        return cls(url or os.environ.get(ENV_URL) or default_url(data_dir))

    def close(self) -> None:
        self.engine.dispose()

    # ------------------------------------------------------------------ writes
    def record(self, document: Mapping[str, Any]) -> Run:
        """Store one suite's results document (`SuiteResult.to_dict()`); returns the stored run."""
        try:
            doc = _RunDoc.model_validate(document)
        except ValidationError as err:
            first = err.errors()[0]
            loc = ".".join(str(p) for p in first["loc"]) or "(root)"
            raise InvalidRun(f"not a run's results: {loc}: {first['msg']}") from None
        run_id = "evalrun_" + uuid.uuid4().hex[:24]
        now = datetime.datetime.now(datetime.UTC)
        rows = []
        for t in doc.targets:
            regressions_ok = all(c.get("passed", False) for c in doc.regression_checks if c.get("target") == t.name)
            rows.append({
                "run_id": run_id, "name": t.name, "kind": t.kind, "model": t.model, "prompt_name": t.prompt_name,
                "prompt_label": t.prompt_label, "prompt_version": _version(t.prompt_version), "rails": t.rails,
                "version": t.version, "passed": bool(t.passed and regressions_ok and doc.status != "error"),
                "metrics": {k: (m or {}).get("value") for k, m in t.metrics.items()},
            })
        with self.engine.begin() as conn:
            conn.execute(runs_table.insert().values(
                id=run_id, suite=doc.suite, created_at=now, started_at=doc.started_at, status=doc.status,
                passed=doc.status == "passed", exit_code=doc.exit_code, n_items=doc.n_items,
                duration_s=doc.duration_s, source=doc.source, error=doc.error, results=dict(document)))
            if rows:
                conn.execute(targets_table.insert(), rows)
        run = self.get(run_id, with_results=False)
        assert run is not None
        return run

    # ------------------------------------------------------------------ reads
    def _runs(self, conn: sa.Connection, rows: list[Any], with_results: bool) -> list[Run]:
        if not rows:
            return []
        ids = [r.id for r in rows]
        targets: dict[str, list[RunTarget]] = {i: [] for i in ids}
        for t in conn.execute(sa.select(targets_table).where(targets_table.c.run_id.in_(ids))
                              .order_by(targets_table.c.id)):
            targets[t.run_id].append(RunTarget(
                name=t.name, kind=t.kind, model=t.model, prompt_name=t.prompt_name, prompt_label=t.prompt_label,
                prompt_version=t.prompt_version, rails=t.rails, version=t.version, passed=t.passed,
                metrics=t.metrics or {}))
        out = []
        for r in rows:
            created = r.created_at if r.created_at.tzinfo else r.created_at.replace(tzinfo=datetime.UTC)
            out.append(Run(id=r.id, suite=r.suite, created_at=created, started_at=r.started_at, status=r.status,
                           passed=r.passed, exit_code=r.exit_code, n_items=r.n_items, duration_s=r.duration_s,
                           source=r.source, error=r.error, targets=targets[r.id],
                           results=r.results if with_results else None))
        return out

    def get(self, run_id: str, *, with_results: bool = True) -> Run | None:
        cols = list(runs_table.c) if with_results else [c for c in runs_table.c if c.name != "results"]
        with self.engine.connect() as conn:
            rows = list(conn.execute(sa.select(*cols).where(runs_table.c.id == run_id)))
            runs = self._runs(conn, rows, with_results)
        return runs[0] if runs else None

    def list_runs(self, *, suite: str | None = None, prompt_name: str | None = None, prompt_version: str | int | None = None,
             status: str | None = None, limit: int = 20, offset: int = 0) -> list[Run]:
        """Newest first."""
        cols = [c for c in runs_table.c if c.name != "results"]
        q = sa.select(*cols)
        if suite is not None:
            q = q.where(runs_table.c.suite == suite)
        if status is not None:
            q = q.where(runs_table.c.status == status)
        if prompt_name is not None or prompt_version is not None:
            sub = sa.select(targets_table.c.run_id)
            if prompt_name is not None:
                sub = sub.where(targets_table.c.prompt_name == prompt_name)
            if prompt_version is not None:
                sub = sub.where(targets_table.c.prompt_version == _version(prompt_version))
            q = q.where(runs_table.c.id.in_(sub))
        q = q.order_by(runs_table.c.created_at.desc(), runs_table.c.id.desc()).limit(limit).offset(offset)
        with self.engine.connect() as conn:
            return self._runs(conn, list(conn.execute(q)), False)

    def latest_passing_run(self, suite_name: str, prompt_name: str, version: int | str) -> Run | None:
        """The newest run of `suite_name` in which a target using prompt `prompt_name` at `version` passed."""
        q = (sa.select(runs_table.c.id)
             .join(targets_table, targets_table.c.run_id == runs_table.c.id)
             .where(runs_table.c.suite == suite_name, runs_table.c.status != "error",
                    targets_table.c.prompt_name == prompt_name,
                    targets_table.c.prompt_version == _version(version),
                    targets_table.c.passed.is_(True))
             .order_by(runs_table.c.created_at.desc(), runs_table.c.id.desc()).limit(1))
        with self.engine.connect() as conn:
            row = conn.execute(q).first()
        return None if row is None else self.get(row.id, with_results=False)


def latest_passing_run(suite_name: str, prompt_name: str, version: int | str, *,
                       store: EvalStore | None = None) -> Run | None:
    """`EvalStore.latest_passing_run` on `store`, or on the default store (var/evals.sqlite3 or $LLMOPS_EVALS_DATABASE_URL)."""
    if store is not None:
        return store.latest_passing_run(suite_name, prompt_name, version)
    own = EvalStore.for_data_dir(ROOT / "var")
    try:
        return own.latest_passing_run(suite_name, prompt_name, version)
    finally:
        own.close()


class EvalGateRefused(Exception):
    """Raised by the gate; the prompt registry turns it into GateRefused (HTTP 409)."""


def prompt_gate(store: EvalStore, suite: str | Mapping[str, str] | Callable[[str], str | None], *,
                labels: Collection[str] | None = ("production",), max_age: datetime.timedelta | None = None,
                require_suite: bool = True) -> Callable[[str, int, str], None]:
    """A `prompts` gate: moving one of `labels` (None: any label) to a version needs a passing run.

    `suite` names the eval suite per prompt: one name for all, a mapping prompt → suite, or a function.
    A prompt with no suite is refused when `require_suite`, else allowed. `max_age` ignores older runs.
    """

    def suite_for(prompt: str) -> str | None:
        if isinstance(suite, str):
            return suite
        if isinstance(suite, Mapping):
            return suite.get(prompt)
        return suite(prompt)

    def gate(name: str, version: int, label: str) -> None:
        if labels is not None and label not in labels:
            return
        suite_name = suite_for(name)
        if suite_name is None:
            if require_suite:
                raise EvalGateRefused(f"no evaluation suite is configured for prompt '{name}'")
            return
        run = store.latest_passing_run(suite_name, name, version)
        if run is None:
            raise EvalGateRefused(
                f"no passing run of eval suite '{suite_name}' for prompt '{name}' v{version}; run "
                f"`llmops eval run <suite {suite_name}>` with a target on that prompt version first")
        if max_age is not None and datetime.datetime.now(datetime.UTC) - run.created_at > max_age:
            raise EvalGateRefused(f"the last passing run of '{suite_name}' for '{name}' v{version} ({run.id}) is "
                                  f"older than {max_age}")

    return gate
