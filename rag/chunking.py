"""Sections to chunks with LangChain's recursive splitters, markdown-aware for .md files.

Markdown is first cut at its headings (outside code fences). Each chunk of a part starts with the
part's heading path ("Guide > Install"), so a chunk read or embedded on its own still says what
it is about; the path is also kept as `section` metadata. The part's body is then split by
LangChain's markdown separators (headings, fences, rules, paragraphs, lines, words).
We do the heading pass ourselves rather than with MarkdownHeaderTextSplitter because that one
rejoins lines and drops blank lines, which loses paragraph boundaries and code indentation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from langchain_text_splitters import Language, RecursiveCharacterTextSplitter

from rag.loaders import Section

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


@dataclass(frozen=True)
class Piece:
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


def markdown_parts(text: str) -> list[tuple[list[str], str]]:
    """(heading path, body) for each run of lines under one heading; the heading line itself is dropped."""
    parts: list[tuple[list[str], str]] = []
    path: list[tuple[int, str]] = []
    body: list[str] = []
    in_fence = False

    def close() -> None:
        if "".join(body).strip():
            parts.append(([t for _, t in path], "\n".join(body).strip("\n")))
        body.clear()

    for line in text.splitlines():
        if _FENCE.match(line):
            in_fence = not in_fence
        m = None if in_fence else _HEADING.match(line)
        if m is None:
            body.append(line)
            continue
        close()
        level = len(m.group(1))
        path = [(lv, t) for lv, t in path if lv < level] + [(level, m.group(2))]
    close()
    return parts


class Chunker:
    def __init__(self, chunk_size: int, chunk_overlap: int) -> None:
        if chunk_overlap >= chunk_size:
            raise ValueError("chunk_overlap must be smaller than chunk_size")
        self.chunk_size = chunk_size
        self.chunk_overlap = chunk_overlap
        self._text = RecursiveCharacterTextSplitter(chunk_size=chunk_size, chunk_overlap=chunk_overlap)

    def split(self, sections: list[Section]) -> list[Piece]:
        pieces: list[Piece] = []
        for section in sections:
            if section.markdown:
                pieces.extend(self._split_markdown(section))
            else:
                pieces.extend(Piece(t, dict(section.metadata)) for t in self._text.split_text(section.text))
        return [p for p in pieces if p.text.strip()]

    def _split_markdown(self, section: Section) -> list[Piece]:
        out: list[Piece] = []
        for headings, body in markdown_parts(section.text):
            prefix = " > ".join(headings)
            meta = dict(section.metadata)
            if prefix:
                meta["section"] = prefix
            # The heading line counts against the chunk size; keep at least half of it for the body.
            size = max(self.chunk_size // 2, self.chunk_size - len(prefix) - 1)
            splitter = RecursiveCharacterTextSplitter.from_language(
                Language.MARKDOWN, chunk_size=size, chunk_overlap=min(self.chunk_overlap, size // 2)
            )
            for text in splitter.split_text(body):
                out.append(Piece(f"{prefix}\n{text}" if prefix else text, meta))
        return out
