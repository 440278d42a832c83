"""File bytes to text sections, by extension. Every failure is a `BadDocument` naming the file.

    .txt          the text (UTF-8)
    .md           the text, chunked markdown-aware (headers become metadata)
    .html / .htm  visible text (stdlib html.parser: script/style dropped, blocks become lines)
    .pdf          one section per page with text (pypdf), metadata `page`
    .jsonl        one section per line: {"text": ..., "metadata": {...}, other scalar keys...}
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from rag.errors import BadDocument

KINDS = {
    ".txt": "text",
    ".text": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
    ".jsonl": "jsonl",
}


@dataclass(frozen=True)
class Section:
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)
    markdown: bool = False


def kind_of(source: str) -> str | None:
    return KINDS.get(Path(source).suffix.lower())


def supported(path: str | Path) -> bool:
    return kind_of(str(path)) is not None


def load_path(path: Path, source: str | None = None) -> list[Section]:
    name = source or str(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise BadDocument(name, f"cannot read file: {err.strerror or err}") from None
    return load_bytes(name, data)


def load_bytes(source: str, data: bytes, default_kind: str | None = None) -> list[Section]:
    """Sections of one file; `default_kind` applies when the name has no supported extension."""
    kind = kind_of(source) or default_kind
    if kind is None:
        exts = ", ".join(sorted(KINDS))
        raise BadDocument(source, f"unsupported file type {Path(source).suffix or '(none)'!r}; supported: {exts}")
    if kind == "pdf":
        sections = _pdf(source, data)
    elif kind == "jsonl":
        sections = _jsonl(source, _decode(source, data))
    elif kind == "html":
        sections = [Section(_html_text(_decode(source, data)))]
    else:
        sections = [Section(_decode(source, data), markdown=kind == "markdown")]
    sections = [s for s in sections if s.text.strip()]
    if not sections:
        raise BadDocument(source, "no text in the file")
    return sections


def _decode(source: str, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise BadDocument(source, f"not UTF-8 text (invalid byte at offset {err.start})") from None


def _pdf(source: str, data: bytes) -> list[Section]:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise BadDocument(source, "the PDF is encrypted")
        pages = [Section(page.extract_text() or "", {"page": i + 1}) for i, page in enumerate(reader.pages)]
    except BadDocument:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, OSError) as err:
        raise BadDocument(source, f"not a readable PDF ({type(err).__name__}: {err})") from None
    if not any(p.text.strip() for p in pages):
        raise BadDocument(source, "the PDF has no extractable text (scanned images?)")
    return pages


def _jsonl(source: str, text: str) -> list[Section]:
    sections: list[Section] = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise BadDocument(source, f"line {n}: invalid JSON ({err.msg})") from None
        if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
            raise BadDocument(source, f"line {n}: expected an object with a string 'text'")
        meta = obj.get("metadata", {})
        if not isinstance(meta, dict):
            raise BadDocument(source, f"line {n}: 'metadata' must be an object")
        extra = {k: v for k, v in obj.items() if k not in ("text", "metadata") and _scalar(v)}
        sections.append(Section(obj["text"], {**extra, **meta, "line": n}))
    return sections


def _scalar(v: object) -> bool:
    return isinstance(v, str | int | float | bool) or v is None


class _TextExtractor(HTMLParser):
    SKIP = {"script", "style", "noscript", "template", "svg", "head"}
    BLOCK = {
        "p", "div", "br", "li", "ul", "ol", "tr", "table", "section", "article", "header", "footer",
        "h1", "h2", "h3", "h4", "h5", "h6", "pre", "blockquote", "dd", "dt", "hr", "title", "main", "nav",
    }

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self.skip_depth += 1
        elif tag in self.BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self.skip_depth = max(0, self.skip_depth - 1)
        elif tag in self.BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skip_depth:
            self.parts.append(data)


def _html_text(html: str) -> str:
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    lines = (re.sub(r"[ \t\r\f\v]+", " ", ln).strip() for ln in "".join(parser.parts).split("\n"))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
