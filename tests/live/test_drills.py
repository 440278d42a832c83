"""Security and hostile-input drills against the live gateway (issue 9, the fast ones)."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import ADMIN_KEY, BODY_TIMEOUT_S, CLIENT_KEY, HEADER_TIMEOUT_S, STREAM_WRITE_TIMEOUT_S, Gateway

OPEN = {"/health", "/ready", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
CLIENT = {"authorization": f"Bearer {CLIENT_KEY}"}


def _routes(gateway: Gateway) -> list[tuple[str, str]]:
    schema = httpx.get(f"{gateway.url}/openapi.json").json()
    routes = [(m.upper(), path) for path, ops in schema["paths"].items() for m in ops]
    routes.append(("GET", "/metrics"))  # kept out of the schema
    return routes


def _concrete(path: str) -> str:
    return path.replace("{", "x").replace("}", "").replace(":path", "")


def test_every_endpoint_without_a_key_is_401(gateway: Gateway) -> None:
    checked = 0
    for method, path in _routes(gateway):
        if path in OPEN:
            continue
        resp = httpx.request(method, f"{gateway.url}{_concrete(path)}", json={})
        assert resp.status_code == 401, (method, path, resp.status_code)
        assert set(resp.json()["error"]) >= {"message", "type", "param", "code"}
        checked += 1
    assert checked >= 30


def test_admin_endpoints_refuse_a_client_key(gateway: Gateway) -> None:
    admin_paths = [(m, p) for m, p in _routes(gateway)
                   if p.startswith(("/v1/admin", "/v1/prompts", "/metrics")) or (m != "GET" and p.startswith("/v1/rag/documents"))]
    assert admin_paths
    for method, path in admin_paths:
        resp = httpx.request(method, f"{gateway.url}{_concrete(path)}", headers=CLIENT, json={})
        assert resp.status_code == 403, (method, path, resp.status_code)


def test_keys_never_reach_the_log_or_the_request_log(gateway: Gateway) -> None:
    httpx.post(f"{gateway.url}/v1/chat/completions", headers=CLIENT,
               json={"model": "fake-good", "messages": [{"role": "user", "content": "hi"}]})
    text = gateway.log.read_text()
    assert CLIENT_KEY not in text and ADMIN_KEY not in text
    logged = httpx.get(f"{gateway.url}/v1/admin/requests/export", headers={"authorization": f"Bearer {ADMIN_KEY}"}).text
    assert CLIENT_KEY not in logged and ADMIN_KEY not in logged


def test_refused_keys_are_counted_and_logged_without_the_key(gateway: Gateway) -> None:
    admin = {"authorization": f"Bearer {ADMIN_KEY}"}

    def failures(status: str) -> float:
        text = httpx.get(f"{gateway.url}/metrics", headers=admin).text
        line = f'llmops_auth_failures_total{{status="{status}"}} '
        return sum(float(x.removeprefix(line)) for x in text.splitlines() if x.startswith(line))

    before_401, before_403 = failures("401"), failures("403")
    guess = "sk-guess-" + "7" * 24
    for _ in range(5):
        assert httpx.get(f"{gateway.url}/v1/models", headers={"authorization": f"Bearer {guess}"}).status_code == 401
    assert httpx.get(f"{gateway.url}/v1/admin/keys", headers=CLIENT).status_code == 403
    assert failures("401") == before_401 + 5 and failures("403") == before_403 + 1
    # At most one line a second (other tests' refusals may have used this second's): keep refusing.
    deadline = time.monotonic() + 10
    while "auth: 401 GET /v1/models from 127.0.0.1" not in gateway.log.read_text():
        assert time.monotonic() < deadline, "no log line for the refused key"
        time.sleep(0.3)
        httpx.get(f"{gateway.url}/v1/models", headers={"authorization": f"Bearer {guess}"})
    assert guess not in gateway.log.read_text()


@pytest.mark.parametrize("body, expected", [
    (b'{"model": "fake-good", "messages": [{"role": "user", "content": "\xff\xfe"}]}', 400),  # invalid UTF-8
    (b'{"model": "fake-good", "messages": ' + b"[" * 5000 + b"]" * 5000 + b"}", 400),  # deeply nested
    (b'{"model": "fake-good", "messages": [{"role": "user", "content": "hi"}], "temperature": NaN}', 400),
    (b'{"model": "fake-good", "messages": [{"role": "user", "content": "hi"}], "max_tokens": -5}', 400),
    (b'{"model": "fake-good", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 10000000000}', 400),
    (b'{"model": "fake-good", "messages": [{"role": "user", "content": "hi"}], "top_p": 1e309}', 400),
    (b'{"model": "fake-good", "messages": [{"role": "user", "content": "hi \\ud800"}]}', 400),  # lone surrogate
    (b'{"model": "fake-good", "messages": [], "prompt": {"name": "No Such/Name!"}}', 400),  # found by the fuzz drill
])
def test_hostile_bodies_get_a_clear_4xx(gateway: Gateway, body: bytes, expected: int) -> None:
    resp = httpx.post(f"{gateway.url}/v1/chat/completions", content=body,
                      headers={**CLIENT, "content-type": "application/json"})
    assert resp.status_code == expected, resp.text[:300]
    error = resp.json()["error"]
    assert "Traceback" not in error["message"]


def test_a_hundred_thousand_messages_is_400(gateway: Gateway) -> None:
    messages = [{"role": "user", "content": "x"}] * 100_000
    resp = httpx.post(f"{gateway.url}/v1/chat/completions", headers=CLIENT, timeout=60,
                      json={"model": "fake-good", "messages": messages})
    assert resp.status_code == 400 and resp.json()["error"]["param"] == "messages"
    # ... and the gateway keeps serving.
    ok = httpx.post(f"{gateway.url}/v1/chat/completions", headers=CLIENT,
                    json={"model": "fake-good", "messages": [{"role": "user", "content": "hi"}]})
    assert ok.status_code == 200


# ---------------------------------------------------------------------------------- big bodies
TWELVE_MB = 12 * 1024 * 1024
ADMIN = {"authorization": f"Bearer {ADMIN_KEY}"}


def _chunked(data: bytes) -> Iterator[bytes]:  # no Content-Length: the gateway counts as it reads
    for i in range(0, len(data), 1 << 20):
        yield data[i:i + (1 << 20)]


@pytest.mark.parametrize("endpoint", ["chat", "chat-chunked", "embeddings", "files", "rag-documents"])
def test_a_twelve_megabyte_body_is_413(gateway: Gateway, endpoint: str) -> None:
    text = "x" * TWELVE_MB
    chat = json.dumps({"model": "fake-good", "messages": [{"role": "user", "content": text}]}).encode()
    url = gateway.url
    if endpoint == "chat":
        resp = httpx.post(f"{url}/v1/chat/completions", headers=CLIENT, content=chat, timeout=60)
    elif endpoint == "chat-chunked":
        resp = httpx.post(f"{url}/v1/chat/completions", headers=CLIENT, content=_chunked(chat), timeout=60)
    elif endpoint == "embeddings":
        resp = httpx.post(f"{url}/v1/embeddings", headers=CLIENT, json={"model": "text-embedding-minilm", "input": text},
                          timeout=60)
    elif endpoint == "files":
        resp = httpx.post(f"{url}/v1/files", headers=CLIENT, data={"purpose": "fine-tune"},
                          files={"file": ("big.jsonl", text.encode())}, timeout=60)
    else:
        resp = httpx.post(f"{url}/v1/rag/documents", headers=ADMIN, timeout=60,
                          files={"file": ("big.txt", text.encode())}, data={"collection": "fuzz-big"})
    assert resp.status_code == 413, resp.text[:300]
    assert resp.json()["error"]["code"] == "request_too_large"
    assert _hi(gateway).status_code == 200


# ---------------------------------------------------------------------------------- slow clients
def _hi(gateway: Gateway, key: str = CLIENT_KEY) -> httpx.Response:
    return httpx.post(f"{gateway.url}/v1/chat/completions", headers={"authorization": f"Bearer {key}"}, timeout=60,
                      json={"model": "fake-good", "messages": [{"role": "user", "content": "hi"}]})


def _connect(gateway: Gateway, head: str, rcvbuf: int | None = None) -> socket.socket:
    host, port = gateway.url.removeprefix("http://").split(":")
    sock = socket.socket()
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.connect((host, int(port)))
    sock.sendall(head.encode())
    return sock


def _head(path: str, key: str, framing: str) -> str:
    length = "transfer-encoding: chunked" if framing == "chunked" else "content-length: 100000"
    return (f"POST {path} HTTP/1.1\r\nhost: gw\r\nauthorization: Bearer {key}\r\n"
            f"content-type: application/json\r\n{length}\r\n\r\n")


def _piece(data: bytes, framing: str) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data) if framing == "chunked" else data


def _read_all(sock: socket.socket) -> bytes:
    """Until the gateway closes; the socket timeout bounds the wait (a hang fails the test)."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_stalled_body_gets_408_and_the_gateway_serves_others(gateway: Gateway, framing: str) -> None:
    sock = _connect(gateway, _head("/v1/chat/completions", CLIENT_KEY, framing))
    with sock:
        sock.sendall(_piece(b'{"model": "fake-good", "mess', framing))  # ... and nothing more
        assert _hi(gateway).status_code == 200  # served while the stalled body holds its request
        sock.settimeout(BODY_TIMEOUT_S + 60)
        reply = _read_all(sock)
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), reply[:300]
    assert b"connection: close" in head.lower()
    error = json.loads(body)["error"]
    assert error["code"] == "request_timeout" and set(error) == {"message", "type", "param", "code"}


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_trickled_body_is_cut_off(gateway: Gateway, framing: str) -> None:
    """A byte every 0.2 s would take hours to finish 100 kB: the gateway must end it long before.

    Answering while the client still sends, the gateway may close with unread bytes in its socket;
    the kernel then resets the connection and the 408 can be lost on the way. Either ending counts,
    as long as the connection ends and others are served meanwhile."""
    sock = _connect(gateway, _head("/v1/chat/completions", CLIENT_KEY, framing))
    reply = b""
    ended = False
    with sock:
        sock.settimeout(0.2)
        bound = time.monotonic() + BODY_TIMEOUT_S + 60
        served = False
        while time.monotonic() < bound:
            try:
                sock.sendall(_piece(b" ", framing))
                chunk = sock.recv(65536)
            except TimeoutError:
                if not served:
                    served = _hi(gateway).status_code == 200
                continue
            except (BrokenPipeError, ConnectionResetError):
                ended = True
                break
            reply += chunk
            if not chunk:
                ended = True
                break
    assert ended, "the gateway kept reading a trickled body"
    assert served
    assert not reply or reply.startswith(b"HTTP/1.1 408"), reply[:300]


def test_trickled_headers_get_408_and_the_gateway_serves_others(gateway: Gateway) -> None:
    """Slowloris on the headers: one header line every 0.2 s never completes the request. uvicorn
    alone waits forever (its keep-alive timer stops at the first byte)."""
    sock = _connect(gateway, "POST /v1/chat/completions HTTP/1.1\r\nhost: gw\r\n")
    reply = b""
    served = False
    started = time.monotonic()
    with sock:
        sock.settimeout(0.2)
        while time.monotonic() - started < HEADER_TIMEOUT_S + 60:
            try:
                sock.sendall(b"x-pad-%d: y\r\n" % int(time.monotonic() * 1000))
                chunk = sock.recv(65536)
            except TimeoutError:
                served = served or _hi(gateway).status_code == 200
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
            reply += chunk
            if not chunk:
                break
        else:
            pytest.fail("the gateway kept reading trickled headers")
    assert served
    if reply:  # a reset can swallow the 408 (unread bytes in the gateway's socket); either ends it
        head, _, body = reply.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408"), reply[:300]
        assert json.loads(body)["error"]["code"] == "request_timeout"


def test_a_connection_that_sends_nothing_is_closed(gateway: Gateway) -> None:
    sock = _connect(gateway, "")
    with sock:
        sock.settimeout(HEADER_TIMEOUT_S + 60)
        assert _read_all(sock) == b""  # closed quietly: there is no request to answer
    assert _hi(gateway).status_code == 200


def test_a_client_that_never_reads_its_stream(gateway: Gateway, fake_provider: str) -> None:
    """Backpressure reaches the upstream (the gateway does not buffer the stream), others are
    served meanwhile, and when the client leaves the upstream stream is closed."""
    def stats() -> dict[str, int]:
        return dict(httpx.get(f"{fake_provider}/stats").json())

    closed_before = stats().get("endless:closed", 0)
    body = json.dumps({"model": "fake-endless", "stream": True, "messages": [{"role": "user", "content": "go"}]})
    head = _head("/v1/chat/completions", CLIENT_KEY, "content-length").replace("100000", str(len(body)))
    sock = _connect(gateway, head + body, rcvbuf=4096)
    with sock:
        sock.settimeout(60)
        assert sock.recv(15) == b"HTTP/1.1 200 OK"  # ... and not one byte more is read
        sent, previous = stats().get("endless:chunks", 0), -1
        bound = time.monotonic() + 120
        while sent != previous:  # the upstream stops once every buffer on the way is full
            assert time.monotonic() < bound, f"the upstream kept streaming to a client that reads nothing ({sent})"
            time.sleep(0.5)
            previous, sent = sent, stats().get("endless:chunks", 0)
        assert _hi(gateway).status_code == 200
        assert httpx.get(f"{gateway.url}/health").status_code == 200
    bound = time.monotonic() + 60
    while stats().get("endless:closed", 0) == closed_before:
        assert time.monotonic() < bound, "the gateway kept the upstream stream open after its client left"
        time.sleep(0.2)
    assert httpx.get(f"{gateway.url}/health").json() == {"status": "ok"}
    assert _hi(gateway).status_code == 200


def test_an_endless_stream_is_logged_up_to_a_bound(gateway: Gateway) -> None:
    """An upstream that ignores max_tokens streams as long as the client reads; the text kept for
    the request log stops at MAX_LOGGED_ANSWER_CHARS instead of growing with it."""
    from gateway.exchange import MAX_LOGGED_ANSWER_CHARS

    rid = f"endless-{time.monotonic_ns()}"
    body = {"model": "fake-endless", "stream": True, "messages": [{"role": "user", "content": "go"}]}
    received = 0
    with httpx.stream("POST", f"{gateway.url}/v1/chat/completions", json=body, timeout=60,
                      headers={**CLIENT, "x-request-id": rid}) as resp:
        assert resp.status_code == 200
        for chunk in resp.iter_bytes():
            received += chunk.count(b"endless ")
            if received * len("endless ") > 2 * MAX_LOGGED_ANSWER_CHARS:
                break
    admin = {"authorization": f"Bearer {ADMIN_KEY}"}
    bound = time.monotonic() + 60
    while True:
        lines = httpx.get(f"{gateway.url}/v1/admin/requests/export", params={"model": "fake-endless"},
                          headers=admin, timeout=60).text.splitlines()
        mine = [r for r in map(json.loads, lines) if r["request_id"] == rid]
        if mine:
            break
        assert time.monotonic() < bound, "the endless stream's request was never logged"
        time.sleep(0.5)
    answer = mine[0]["answer"]
    assert len(answer) == MAX_LOGGED_ANSWER_CHARS and answer.startswith("endless endless")


def test_a_stream_nobody_reads_is_abandoned_after_the_write_timeout(gateway: Gateway, fake_provider: str) -> None:
    """A client that stays connected but reads nothing does not hold its stream, nor the upstream
    call, forever: once a write has waited server.stream_write_timeout_s the gateway gives up."""
    def closed() -> int:
        return int(httpx.get(f"{fake_provider}/stats").json().get("endless:closed", 0))

    before = closed()
    body = json.dumps({"model": "fake-endless", "stream": True, "messages": [{"role": "user", "content": "go"}]})
    head = _head("/v1/chat/completions", CLIENT_KEY, "content-length").replace("100000", str(len(body)))
    sock = _connect(gateway, head + body, rcvbuf=4096)
    with sock:
        bound = time.monotonic() + STREAM_WRITE_TIMEOUT_S + 90
        while closed() == before:  # the client is still connected and still reads nothing
            assert time.monotonic() < bound, "the upstream stream stayed open for a client that reads nothing"
            time.sleep(0.5)
        sock.settimeout(30)
        received = 0
        while chunk := sock.recv(1 << 16):  # the gateway closed its end: reading drains to EOF
            received += len(chunk)
        assert received > 0
    assert _hi(gateway).status_code == 200
