"""Targets: what is evaluated, called through the gateway's own HTTP API.

    model       POST /v1/chat/completions {model, messages, params}
    gateway     the same, read as the whole path with its rails (a 400 content_policy_violation or a
                finish_reason content_filter is a *block*, an output like any other)
    prompt      chat with extra_body {"prompt": {name, label|version, variables}}; x-prompt-version read back
    rag         chat with extra_body {"retrieval": {collection, top_k, filter}}; `citations` read back
    retrieval   POST /v1/rag/search {collection, query, top_k, filter}
    guardrails  POST /v1/guardrails/check {messages}; allowed=false is a block

Chat goes through the official `openai` SDK (what applications use); the two non-OpenAI endpoints
through httpx. `Request` is built from the item before any call, so template errors break the suite
up front, and it is the cache key together with the target's version.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import openai
from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from evals.dataset import Sample
from evals.errors import SuiteError, TargetError
from evals.outputs import Output
from evals.suite import CHAT_KINDS, TargetSpec

_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)


def api_root(base_url: str) -> str:
    """The gateway root from what a user may type: http://h:p, http://h:p/, http://h:p/v1."""
    root = base_url.rstrip("/")
    return root[: -len("/v1")] if root.endswith("/v1") else root


def _render(template: str, sample: Sample, what: str) -> str:
    try:
        return _ENV.from_string(template).render(**sample.fields)
    except TemplateError as err:
        raise SuiteError(f"item {sample.id!r}: cannot render {what} {template!r}: {err}") from None


def _render_value(value: Any, sample: Sample, what: str) -> Any:
    # "{{ field }}" alone passes the field's value through with its JSON type.
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith("{{") and stripped.endswith("}}") and stripped.count("{{") == 1:
            name = stripped[2:-2].strip()
            if name.isidentifier():
                if name not in sample.fields:
                    raise SuiteError(f"item {sample.id!r}: {what} uses '{name}', which the item lacks")
                return sample.fields[name]
        return _render(value, sample, what)
    return value


def canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


@dataclass(frozen=True)
class Request:
    """One item's call: the endpoint and the JSON body (without extra_body split, for the cache key)."""

    path: str
    body: dict[str, Any]

    def key(self, target_version: str) -> str:
        return hashlib.sha256(canonical({"path": self.path, "body": self.body, "v": target_version}).encode()).hexdigest()


def _messages(spec: TargetSpec, sample: Sample) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    if spec.system is not None:
        messages.append({"role": "system", "content": _render(spec.system, sample, "target.system")})
    if spec.input is None and isinstance(sample.get("messages"), list):
        messages.extend(sample.get("messages"))
        return messages
    template = spec.input
    if template is None:
        if spec.kind == "prompt":
            return messages
        template = "{{ input }}"
    messages.append({"role": "user", "content": _render(template, sample, "target.input")})
    return messages


def build_request(spec: TargetSpec, sample: Sample, seed: int) -> Request:
    """The call for one item; raises SuiteError if the item does not fit the target's templates."""
    if spec.kind in CHAT_KINDS:
        body: dict[str, Any] = {"messages": _messages(spec, sample)}
        if spec.model is not None:
            body["model"] = spec.model
        body.update({"temperature": 0, "seed": seed})
        body.update(spec.params)
        if spec.prompt is not None:
            ref: dict[str, Any] = {"name": spec.prompt.name}
            ref.update({"label": spec.prompt.label} if spec.prompt.label else {"version": spec.prompt.version})
            if spec.prompt.variables is not None:
                ref["variables"] = {k: _render_value(v, sample, f"prompt.variables.{k}")
                                    for k, v in spec.prompt.variables.items()}
            else:
                variables = sample.get("variables", {})
                if not isinstance(variables, dict):
                    raise SuiteError(f"item {sample.id!r}: 'variables' must be an object")
                ref["variables"] = variables
            body["prompt"] = ref
        if spec.retrieval is not None and spec.kind != "retrieval":
            body["retrieval"] = spec.retrieval.model_dump(exclude_none=True)
        return Request("/v1/chat/completions", body)
    if spec.kind == "retrieval":
        assert spec.retrieval is not None
        query = _render(spec.input or "{{ input }}", sample, "target.input")
        return Request("/v1/rag/search", {**spec.retrieval.model_dump(exclude_none=True), "query": query, **spec.body})
    # guardrails
    return Request("/v1/guardrails/check", {"messages": _messages(spec, sample), **spec.body})


@dataclass
class CallError(Exception):
    """A failed call. `fatal`: the whole target is unusable (down, bad key, unknown model or route)."""

    message: str
    retryable: bool = False
    fatal: bool = False
    status: int | None = None

    def __str__(self) -> str:
        return self.message


def _error_code(body: Any) -> str | None:
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            return err.get("code")
    return None


def _status_error(status: int, body: Any, text: str) -> CallError | str:
    """Map an HTTP error to a CallError, or to "blocked" for a content-policy refusal."""
    code = _error_code(body)
    if status == 400 and code == "content_policy_violation":
        return "blocked"
    message = f"HTTP {status}: {text[:300]}"
    if status in (401, 403):
        return CallError(f"the gateway refused the key ({message})", fatal=True, status=status)
    if status == 404:
        return CallError(f"not found ({message}); is the model, prompt or route configured?", fatal=True, status=status)
    if status == 429 or status >= 500:
        return CallError(message, retryable=True, status=status)
    return CallError(message, status=status)


@dataclass
class Transport:
    """One gateway: an `openai.AsyncOpenAI` for chat and an `httpx.AsyncClient` for the rest."""

    base_url: str
    api_key: str
    timeout_s: float = 120.0
    max_connections: int = 64
    _openai: openai.AsyncOpenAI = field(init=False, repr=False)
    _http: httpx.AsyncClient = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.root = api_root(self.base_url)
        limits = httpx.Limits(max_connections=self.max_connections, max_keepalive_connections=self.max_connections)
        self._http = httpx.AsyncClient(base_url=self.root, timeout=httpx.Timeout(self.timeout_s, connect=5.0),
                                       headers={"Authorization": f"Bearer {self.api_key}"} if self.api_key else {},
                                       limits=limits)
        self._openai = openai.AsyncOpenAI(
            base_url=f"{self.root}/v1", api_key=self.api_key or "none", max_retries=0, timeout=self.timeout_s,
        )  # the SDK's default HTTP client (its pool holds 1000 connections): the runner's semaphore bounds use

    async def aclose(self) -> None:
        await self._openai.close()
        await self._http.aclose()

    async def preflight(self) -> None:
        """Fail fast (TargetError) when nothing answers at the URL; any HTTP answer will do."""
        try:
            await self._http.get("/v1/models", timeout=10.0)
        except httpx.HTTPError as err:
            raise TargetError(f"target down: nothing answers at {self.root} ({type(err).__name__}: {err})") from None

    async def chat(self, body: dict[str, Any]) -> tuple[dict[str, Any] | str, dict[str, str]]:
        """(response JSON or "blocked", response headers)."""
        model = body.get("model", openai.omit)
        rest = {k: v for k, v in body.items() if k not in ("model", "messages")}
        try:
            raw = await self._openai.chat.completions.with_raw_response.create(
                model=model, messages=body["messages"], extra_body=rest or None,
            )
        except openai.APIStatusError as err:
            try:
                payload = err.response.json()
            except ValueError:
                payload = None
            mapped = _status_error(err.status_code, payload, err.response.text)
            if mapped == "blocked":
                return "blocked", dict(err.response.headers)
            raise mapped from None  # type: ignore[misc]
        except openai.APITimeoutError as err:
            raise CallError(f"timed out: {err}", retryable=True) from None
        except openai.APIConnectionError as err:
            raise CallError(f"cannot connect to {self.root}: {err.__cause__ or err}", retryable=True,
                            fatal=True) from None
        try:
            return raw.http_response.json(), dict(raw.headers)
        except ValueError:
            raise CallError("the response body is not JSON", retryable=True) from None

    async def post(self, path: str, body: dict[str, Any]) -> tuple[dict[str, Any] | str, dict[str, str]]:
        try:
            resp = await self._http.post(path, json=body)
        except httpx.TimeoutException as err:
            raise CallError(f"timed out: {err}", retryable=True) from None
        except httpx.HTTPError as err:
            raise CallError(f"cannot connect to {self.root}: {err}", retryable=True, fatal=True) from None
        try:
            payload = resp.json()
        except ValueError:
            payload = None
        if resp.status_code >= 400:
            mapped = _status_error(resp.status_code, payload, resp.text)
            if mapped == "blocked":
                return "blocked", dict(resp.headers)
            raise mapped  # type: ignore[misc]
        if not isinstance(payload, dict):
            raise CallError("the response body is not a JSON object", retryable=True)
        return payload, dict(resp.headers)

    async def call(self, request: Request) -> Output:
        start = time.perf_counter()
        if request.path == "/v1/chat/completions":
            payload, headers = await self.chat(request.body)
        else:
            payload, headers = await self.post(request.path, request.body)
        latency = (time.perf_counter() - start) * 1000
        return to_output(request.path, payload, headers, latency)


def to_output(path: str, payload: dict[str, Any] | str, headers: dict[str, str], latency_ms: float) -> Output:
    version = headers.get("x-prompt-version")
    if payload == "blocked":
        return Output(blocked=True, blocked_stage="input", latency_ms=latency_ms, prompt_version=version)
    assert isinstance(payload, dict)
    if path == "/v1/rag/search":
        data = payload.get("data")
        if not isinstance(data, list):
            raise CallError("rag search response has no 'data' list")
        return Output(retrieved=data, latency_ms=latency_ms)
    if path == "/v1/guardrails/check":
        if "allowed" not in payload:
            raise CallError("guardrails check response has no 'allowed'")
        allowed = bool(payload["allowed"])
        messages = payload.get("messages")
        text = None
        if isinstance(messages, list) and messages and isinstance(messages[-1], dict):
            text = messages[-1].get("content")
        return Output(text=text, blocked=not allowed, blocked_stage=None if allowed else "check",
                      latency_ms=latency_ms, raw={k: payload.get(k) for k in ("action", "verdicts")})
    choices = payload.get("choices")
    if not isinstance(choices, list) or not choices:
        raise CallError("chat response has no choices", retryable=True)
    choice = choices[0]
    message = choice.get("message") or {}
    finish = choice.get("finish_reason")
    usage = {k: int(v) for k, v in (payload.get("usage") or {}).items() if isinstance(v, int)}
    citations = payload.get("citations") or message.get("citations") or []
    return Output(
        text=message.get("content"), finish_reason=finish, blocked=finish == "content_filter",
        blocked_stage="output" if finish == "content_filter" else None,
        citations=citations if isinstance(citations, list) else [], usage=usage, model=payload.get("model"),
        prompt_version=version, latency_ms=latency_ms,
    )


def target_version(spec: TargetSpec, resolved_prompt_version: str | None) -> str:
    """What, besides the request body, makes two outputs comparable: the cache's second key half."""
    return canonical({"kind": spec.kind, "prompt_version": resolved_prompt_version, "version": spec.version,
                      "rails": spec.rails})
