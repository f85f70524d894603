"""Renderers of a verify report for people and for CI: text, JSON, JUnit, Markdown, GitHub."""

from __future__ import annotations

import json
from xml.sax.saxutils import escape, quoteattr

from reprolock.verify.findings import Finding, Report

FORMATS = ("text", "json", "junit", "markdown", "github")


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
        + f" ({len(errors)} errors, {len(warnings)} warnings)"
    ]
    lines += [
        f"  {'error' if f.severity == 'error' else 'warn '}  {_line(f)}"
        + (f"  [{f.where}]" if f.where else "")
        for f in report.findings
    ]
    return "\n".join(lines) + "\n"
