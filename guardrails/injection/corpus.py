"""Long benign text from the local Python install: docs, docstrings, code, package READMEs.

Jailbreaks are long and chat questions short, so without long benign text a detector
learns "long = attack". Everything here is read from disk (no network) in sorted order
with a seeded RNG. Stdlib text is fixed by the interpreter version; installed packages
change whenever anyone installs something, so their chunks are frozen in
``data/package_docs.jsonl.gz`` (refresh deliberately with ``python -m
guardrails.injection.corpus --snapshot``; that changes the data fingerprint). Training only.
"""

from __future__ import annotations

import argparse
import ast
import email.parser
import gzip
import json
import math
import random
import re
import subprocess
import sysconfig
import warnings
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SNAPSHOT = Path(__file__).resolve().parent / "data" / "package_docs.jsonl.gz"
# Operating-system documentation (READMEs, FAQs, NEWS under /usr/share/doc), frozen like the
# package docs. Written to a reader ("you can...", "how do I...?"), it is the benign side of what
# a request planted in a document looks like; not used as a host for planted payloads.
SYSTEM_SNAPSHOT = Path(__file__).resolve().parent / "data" / "system_docs.jsonl.gz"
SYSTEM_DOC_DIR = Path("/usr/share/doc")
_SYSTEM_DOC_NAME = re.compile(r"^(readme|faq|news|todo|usage|howto)[^/]*|.*\.(md|txt|rst)(\.gz)?$", re.IGNORECASE)
# Developer-tool documentation outside Python (CMake's reference manual, the READMEs, contributing
# guides and issue templates of the projects vendored in the Google Cloud SDK, npm's command docs):
# the most imperative benign prose on the machine ("Please describe the bug", "Run npm install"),
# from ~100 projects the package docs do not cover. Frozen like the system docs; not a host.
TOOL_SNAPSHOT = Path(__file__).resolve().parent / "data" / "tool_docs.jsonl.gz"
TOOL_DOC_ROOTS = (Path("/usr/share/cmake-3.25/Help"), Path("/usr/lib/google-cloud-sdk"), Path("/usr/lib/node_modules"))
# Man pages in other languages (the manpages-l10n translations under /usr/share/man/<lang>/, 25
# languages here): every other benign family is English, and v7's first cut, trained on injections in
# eleven languages, flagged 14 of 740 such chunks in document mode (v6: 1). Grouped by page across
# languages, so a page's translations share a split. Frozen like the system docs; not a host.
FOREIGN_SNAPSHOT = Path(__file__).resolve().parent / "data" / "foreign_docs.jsonl.gz"
MAN_DIR = Path("/usr/share/man")
LONG_SOURCES = frozenset({"pydoc_topics", "stdlib_docstrings", "stdlib_code", "package_docs"})
MIN_CHARS = 200
MAX_CHARS = 3000

# Packages whose docs *are about* jailbreaks/guardrails: their READMEs quote attack strings,
# so counting them as benign would be label noise. Excluded, not silently relabelled.
_EXCLUDED_PATH_PARTS = ("nemoguardrails", "guardrail", "garak", "jailbreak", "red_team", "redteam")
_STDLIB_SKIP_DIRS = {"test", "tests", "idlelib", "lib2to3", "site-packages", "turtledemo", "ensurepip", "__pycache__"}


@dataclass(frozen=True)
class Doc:
    text: str
    source: str  # corpus family, reported separately
    group: str  # unit that must stay within one split (file or package)


def _target_len(rng: random.Random) -> int:
    # Half log-uniform (plenty of short paragraphs), half uniform (plenty of 1.5-3k pages,
    # the length range where jailbreak prompts live).
    if rng.random() < 0.5:
        return int(math.exp(rng.uniform(math.log(MIN_CHARS), math.log(MAX_CHARS))))
    return rng.randint(MIN_CHARS, MAX_CHARS)


def chunk(text: str, rng: random.Random, max_chunks: int) -> list[str]:
    """Cut ``text`` into up to ``max_chunks`` pieces of 200-3000 chars at line boundaries."""
    lines = text.splitlines(keepends=True)
    pieces: list[str] = []
    buf: list[str] = []
    size, target = 0, _target_len(rng)
    for line in lines:
        buf.append(line)
        size += len(line)
        if size >= target:
            piece = "".join(buf).strip()
            if len(piece) >= MIN_CHARS:
                pieces.append(piece[:MAX_CHARS])
            buf, size, target = [], 0, _target_len(rng)
    tail = "".join(buf).strip()
    if len(tail) >= MIN_CHARS:
        pieces.append(tail[:MAX_CHARS])
    if len(pieces) > max_chunks:
        pieces = rng.sample(pieces, max_chunks)
    return pieces


def _stdlib_files() -> list[Path]:
    root = Path(sysconfig.get_paths()["stdlib"])
    files = [p for p in root.rglob("*.py") if not (set(p.relative_to(root).parts[:-1]) & _STDLIB_SKIP_DIRS)]
    return sorted(files)


def pydoc_topics(rng: random.Random, max_chunks_per_topic: int = 3) -> Iterator[Doc]:
    from pydoc_data.topics import topics

    for name in sorted(topics):
        for piece in chunk(topics[name], rng, max_chunks_per_topic):
            yield Doc(piece, "pydoc_topics", f"pydoc:{name}")


def stdlib_docstrings(rng: random.Random, max_files: int) -> Iterator[Doc]:
    files = _stdlib_files()
    rng.shuffle(files)
    taken = 0
    for path in files:
        if taken >= max_files:
            break
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                tree = ast.parse(path.read_text(encoding="utf-8", errors="replace"))
        except SyntaxError:
            continue
        docs = [
            ast.get_docstring(node) or ""
            for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        ]
        text = "\n\n".join(d for d in docs if len(d) >= 80)
        pieces = chunk(text, rng, 2)
        if pieces:
            taken += 1
        for piece in pieces:
            yield Doc(piece, "stdlib_docstrings", f"stdlib:{path.name}")


def stdlib_code(rng: random.Random, max_files: int) -> Iterator[Doc]:
    files = _stdlib_files()
    rng.shuffle(files)
    for path in files[:max_files]:
        text = path.read_text(encoding="utf-8", errors="replace")
        for piece in chunk(text, rng, 2):
            yield Doc(piece, "stdlib_code", f"stdlib:{path.name}")


def _site_packages() -> Path:
    return Path(sysconfig.get_paths()["purelib"])


def _dist_name(rel: Path) -> str:
    top = rel.parts[0]
    return re.sub(r"-[0-9].*\.dist-info$", "", top).lower().replace("-", "_")


def package_docs(rng: random.Random, max_chunks_per_file: int = 3) -> Iterator[Doc]:
    root = _site_packages()
    files = sorted(
        p
        for pattern in ("*.md", "*.rst", "METADATA")
        for p in root.rglob(pattern)
        if not any(part in str(p.relative_to(root)).lower() for part in _EXCLUDED_PATH_PARTS)
    )
    for path in files:
        raw = path.read_text(encoding="utf-8", errors="replace")
        if path.name == "METADATA":
            body = email.parser.Parser().parsestr(raw).get_payload()
            if not isinstance(body, str):
                continue
            raw = body
        # The group is the distribution, not the file: a package's README and its METADATA
        # long description are the same text.
        group = f"pkg:{_dist_name(path.relative_to(root))}"
        for piece in chunk(raw, rng, max_chunks_per_file):
            yield Doc(piece, "package_docs", group)


def system_docs(rng: random.Random, max_chunks_per_file: int = 2, max_docs: int = 900) -> list[Doc]:
    """Chunks of the text documentation under /usr/share/doc (changelogs and licences left out)."""
    files = sorted(
        p
        for p in SYSTEM_DOC_DIR.rglob("*")
        if p.is_file()
        and _SYSTEM_DOC_NAME.match(p.name)
        and not re.search(r"changelog|copyright|license", p.name, re.IGNORECASE)
        and not any(part in str(p).lower() for part in _EXCLUDED_PATH_PARTS)
    )
    docs: list[Doc] = []
    for path in files:
        data = path.read_bytes()
        if path.suffix == ".gz":
            try:
                data = gzip.decompress(data)
            except OSError:
                continue
        text = data.decode("utf-8", errors="replace")
        if "\x00" in text or "<html" in text[:500].lower():
            continue
        group = f"sysdoc:{path.relative_to(SYSTEM_DOC_DIR).parts[0]}"
        docs += [Doc(piece, "system_docs", group) for piece in chunk(text, rng, max_chunks_per_file)]
    return sorted(rng.sample(docs, max_docs), key=lambda d: (d.group, d.text)) if len(docs) > max_docs else docs


def _tool_group(path: Path) -> str:
    """The project a tool doc belongs to: a CMake manual page, a vendored project, an npm package."""
    parts = path.parts
    for marker in ("third_party", "vendored", "node_modules"):
        if marker in parts:
            i = len(parts) - 1 - parts[::-1].index(marker)  # the innermost
            if i + 1 < len(parts) - 1:
                name = parts[i + 1]
                return f"tool:{name}/{parts[i + 2]}" if name.startswith("@") and i + 2 < len(parts) - 1 else f"tool:{name}"
    if "cmake" in str(path):
        return f"tool:cmake/{path.parent.name}/{path.stem}"
    return f"tool:{path.parent.name}"


def tool_docs(
    rng: random.Random, max_chunks_per_file: int = 2, max_cmake: int = 400, max_per_group: int = 30
) -> list[Doc]:
    """Chunks of the Markdown/reST docs under ``TOOL_DOC_ROOTS`` (changelogs and licences left out):
    ``max_cmake`` of CMake's ~1,900 pages and up to ``max_per_group`` chunks of each other project
    (no one project's style may be most of the family)."""
    files = sorted(
        p
        for root in TOOL_DOC_ROOTS
        if root.exists()
        for p in root.rglob("*")
        if p.is_file()
        and p.suffix.lower() in (".md", ".rst")
        and not re.search(r"changelog|copyright|licen[cs]e|notice|history", p.name, re.IGNORECASE)
        and not any(part in str(p).lower() for part in _EXCLUDED_PATH_PARTS)
    )
    docs: list[Doc] = []
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        if "\x00" in text:
            continue
        docs += [Doc(piece, "tool_docs", _tool_group(path)) for piece in chunk(text, rng, max_chunks_per_file)]
    cmake = [d for d in docs if d.group.startswith("tool:cmake/")]
    cmake = rng.sample(cmake, max_cmake) if len(cmake) > max_cmake else cmake
    projects: dict[str, list[Doc]] = defaultdict(list)
    for d in docs:
        if not d.group.startswith("tool:cmake/"):
            projects[d.group].append(d)
    rest: list[Doc] = []
    for group in sorted(projects):
        # A group lives in one split: 168 chunks of npm's manual in test would be a tenth of the family.
        members = projects[group]
        rest += rng.sample(members, max_per_group) if len(members) > max_per_group else members
    return sorted(cmake + rest, key=lambda d: (d.group, d.text))


def _render_man(page: Path) -> str:
    """A man page as plain text (groff with preconv for its encoding; no bold/underline overstrikes)."""
    source = gzip.decompress(page.read_bytes()) if page.suffix == ".gz" else page.read_bytes()
    cmd = ["groff", "-k", "-mandoc", "-Tutf8", "-P-cbou"]
    return subprocess.run(cmd, input=source, capture_output=True, timeout=60, check=False).stdout.decode("utf-8", "replace")


def foreign_docs(rng: random.Random, pages_per_language: int = 20, max_chunks_per_page: int = 2) -> list[Doc]:
    docs: list[Doc] = []
    for lang in sorted(p.name for p in MAN_DIR.iterdir() if p.is_dir() and not p.name.startswith(("man", "en"))):
        pages = sorted(p for p in (MAN_DIR / lang).rglob("*") if p.is_file())
        for page in rng.sample(pages, min(pages_per_language, len(pages))):
            group = f"man:{page.name.removesuffix('.gz')}"
            docs += [Doc(piece, "foreign_docs", group) for piece in chunk(_render_man(page), rng, max_chunks_per_page)]
    return docs


def read_snapshot(path: Path = SNAPSHOT) -> list[Doc]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [Doc(**json.loads(line)) for line in f if line.strip()]


def write_snapshot(docs: list[Doc], path: Path = SNAPSHOT) -> None:
    payload = "".join(
        json.dumps({"text": d.text, "source": d.source, "group": d.group}, ensure_ascii=False) + "\n" for d in docs
    )
    # mtime=0 keeps the file byte-identical across refreshes of unchanged content.
    path.write_bytes(gzip.compress(payload.encode("utf-8"), compresslevel=9, mtime=0))


def long_benign(seed: int, max_stdlib_files: int = 500, live_packages: bool = False) -> list[Doc]:
    """All long benign documents, deterministic for a given seed and interpreter."""
    docs: list[Doc] = []
    docs += pydoc_topics(random.Random(f"{seed}:topics"))
    docs += stdlib_docstrings(random.Random(f"{seed}:docstrings"), max_stdlib_files)
    docs += stdlib_code(random.Random(f"{seed}:code"), max_stdlib_files)
    if live_packages or not SNAPSHOT.exists():
        docs += package_docs(random.Random(f"{seed}:pkgdocs"))
    else:
        docs += read_snapshot()
    return docs


def frozen_system_docs() -> list[Doc]:
    return read_snapshot(SYSTEM_SNAPSHOT) if SYSTEM_SNAPSHOT.exists() else []


def frozen_tool_docs() -> list[Doc]:
    return read_snapshot(TOOL_SNAPSHOT) if TOOL_SNAPSHOT.exists() else []


def frozen_foreign_docs() -> list[Doc]:
    return read_snapshot(FOREIGN_SNAPSHOT) if FOREIGN_SNAPSHOT.exists() else []


def new_to_dataset(docs: list[Doc], seed: int, family: str) -> list[Doc]:
    """``docs`` (a refresh of ``family``) less those that near-duplicate a text another family holds:
    joining an existing group would move it, and every example planted in it, to another split (the
    Cloud SDK vendors Python packages whose READMEs are package docs already)."""
    from guardrails.injection.dataset import source_items
    from guardrails.injection.dedup import near_duplicate_groups

    known = sorted({it.text for it in source_items(seed) if it.source != family})
    roots = near_duplicate_groups([*known, *(d.text for d in docs)])
    return [d for d, root in zip(docs, roots[len(known):], strict=True) if root >= len(known)]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Freeze installed-package (or system) docs into a snapshot file.")
    parser.add_argument("--snapshot", action="store_true", required=True)
    parser.add_argument("--system", action="store_true", help="the /usr/share/doc family instead")
    parser.add_argument("--tools", action="store_true", help="the developer-tool docs family instead")
    parser.add_argument("--foreign", action="store_true", help="the man pages in other languages instead")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    if args.system:
        fresh, path = system_docs(random.Random(f"{args.seed}:sysdocs")), SYSTEM_SNAPSHOT
    elif args.tools:
        fresh, path = tool_docs(random.Random(f"{args.seed}:tooldocs")), TOOL_SNAPSHOT
    elif args.foreign:
        fresh, path = foreign_docs(random.Random(f"{args.seed}:foreign")), FOREIGN_SNAPSHOT
    else:
        fresh, path = list(package_docs(random.Random(f"{args.seed}:pkgdocs"))), SNAPSHOT
    frozen = new_to_dataset(fresh, args.seed, fresh[0].source) if fresh else fresh
    write_snapshot(frozen, path)
    print(f"wrote {len(frozen)} chunks from {len({d.group for d in frozen})} packages to {path}")
