"""Renderers of a verify report for people and for CI: text, JSON, JUnit, Markdown, GitHub."""

from __future__ import annotations

import json
from collections.abc import Sequence
from xml.sax.saxutils import escape, quoteattr

from reprolock.verify.diff import Change
from reprolock.verify.findings import Finding, Report


def _line(f: Finding) -> str:
    move = f"expected {f.expected}" if f.expected else ""
    if f.actual:
        move += (", " if move else "") + f"found {f.actual}"
    return f"{f.kind} {f.subject}: {f.message}" + (f" ({move})" if move else "")


def render(report: Report, fmt: str) -> str:
    errors = [f for f in report.findings if f.severity == "error"]
    warnings = [f for f in report.findings if f.severity == "warning"]
    if fmt == "json":
        return (
            json.dumps(
                {
                    "image": report.image,
                    "target": report.target,
                    "ok": not report.failed,
                    "findings": [
                        {
                            "kind": f.kind,
                            "subject": f.subject,
                            "expected": f.expected,
                            "actual": f.actual,
                            "severity": f.severity,
                            "where": f.where,
                            "message": f.message,
                        }
                        for f in report.findings
                    ],
                },
                indent=2,
                sort_keys=True,
            )
            + "\n"
        )
    if fmt == "junit":
        cases = []
        for f in report.findings:
            name = quoteattr(f"{f.kind} {f.subject}")
            body = escape(_line(f) + (f" [{f.where}]" if f.where else ""))
            tag = "failure" if f.severity == "error" else "skipped"
            cases.append(
                f'  <testcase classname="reprolock.verify" name={name}>'
                f"<{tag} message={quoteattr(f.message)}>{body}</{tag}></testcase>"
            )
        if not report.findings:
            cases.append('  <testcase classname="reprolock.verify" name="image matches lock"/>')
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<testsuite name={quoteattr('reprolock verify ' + report.target)} "
            f'tests="{max(1, len(report.findings))}" failures="{len(errors)}" '
            f'skipped="{len(warnings)}">\n' + "\n".join(cases) + "\n</testsuite>\n"
        )
    if fmt == "markdown":
        status = "❌ drift" if report.failed else "✅ matches the lock"
        lines = [f"### reprolock verify: `{report.image}` ({report.target}) — {status}", ""]
        if report.findings:
            lines += ["| severity | check | subject | expected | found |", "|---|---|---|---|---|"]
            lines += [
                f"| {f.severity} | {f.kind} | `{f.subject}` | {f.expected or ''} | "
                f"{f.actual or ''} |"
                for f in report.findings
            ]
        return "\n".join(lines) + "\n"
    if fmt == "github":
        return "".join(
            f"::{'error' if f.severity == 'error' else 'warning'} "
            f"title=reprolock {f.kind}::{_line(f)}\n"
            for f in report.findings
        )
    lines = [
        f"{report.image} against {report.target}: "
        + ("drift" if report.failed else "matches the lock")
        + f" ({_count(len(errors), 'error')}, {_count(len(warnings), 'warning')})"
    ]
    lines += [
        f"  {'error' if f.severity == 'error' else 'warn '}  {_line(f)}"
        + (f"  [{f.where}]" if f.where else "")
        for f in report.findings
    ]
    return "\n".join(lines) + "\n"


def render_diff(a: str, b: str, changes: Sequence[Change], fmt: str) -> str:
    """A diff for CI: JUnit (one test case per change, failing), Markdown, GitHub notices."""

    def text(c: Change) -> str:
        move = f"{c.before} → {c.after}" if c.before and c.after else (c.after or c.before or "")
        extra = f" ({c.level})" if c.level else ""
        note = f" — {c.note}" if c.note else ""
        where = f" [{c.where}]" if c.where else ""
        return f"{c.section} {c.subject}: {c.kind} {move}{extra}{note}{where}"

    if fmt == "junit":
        cases = [
            f'  <testcase classname="reprolock.diff" name={quoteattr(c.section + " " + c.subject)}>'
            f"<failure message={quoteattr(c.kind)}>{escape(text(c))}</failure></testcase>"
            for c in changes
        ]
        if not changes:
            cases.append('  <testcase classname="reprolock.diff" name="no differences"/>')
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<testsuite name={quoteattr(f'reprolock diff {a} {b}')} "
            f'tests="{max(1, len(changes))}" failures="{len(changes)}">\n'
            + "\n".join(cases)
            + "\n</testsuite>\n"
        )
    if fmt == "markdown":
        lines = [f"### reprolock diff: `{a}` → `{b}`", ""]
        if not changes:
            return "\n".join([*lines, "No differences."]) + "\n"
        lines += [
            "| section | subject | change | before | after | note | where |",
            "|---|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {c.section} | `{c.subject}` | {c.kind}{f' ({c.level})' if c.level else ''} "
            f"| {c.before or ''} | {c.after or ''} | {c.note or ''} | {c.where or ''} |"
            for c in changes
        ]
        return "\n".join(lines) + "\n"
    return "".join(f"::notice title=reprolock diff {c.section}::{text(c)}\n" for c in changes)


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"
