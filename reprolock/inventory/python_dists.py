"""Installed Python distributions in every site-packages/dist-packages, with RECORD checks."""

from __future__ import annotations

import csv
import io
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.parser import HeaderParser

from reprolock.image.view import FilesystemView
from reprolock.inventory import pyc
from reprolock.inventory.model import PythonDist, PythonEnv, RecordIssue
from reprolock.inventory.owners import Owner
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
    """venv (a pyvenv.cfg above it), user (~/.local), debian (Debian's packages in
    /usr/lib/python3*/dist-packages) or system (the interpreter's own site: pip's
    /usr/local/lib/python3.X/dist-packages on Debian, site-packages elsewhere)."""
    parts = env_path.split("/")
    if "lib" in parts:
        root = "/".join(parts[: parts.index("lib")])
        if view.exists(posixpath.join(root, "pyvenv.cfg")):
            return "venv"
    if "/.local/" in f"/{env_path}/":
        return "user"
    if env_path.startswith("usr/lib/python") and env_path.endswith("dist-packages"):
        return "debian"
    return "system"


def find_envs(view: FilesystemView) -> list[str]:
    return sorted(
        node.entry.path
        for node in view.walk()
        if node.entry.kind == "dir" and posixpath.basename(node.entry.path) in PACKAGE_DIRS
    )


@dataclass(slots=True)
class _Checked:
    """What a RECORD check found: files listed, files compared, pycs an installer rewrote
    (they differ from RECORD but match their source), and the issues."""

    files: int = 0
    checked: int = 0
    rewritten: int = 0
    issues: list[RecordIssue] = field(default_factory=list)
    listed: set[str] = field(default_factory=set)  # the paths RECORD lists, in the image


def _record_issues(view: FilesystemView, env: str, record: bytes, record_path: str) -> _Checked:
    """Files listed, files hashed and compared, and what is wrong: files missing or
    modified, pycs that match no source, and RECORD rows that cannot be checked (a
    malformed hash, an unreadable line) — a damaged RECORD is a finding, never a crash."""
    found = _Checked()
    reader = csv.reader(io.StringIO(decode(record)))
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            found.issues.append(
                RecordIssue(
                    path=record_path,
                    problem="malformed",
                    expected=f"a CSV row at line {reader.line_num} ({exc})",
                )
            )
            break
        if row and row[0]:
            _check_row(view, env, row, found)
    _unlisted_pycs(view, env, found)
    return found


def _check_row(view: FilesystemView, env: str, row: list[str], found: _Checked) -> None:
    found.files += 1
    shown = printable(row[0])
    path = posixpath.normpath(posixpath.join(env, row[0]))
    if not path.startswith(".."):
        found.listed.add(path)
    if len(row) < 2 or not row[1]:
        return  # no hash: RECORD itself, and files written after install
    algorithm, _, expected = row[1].partition("=")
    if algorithm != "sha256":
        return  # another algorithm: not checked
    expected = expected.rstrip("=")  # some tools pad; the hash is the same
    if not _SHA256.fullmatch(expected):
        found.issues.append(
            RecordIssue(path=shown, problem="malformed", expected=printable(row[1][:100]))
        )
        return
    if path.startswith(".."):
        return  # climbs out of the image: not ours to judge
    node = view.node(path)
    if node is None:
        if not path.endswith(".pyc"):  # a deleted pyc is a cache gone, not drift
            found.issues.append(
                RecordIssue(
                    path=shown, problem="missing", expected=expected, layer=view.deleted_by(path)
                )
            )
        return
    actual = node.entry.sha256
    if actual is None:
        return  # outside the hashed folders (e.g. bin/ scripts)
    found.checked += 1
    if actual == expected:
        return
    if path.endswith(".pyc"):
        verdict = pyc.check(view, path, node)
        if verdict.verdict == "matches":
            found.rewritten += 1
            return
        if verdict.verdict != "unknown":
            found.issues.append(
                RecordIssue(
                    path=shown,
                    problem=f"pyc-{verdict.verdict}",
                    expected=expected,
                    actual=actual,
                    layer=node.layer,
                    used=verdict.used,
                )
            )
            return
    found.issues.append(
        RecordIssue(
            path=shown, problem="modified", expected=expected, actual=actual, layer=node.layer
        )
    )


def _unlisted_pycs(view: FilesystemView, env: str, found: _Checked) -> None:
    """Pycs RECORD does not list in the folders of the sources it lists (written after
    install, by the interpreter or by anyone): compiled from a listed source, orphans in
    ``__pycache__``, and sourceless ``m.pyc`` files; those matching no source are issues.
    The package folder itself is left out for orphans (other packages share it)."""
    candidates: set[str] = set()
    folders = {posixpath.dirname(p) for p in found.listed if p.endswith(".py")}
    for folder in sorted(folders):
        cache = posixpath.join(folder, "__pycache__")
        for name in view.listdir(cache):
            path = posixpath.join(cache, name)
            source = pyc.source_of(path)
            if source is None or not name.endswith(".pyc"):
                continue
            if source in found.listed or (folder != env and view.node(source) is None):
                candidates.add(path)
        if folder != env:
            candidates.update(
                posixpath.join(folder, name)
                for name in view.listdir(folder)
                if name.endswith(".pyc")
            )
    for path in sorted(candidates - found.listed):
        node = view.node(path, follow=False)
        if node is None or node.entry.kind != "file":
            continue
        verdict = pyc.check(view, path, node)
        if verdict.verdict in ("stale", "orphan"):
            found.issues.append(
                RecordIssue(
                    path=printable(posixpath.relpath(path, env)),
                    problem=f"pyc-{verdict.verdict}",
                    expected="its source" if verdict.verdict == "orphan" else "a pyc of its source",
                    actual=node.entry.sha256,
                    layer=node.layer,
                    listed=False,
                    used=verdict.used,
                )
            )


def read_dist(
    view: FilesystemView,
    env: str,
    name: str,
    *,
    check_record: bool,
    packaged: Mapping[str, Owner] | None = None,
) -> PythonDist | None:
    """One distribution; its RECORD is checked unless ``packaged`` (real path → Debian
    package, `reprolock.inventory.owners.dpkg_owned`) says a Debian package installed it:
    dpkg's md5sums are its record then (Debian strips extension modules after writing
    RECORD: python3-scipy's differ from theirs)."""
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
    found = _Checked()
    record_path = posixpath.join(path, "RECORD")
    record = view.read(record_path)
    deb = (packaged or {}).get(metadata_node.entry.path)
    if record is not None and check_record and deb is None:
        found = _record_issues(view, env, record, printable(f"{name}/RECORD"))
    elif record is not None:
        found.files = sum(1 for line in record.splitlines() if line.strip())
    return PythonDist(
        name=canonical(headers["Name"]),
        version=headers["Version"],
        metadata_path=printable(path),
        layer=metadata_node.layer,
        installer=_installer(installer),
        direct_url=_direct_url(direct),
        wheel_tags=tags,
        build=build,
        files=found.files,
        checked=found.checked,
        bytecode_rewritten=found.rewritten,
        deb_package=None if deb is None else deb.name,
        record_issues=tuple(found.issues),
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


def catalog_python(
    view: FilesystemView,
    *,
    check_record: bool = True,
    packaged: Mapping[str, Owner] | None = None,
) -> list[PythonEnv]:
    envs = []
    for env in find_envs(view):
        dists = []
        for name in view.listdir(env):
            if name.endswith((".dist-info", ".egg-info")):
                dist = read_dist(view, env, name, check_record=check_record, packaged=packaged)
                if dist is not None:
                    dists.append(dist)
        if not dists:
            continue
        match = _PYTHON.search(env)
        kind = env_kind(view, env)
        cfg = venv_config(view, env) if kind == "venv" else {}
        envs.append(
            PythonEnv(
                path="/" + printable(env),
                python=match.group(1) if match else None,
                kind=kind,
                dists=tuple(sorted(dists, key=lambda d: d.name)),
                venv_version=_venv_version(cfg),
                venv_home=cfg.get("home"),
            )
        )
    return envs


def _venv_version(cfg: Mapping[str, str]) -> str | None:
    """``version`` (venv), else ``version_info`` (virtualenv: ``3.11.2.final.0``; uv:
    ``3.11.2``) as X.Y.Z."""
    text = cfg.get("version") or cfg.get("version_info")
    if not text:
        return None
    match = re.match(r"\d+\.\d+\.\d+", text)
    return match.group(0) if match else text


def venv_config(view: FilesystemView, env_path: str) -> dict[str, str]:
    """The ``key = value`` lines of the pyvenv.cfg above a venv's site-packages (keys
    lower-cased, values made printable; the first of each key), as `site` reads them."""
    parts = env_path.split("/")
    if "lib" not in parts:
        return {}
    data = view.read(posixpath.join("/".join(parts[: parts.index("lib")]), "pyvenv.cfg"))
    out: dict[str, str] = {}
    for line in decode(data or b"").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out.setdefault(key.strip().lower(), printable(value.strip()))
    return out
