"""Outputs: JUnit XML that CI reads, the Markdown and HTML reports (with plots), the terminal table."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.unit.evals.conftest import FAKE_KEY, Cli, WriteSuite

ROWS = [{"id": "hello", "input": "hi", "expected": "Hello", "category": "greeting"},
        {"id": "bye", "input": "bye", "expected": "Goodbye", "category": "farewell"}]

# The common JUnit layout (Jenkins junit-10.xsd, trimmed to what we emit).
JUNIT_XSD = """<?xml version="1.0" encoding="UTF-8"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" elementFormDefault="qualified">
  <xs:element name="failure"><xs:complexType mixed="true"><xs:attribute name="type" type="xs:string"/>
    <xs:attribute name="message" type="xs:string"/></xs:complexType></xs:element>
  <xs:element name="error"><xs:complexType mixed="true"><xs:attribute name="type" type="xs:string"/>
    <xs:attribute name="message" type="xs:string"/></xs:complexType></xs:element>
  <xs:element name="skipped"><xs:complexType mixed="true"><xs:attribute name="message" type="xs:string"/></xs:complexType></xs:element>
  <xs:element name="system-out" type="xs:string"/>
  <xs:element name="properties"><xs:complexType><xs:sequence>
    <xs:element name="property" maxOccurs="unbounded"><xs:complexType><xs:attribute name="name" type="xs:string" use="required"/>
      <xs:attribute name="value" type="xs:string" use="required"/></xs:complexType></xs:element></xs:sequence></xs:complexType></xs:element>
  <xs:element name="testcase"><xs:complexType><xs:sequence>
    <xs:choice minOccurs="0" maxOccurs="unbounded"><xs:element ref="skipped"/><xs:element ref="error"/><xs:element ref="failure"/>
      <xs:element ref="system-out"/></xs:choice></xs:sequence>
    <xs:attribute name="name" type="xs:string" use="required"/><xs:attribute name="classname" type="xs:string" use="required"/>
    <xs:attribute name="time" type="xs:string"/></xs:complexType></xs:element>
  <xs:element name="testsuite"><xs:complexType><xs:sequence>
    <xs:element ref="properties" minOccurs="0"/><xs:element ref="testcase" minOccurs="0" maxOccurs="unbounded"/>
    <xs:element ref="system-out" minOccurs="0"/></xs:sequence>
    <xs:attribute name="name" type="xs:string" use="required"/><xs:attribute name="tests" type="xs:string" use="required"/>
    <xs:attribute name="failures" type="xs:string"/><xs:attribute name="errors" type="xs:string"/>
    <xs:attribute name="skipped" type="xs:string"/><xs:attribute name="time" type="xs:string"/>
    <xs:attribute name="timestamp" type="xs:string"/><xs:attribute name="hostname" type="xs:string"/></xs:complexType></xs:element>
  <xs:element name="testsuites"><xs:complexType><xs:sequence><xs:element ref="testsuite" minOccurs="0" maxOccurs="unbounded"/></xs:sequence>
    <xs:attribute name="name" type="xs:string"/><xs:attribute name="tests" type="xs:string"/><xs:attribute name="failures" type="xs:string"/>
    <xs:attribute name="errors" type="xs:string"/><xs:attribute name="time" type="xs:string"/></xs:complexType></xs:element>
</xs:schema>
"""


def check_junit(path: Path) -> ET.Element:
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    for suite in root.iter("testsuite"):
        cases = suite.findall("testcase")
        assert int(suite.get("tests", -1)) == len(cases)
        assert int(suite.get("failures", -1)) == sum(c.find("failure") is not None for c in cases)
        assert int(suite.get("errors", -1)) == sum(c.find("error") is not None for c in cases)
        for case in cases:
            assert case.get("name") and case.get("classname")
    try:
        import xmlschema
    except ImportError:
        return root
    xmlschema.XMLSchema(JUNIT_XSD).validate(str(path))
    return root


@pytest.mark.parametrize(("expected", "code", "failures"), [("Hello", 0, 0), ("nope", 1, 1)])
def test_junit_agrees_with_the_exit_code(expected: str, code: int, failures: int, fake_provider: str,
                                         write_suite: WriteSuite, run_cli: Cli, tmp_path: Path) -> None:
    rows = [{"id": "a", "input": "x", "expected": expected}]
    path = write_suite({"name": "junit", "target": {"model": "good"},
                        "metrics": [{"metric": "contains", "threshold": 1.0}]}, rows)
    assert run_cli(path, "--base-url", fake_provider, "--junit", tmp_path / "j.xml") == code
    root = check_junit(tmp_path / "j.xml")
    assert int(root.get("failures", -1)) == failures and root.get("errors") == "0"
    (suite,) = root.findall("testsuite")
    assert suite.get("name") == "junit[good]"
    names = [c.get("name") for c in suite.findall("testcase")]
    assert "contains.mean ≥ 1" in names and "errors ≤ 0%" in names
    if failures:
        failure = suite.find("testcase/failure")
        assert failure is not None and failure.get("type") == "threshold" and "a" in (failure.text or "")
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["target.model"] == "good" and props["seed"] == "0"


def test_junit_for_a_broken_suite_has_an_error(run_cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("name: [")
    assert run_cli(tmp_path / "bad.yaml", "--base-url", "http://127.0.0.1:9", "--junit", tmp_path / "j.xml") == 2
    root = check_junit(tmp_path / "j.xml")
    error = root.find("testsuite/testcase/error")
    assert error is not None and error.get("type") == "SuiteError" and root.get("errors") == "1"


def test_markdown_and_html_reports(fake_gateway: str, write_suite: WriteSuite, run_cli: Cli, tmp_path: Path) -> None:
    rows = [{"id": f"q{i}", "category": "odd" if i % 2 else "even", "variables": {"answer": f"a{i}"},
             "expected": f"a{i}"} for i in range(6)]
    spec = {"name": "report", "description": "two prompt versions", "targets": [
        {"name": "v1", "kind": "prompt", "model": "echo", "prompt": {"name": "qa", "version": 1}},
        {"name": "v2", "kind": "prompt", "model": "echo", "prompt": {"name": "qa", "version": 2}}],
        "metrics": [{"metric": "contains", "threshold": 0.5}, "latency"]}
    path = write_suite(spec, rows)
    assert run_cli(path, "--base-url", fake_gateway, "--api-key", FAKE_KEY, "--json", tmp_path / "base.json") == 1
    assert run_cli(path, "--base-url", fake_gateway, "--api-key", FAKE_KEY, "--report", tmp_path / "rep",
                   "--baseline", tmp_path / "base.json") == 1
    md = (tmp_path / "rep/report.md").read_text()
    assert "# Evaluation report" in md and "**FAILED" in md
    assert "| contains | 1 | mean |" in md and "### Comparison" in md and "### Against the baseline" in md
    assert "v2: I don't know" in md  # failing items and per-item diffs show outputs
    page = (tmp_path / "rep/report.html").read_text()
    assert page.startswith("<!doctype html>") and "two prompt versions" in page
    n_plots = page.count('src="data:image/png;base64,')
    # distributions (2 metrics) + per-category (contains) + targets + baseline
    assert n_plots == 5, n_plots
    assert (tmp_path / "rep/results.json").is_file()


def test_html_escapes_model_output(fake_gateway: str, write_suite: WriteSuite, run_cli: Cli, tmp_path: Path) -> None:
    path = write_suite({"name": "esc", "target": {"model": "echo"}, "metrics": ["contains"]},
                       [{"input": "<script>alert(1)</script>", "expected": "x"}])
    run_cli(path, "--base-url", fake_gateway, "--api-key", FAKE_KEY, "--report", tmp_path / "rep")
    page = (tmp_path / "rep/report.html").read_text()
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page


def test_terminal_table(fake_provider: str, write_suite: WriteSuite, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from evals import cli

    path = write_suite({"name": "term", "target": {"model": "good"},
                        "metrics": [{"metric": "contains", "threshold": 0.9}]}, ROWS)
    code = cli.main(["run", str(path), "--base-url", fake_provider, "--no-store", "--cache-dir", str(tmp_path / "c")])
    out = capsys.readouterr().out
    assert code == 1
    assert "suite term: FAILED" in out and "contains" in out and "mean ≥ 0.9" in out
    assert "FAILED good: contains.mean = 0.5" in out and "(items: bye)" in out and "exit 1" in out
