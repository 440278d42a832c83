from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.errors import BadDocument
from rag.loaders import load_bytes, load_path, supported


def tiny_pdf(*pages: str) -> bytes:
    """A minimal, valid PDF with one line of Helvetica text per page (correct xref offsets)."""
    objs: list[bytes] = []
    n = len(pages)
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(n))
    objs.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objs.append(f"<< /Type /Pages /Kids [{kids}] /Count {n} >>".encode())
    font = 3 + 2 * n
    for i, text in enumerate(pages):
        stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
        objs.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {4 + 2 * i} 0 R "
                    f"/Resources << /Font << /F1 {font} 0 R >> >> >>".encode())
        objs.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    objs.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objs, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return bytes(out)


def test_text_and_markdown() -> None:
    [s] = load_bytes("notes.txt", b"hello\nworld")
    assert (s.text, s.markdown) == ("hello\nworld", False)
    [m] = load_bytes("README.md", b"\xef\xbb\xbf# Title\n\nbody")  # a BOM is dropped
    assert (m.text, m.markdown) == ("# Title\n\nbody", True)


def test_html_keeps_visible_text_only() -> None:
    html = (b"<html><head><title>T</title><style>p {color: red}</style><script>var x = 1;</script></head>"
            b"<body><h1>Billing</h1><p>Invoices &amp; receipts<br>monthly.</p><ul><li>one</li><li>two</li></ul>"
            b"<noscript>enable js</noscript></body></html>")
    [s] = load_bytes("page.html", html)
    assert s.text == "Billing\n\nInvoices & receipts\nmonthly.\n\none\n\ntwo"
    assert "color" not in s.text and "var x" not in s.text and "enable js" not in s.text


def test_jsonl_lines_become_sections_with_metadata() -> None:
    lines = [{"text": "first", "metadata": {"lang": "en"}, "title": "A"}, {"text": "second", "nested": {"x": 1}}]
    data = ("\n".join(json.dumps(x) for x in lines) + "\n\n").encode()
    a, b = load_bytes("faq.jsonl", data)
    assert (a.text, a.metadata) == ("first", {"title": "A", "lang": "en", "line": 1})
    assert (b.text, b.metadata) == ("second", {"line": 2})  # non-scalar extra keys are not metadata


def test_pdf_pages_with_page_numbers() -> None:
    pages = load_bytes("report.pdf", tiny_pdf("Hello first page", "Second page text"))
    assert [(p.text.strip(), p.metadata) for p in pages] == [
        ("Hello first page", {"page": 1}), ("Second page text", {"page": 2})]


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("a.docx", b"PK..", "unsupported file type '.docx'"),
        ("noext", b"text", "unsupported file type '(none)'"),
        ("latin1.txt", "caf\xe9".encode("latin-1"), "not UTF-8 text (invalid byte at offset 3)"),
        ("empty.md", b"  \n\n", "no text in the file"),
        ("bad.jsonl", b'{"text": "ok"}\nnot json\n', "line 2: invalid JSON"),
        ("bad2.jsonl", b'{"body": "no text key"}\n', "line 1: expected an object with a string 'text'"),
        ("bad3.jsonl", b'{"text": "x", "metadata": [1]}\n', "line 1: 'metadata' must be an object"),
        ("broken.pdf", b"%PDF-1.4\nthis is not really a pdf", "not a readable PDF"),
        ("blank.pdf", tiny_pdf(""), "no extractable text"),
    ],
)
def test_bad_files_raise_bad_document_naming_the_file(name: str, data: bytes, reason: str) -> None:
    with pytest.raises(BadDocument) as info:
        load_bytes(name, data)
    assert info.value.source == name
    assert reason in info.value.reason
    assert str(info.value).startswith(f"{name}: ")


def test_inline_text_without_extension_can_default_to_text() -> None:
    [s] = load_bytes("faq-entry-12", b"plain words", default_kind="text")
    assert s.text == "plain words"


def test_load_path_reports_missing_files(tmp_path: Path) -> None:
    with pytest.raises(BadDocument, match="cannot read file"):
        load_path(tmp_path / "missing.txt")
    assert supported("x.MD") and supported("y.htm") and not supported("z.doc")
