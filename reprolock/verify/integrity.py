"""The sections of `verify` that look at the files themselves: Python files against their
RECORD (and bytecode against its source), Debian packages' files against dpkg's md5sums,
and data files baked into the image.  What the locked base's layers hold is the base as
locked, not drift: only what later layers wrote or deleted is reported."""

from __future__ import annotations

import fnmatch
import posixpath
from collections import defaultdict
from collections.abc import Iterator

from reprolock.inventory import DpkgIssue, PythonDist, PythonEnv, RecordIssue
from reprolock.inventory.data_files import LARGE_BYTES
from reprolock.verify.context import Context, Finding, Section, Severity, finding

_MESSAGES = {
    "missing": "a file of {name} is missing (RECORD)",
    "modified": "a file of {name} is modified (RECORD)",
    "malformed": "a RECORD row of {name} cannot be checked",
    "pyc-stale": "bytecode of {name} that matches no source in the image",
    "pyc-orphan": "bytecode of {name} whose source is gone",
}
_SHOWN = 5  # paths named in one aggregated finding


def record(ctx: Context) -> Iterator[Finding]:
    """RECORD and bytecode issues in the lock's environments, where the layer that
    changed the file says."""
    for env in ctx.locked_envs():
        for dist in env.dists:
            for issue in dist.record_issues:
                if ctx.after_base(issue.layer):
                    yield _record_finding(env, dist, issue)


def _record_finding(env: PythonEnv, dist: PythonDist, issue: RecordIssue) -> Finding:
    pyc = issue.problem.startswith("pyc-")
    severity: Severity = "error" if issue.listed or issue.used or not pyc else "warning"
    message = _MESSAGES.get(issue.problem, "a file of {name} is " + issue.problem).format(
        name=dist.name
    )
    if issue.used:
        message += ": Python imports it"
    elif not issue.listed:
        message += " (not in RECORD: written after install; Python does not import it)"
    if issue.layer is None:
        where = f"layer {dist.layer} /{dist.metadata_path}"
    else:
        path = posixpath.normpath(posixpath.join(env.path, issue.path))
        where = f"layer {issue.layer} {path}"
    return finding(
        issue.problem if pyc else f"record-{issue.problem}",
        f"{dist.name}:{issue.path}",
        issue.expected,
        issue.actual,
        severity,
        message,
        where,
    )


def dpkg(ctx: Context) -> Iterator[Finding]:
    """Files of Debian packages unlike dpkg's md5sums: a changed file is an error, a
    changed conffile a warning (as ``debsums`` tells them apart), missing files one
    warning per package."""
    found = ctx.inventory.dpkg_integrity
    if found is None:
        return
    missing: dict[str, list[DpkgIssue]] = defaultdict(list)
    for issue in found.issues:
        if not ctx.after_base(issue.layer):
            continue
        if issue.problem == "missing":
            missing[issue.package].append(issue)
        elif issue.conffile:
            yield finding(
                "dpkg-conffile",
                f"{issue.package}:{issue.path}",
                issue.expected,
                issue.actual,
                "warning",
                f"a configuration file of {issue.package} was changed (conffile)",
                f"layer {issue.layer} {issue.path}",
            )
        else:
            yield finding(
                "dpkg-modified",
                f"{issue.package}:{issue.path}",
                issue.expected,
                issue.actual,
                "error",
                f"a file of {issue.package} is modified (dpkg md5sums)",
                f"layer {issue.layer} {issue.path}",
            )
    for package, issues in sorted(missing.items()):
        paths = [i.path for i in issues]
        more = f" and {len(paths) - _SHOWN} more" if len(paths) > _SHOWN else ""
        yield finding(
            "dpkg-missing",
            package,
            None,
            f"{len(paths)} file{'s' if len(paths) != 1 else ''} missing",
            "warning",
            f"files of {package} are missing: {', '.join(paths[:_SHOWN])}{more}",
            None if issues[0].layer is None else f"layer {issues[0].layer} {paths[0]}",
        )


def data(ctx: Context) -> Iterator[Finding]:
    """Data files of `LARGE_BYTES` or more that the lock's ``[image] allow-data`` does not
    name."""
    allowed = ctx.image.allow_data if ctx.image else ()
    for file in ctx.inventory.data_files:
        if file.size < LARGE_BYTES or not ctx.after_base(file.layer):
            continue
        if any(fnmatch.fnmatchcase(file.path, pattern) for pattern in allowed):
            continue
        what = "large file" if file.why == "large" else f"data file ({file.why})"
        yield finding(
            "data-file",
            file.path,
            None,
            f"{file.size / 1e6:.1f} MB",
            "warning",
            f"a {what} no package owns is baked into the image; if it belongs there, allow "
            "it in the spec's [image] allow-data",
            f"layer {file.layer} {file.path}",
        )


SECTIONS: tuple[Section, ...] = (record, dpkg, data)
