"""Fixtures for the eval runner's tests: real HTTP targets (the project's fake OpenAI-compatible
provider, and a fake of the gateway's feature endpoints), suites written to tmp folders, the CLI."""

from __future__ import annotations

import json
import sys
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from evals import cli
from tests.support import procs

FAKE_KEY = "sk-fake"
DOCS = procs.ROOT / "evals/suites/data/docs"


@pytest.fixture(scope="session")
def fake_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("fake-gateway")
    port = procs.free_port()
    log = tmp / "fake-gateway.log"
    proc = procs.spawn([sys.executable, str(Path(__file__).with_name("fake_gateway.py")),
                        "--port", str(port), "--docs", str(DOCS)], log)
    url = f"http://127.0.0.1:{port}"
    procs.wait_http(f"{url}/health", proc, 30, log)
    try:
        yield url
    finally:
        procs.stop(proc)


def stats(url: str) -> dict[str, int]:
    with urllib.request.urlopen(f"{url}/stats", timeout=5) as resp:
        return json.loads(resp.read())  # type: ignore[no-any-return]


def reset(url: str) -> None:
    urllib.request.urlopen(urllib.request.Request(f"{url}/reset", method="POST"), timeout=5).close()


WriteSuite = Callable[..., Path]


@pytest.fixture
def write_suite(tmp_path: Path) -> WriteSuite:
    """write_suite(suite_dict, rows, name="suite.yaml") → path; rows go to data.jsonl beside it."""

    def write(suite: dict[str, Any], rows: list[dict[str, Any]] | None = None, name: str = "suite.yaml") -> Path:
        if rows is not None:
            (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
            suite = {"dataset": "data.jsonl", **suite}
        path = tmp_path / name
        path.write_text(yaml.safe_dump(suite, sort_keys=False, allow_unicode=True))
        return path

    return write


Cli = Callable[..., int]


@pytest.fixture
def run_cli(tmp_path: Path) -> Cli:
    """The CLI in-process, with a per-test cache and no runs store unless asked."""

    def run(*argv: str | Path, store: bool = False) -> int:
        args = ["run", *map(str, argv), "--cache-dir", str(tmp_path / "cache"), "--no-progress", "-q"]
        if not store:
            args.append("--no-store")
        return cli.main(args)

    return run
