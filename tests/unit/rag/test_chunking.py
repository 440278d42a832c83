from __future__ import annotations

import pytest

from rag.chunking import Chunker, markdown_parts
from rag.loaders import Section


def test_text_is_split_within_size_with_overlap() -> None:
    words = " ".join(f"word{i}" for i in range(300))
    pieces = Chunker(200, 50).split([Section(words, {"page": 2})])
    assert len(pieces) > 5
    assert all(len(p.text) <= 200 for p in pieces)
    assert all(p.metadata == {"page": 2} for p in pieces)
    # consecutive chunks share words (the overlap) and, together, keep every word
    assert set(pieces[0].text.split()) & set(pieces[1].text.split())
    assert set(words.split()) == {w for p in pieces for w in p.text.split()}


def test_paragraphs_are_preferred_split_points() -> None:
    text = "alpha " * 20 + "\n\n" + "beta " * 20
    pieces = Chunker(150, 0).split([Section(text)])
    assert [p.text.split()[0] for p in pieces] == ["alpha", "beta"]


def test_markdown_headings_become_paths_and_prefixes() -> None:
    md = "# Guide\n\nIntro.\n\n## Install\n\nRun it.\n\n### Linux\n\napt.\n\n## Use\n\nCall it.\n"
    pieces = Chunker(500, 50).split([Section(md, {"k": 1}, markdown=True)])
    assert [(p.metadata.get("section"), p.text) for p in pieces] == [
        ("Guide", "Guide\nIntro."),
        ("Guide > Install", "Guide > Install\nRun it."),
        ("Guide > Install > Linux", "Guide > Install > Linux\napt."),
        ("Guide > Use", "Guide > Use\nCall it."),
    ]
    assert all(p.metadata["k"] == 1 for p in pieces)


def test_markdown_code_fences_are_not_headings() -> None:
    md = "# Top\n\n```bash\n# a comment, not a heading\n    indented\n```\n"
    parts = markdown_parts(md)
    assert parts == [(["Top"], "\n```bash\n# a comment, not a heading\n    indented\n```".strip("\n"))]


def test_long_markdown_sections_stay_within_size() -> None:
    md = "# A very long heading title\n\n" + "\n\n".join(f"sentence number {i} is here." for i in range(200))
    pieces = Chunker(300, 30).split([Section(md, markdown=True)])
    assert len(pieces) > 10
    assert all(len(p.text) <= 300 for p in pieces)
    assert all(p.text.startswith("A very long heading title\n") for p in pieces)


def test_text_before_the_first_heading_has_no_section() -> None:
    pieces = Chunker(500, 0).split([Section("preface\n\n# H\n\nbody", markdown=True)])
    assert [(p.text, p.metadata) for p in pieces] == [("preface", {}), ("H\nbody", {"section": "H"})]


def test_blank_input_gives_no_chunks_and_bad_sizes_are_refused() -> None:
    assert Chunker(100, 10).split([Section("  \n\n ")]) == []
    with pytest.raises(ValueError):
        Chunker(100, 100)
