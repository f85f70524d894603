"""Installed Python distributions in every site-packages/dist-packages, with RECORD checks."""

from __future__ import annotations

import csv
import io
import posixpath
import re
from email.parser import HeaderParser

from reprolock.image.view import FilesystemView
from reprolock.inventory.model import PythonDist, PythonEnv, RecordIssue
from reprolock.inventory.text import decode, printable
from reprolock.model.oci import load_json

PACKAGE_DIRS = ("site-packages", "dist-packages")
_PYTHON = re.compile(r"python(\d+\.\d+)")
_NORMALIZE = re.compile(r"[-_.]+")
_SHA256 = re.compile(r"[A-Za-z0-9_-]{43}")  # urlsafe base64 of 32 bytes, unpadded


def canonical(name: str) -> str:
    return _NORMALIZE.sub("-", name).lower()


def _headers(data: bytes) -> dict[str, str]:
    """Core metadata headers (the first of each), decoded as UTF-8 whatever the bytes."""
    message = HeaderParser().parsestr(decode(data))
    out: dict[str, str] = {}
    for key, value in message.items():
        out.setdefault(key, printable(str(value)).strip())
    return out


def env_kind(view: FilesystemView, env_path: str) -> str:
    """venv (a pyvenv.cfg above it), user (~/.local), debian (dist-packages) or system."""
    parts = env_path.split("/")
    if "lib" in parts:
        root = "/".join(parts[: parts.index("lib")])
        if view.exists(posixpath.join(root, "pyvenv.cfg")):
            return "venv"
    if "/.local/" in f"/{env_path}/":
        return "user"
    if env_path.endswith("dist-packages"):
        return "debian"
    return "system"


def find_envs(view: FilesystemView) -> list[str]:
    return sorted(
        node.entry.path
        for node in view.walk()
        if node.entry.kind == "dir" and posixpath.basename(node.entry.path) in PACKAGE_DIRS
    )


def _record_issues(
    view: FilesystemView, env: str, record: bytes, record_path: str
) -> tuple[int, int, list[RecordIssue]]:
    """Files listed, files hashed and compared, and what is wrong: files missing or
    modified, and RECORD rows that cannot be checked (a malformed hash, an unreadable
    line) — a damaged RECORD is a finding, never a crash."""
    files = checked = 0
    issues: list[RecordIssue] = []
    reader = csv.reader(io.StringIO(decode(record)))
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            issues.append(
                RecordIssue(
                    path=record_path,
                    problem="malformed",
                    expected=f"a CSV row at line {reader.line_num} ({exc})",
                )
            )
            break
        if not row or not row[0]:
            continue
        files += 1
        shown = printable(row[0])
        if len(row) < 2 or not row[1]:
            continue  # no hash: RECORD itself, and files written after install
        algorithm, _, expected = row[1].partition("=")
        if algorithm != "sha256":
            continue  # another algorithm: not checked
        expected = expected.rstrip("=")  # some tools pad; the hash is the same
        if not _SHA256.fullmatch(expected):
            issues.append(
                RecordIssue(path=shown, problem="malformed", expected=printable(row[1][:100]))
            )
            continue
        path = posixpath.normpath(posixpath.join(env, row[0]))
        if path.startswith(".."):
            continue  # climbs out of the image: not ours to judge
        node = view.node(path)
        if node is None:
            issues.append(RecordIssue(path=shown, problem="missing", expected=expected))
            continue
        actual = node.entry.sha256
        if actual is None:
            continue  # outside the hashed folders (e.g. bin/ scripts)
        checked += 1
        if actual != expected:
            issues.append(
                RecordIssue(path=shown, problem="modified", expected=expected, actual=actual)
            )
    return files, checked, issues


def read_dist(
    view: FilesystemView,
    env: str,
    name: str,
    *,
    check_record: bool,
) -> PythonDist | None:
    path = posixpath.join(env, name)
    node = view.node(path)
    if node is None:
        return None
    if name.endswith(".dist-info"):
        metadata_path = posixpath.join(path, "METADATA")
    elif node.entry.kind == "dir":
        metadata_path = posixpath.join(path, "PKG-INFO")
    else:
        metadata_path = path  # a single-file .egg-info
    metadata = view.read(metadata_path)
    metadata_node = view.node(metadata_path)
    if not metadata or metadata_node is None:
        return None
    headers = _headers(metadata)
    if "Name" not in headers or "Version" not in headers:
        return None
    installer = view.read(posixpath.join(path, "INSTALLER"))
    direct = view.read(posixpath.join(path, "direct_url.json"))
    wheel = view.read(posixpath.join(path, "WHEEL"))
    tags: tuple[str, ...] = ()
    build = None
    if wheel:
        lines = decode(wheel).splitlines()
        tags = tuple(
            sorted(
                printable(line.split(":", 1)[1].strip())
                for line in lines
                if line.startswith("Tag:")
            )
        )
        build = next(
            (
                printable(line.split(":", 1)[1].strip())
                for line in lines
                if line.startswith("Build:")
            ),
            None,
        )
    files = checked = 0
    issues: list[RecordIssue] = []
    record_path = posixpath.join(path, "RECORD")
    record = view.read(record_path)
    if record is not None and check_record:
        files, checked, issues = _record_issues(view, env, record, printable(f"{name}/RECORD"))
    elif record is not None:
        files = sum(1 for line in record.splitlines() if line.strip())
    return PythonDist(
        name=canonical(headers["Name"]),
        version=headers["Version"],
        metadata_path=printable(path),
        layer=metadata_node.layer,
        installer=_installer(installer),
        direct_url=_direct_url(direct),
        wheel_tags=tags,
        build=build,
        files=files,
        checked=checked,
        record_issues=tuple(issues),
    )


def _installer(data: bytes | None) -> str | None:
    """The tool named by ``INSTALLER`` (any bytes: decoded leniently)."""
    name = "" if data is None else printable(decode(data).strip())
    return name or None


def _direct_url(data: bytes | None) -> str | None:
    """The ``url`` of a PEP 610 ``direct_url.json``; None when it has none or is malformed."""
    if not data:
        return None
    try:
        value = load_json(data, "direct_url.json")
    except ValueError:
        return None
    url = value.get("url") if isinstance(value, dict) else None
    return printable(url) if isinstance(url, str) else None


def catalog_python(view: FilesystemView, *, check_record: bool = True) -> list[PythonEnv]:
    envs = []
    for env in find_envs(view):
        dists = []
        for name in view.listdir(env):
            if name.endswith((".dist-info", ".egg-info")):
                dist = read_dist(view, env, name, check_record=check_record)
                if dist is not None:
                    dists.append(dist)
        if not dists:
            continue
        match = _PYTHON.search(env)
        envs.append(
            PythonEnv(
                path="/" + printable(env),
                python=match.group(1) if match else None,
                kind=env_kind(view, env),
                dists=tuple(sorted(dists, key=lambda d: d.name)),
            )
        )
    return envs
