"""The argparse wiring (prompts.cli) end to end against a SQLite file."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import yaml

from prompts.cli import add_subparser, main

LIBRARY = Path(__file__).resolve().parents[3] / "prompts" / "library"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_workflow(capsys: pytest.CaptureFixture[str], sqlite_url: str, tmp_path: Path) -> None:
    db = ["--db", sqlite_url]
    code, out, _ = run(capsys, "prompts", "push", str(LIBRARY), "--actor", "ci", *db)
    assert code == 0 and "created    support-answer v1 production->v1" in out

    code, out, _ = run(capsys, "prompts", "push", str(LIBRARY), "--actor", "ci", *db)
    assert code == 0 and "unchanged  support-answer v1" in out

    changed = yaml.safe_load((LIBRARY / "support-answer.yaml").read_text())
    changed["defaults"]["temperature"] = 0.5
    changed["labels"] = []
    (tmp_path / "support-answer.yaml").write_text(yaml.safe_dump(changed))
    code, out, _ = run(capsys, "prompts", "push", str(tmp_path / "support-answer.yaml"), "--actor", "ci", *db)
    assert code == 0 and "created    support-answer v2" in out

    code, out, _ = run(capsys, "prompts", "list", *db)
    assert "support-answer" in out and "production=v1" in out

    code, out, _ = run(capsys, "prompts", "show", "support-answer", "production", *db)
    assert out.startswith("# support-answer v1 sha256:") and "temperature: 0.2" in out

    code, out, _ = run(capsys, "prompts", "diff", "support-answer", "production", "latest", *db)
    assert "-  temperature: 0.2" in out and "+  temperature: 0.5" in out

    code, out, _ = run(capsys, "prompts", "promote", "support-answer", "production", "v2",
                       "--actor", "alice", "--reason", "eval ok", *db)
    assert (code, out.strip()) == (0, "support-answer production: v1 -> v2")

    code, out, _ = run(capsys, "prompts", "rollback", "support-answer", "production", "--actor", "bob", *db)
    assert (code, out.strip()) == (0, "support-answer production: v2 -> v1")

    code, out, _ = run(capsys, "prompts", "history", "support-answer", "--json", *db)
    moves = json.loads(out)
    assert [(m["action"], m["from_version"], m["to_version"], m["actor"]) for m in moves] == [
        ("rollback", 2, 1, "bob"), ("move", 1, 2, "alice"), ("move", None, 1, "ci"),
    ]

    code, out, _ = run(capsys, "prompts", "render", "support-answer", "2", "--vars",
                       '{"product": "Acme", "question": "Hi?"}', *db)
    rendered = json.loads(out)
    assert rendered["version"] == 2 and rendered["messages"][-1]["content"] == "Hi?"


def test_cli_errors_exit_non_zero(capsys: pytest.CaptureFixture[str], sqlite_url: str) -> None:
    code, _, err = run(capsys, "prompts", "show", "nope", "--db", sqlite_url)
    assert code == 1 and "prompt 'nope' not found" in err
    code, _, err = run(capsys, "prompts", "render", "nope", "--vars", "{bad", "--db", sqlite_url)
    assert code == 1 and "not valid JSON" in err


def test_add_subparser_plugs_into_a_parent_parser(sqlite_url: str) -> None:
    parser = argparse.ArgumentParser(prog="llmops")
    add_subparser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["prompts", "list", "--db", sqlite_url])
    assert callable(args.func) and args.db == sqlite_url
