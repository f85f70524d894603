"""Installed Python distributions in every site-packages/dist-packages, with RECORD checks."""

from __future__ import annotations

import csv
import io
import json
import posixpath
import re
from email.parser import BytesHeaderParser

from reprolock.image.view import FilesystemView
from reprolock.inventory.model import PythonDist, PythonEnv, RecordIssue

PACKAGE_DIRS = ("site-packages", "dist-packages")
_PYTHON = re.compile(r"python(\d+\.\d+)")
_NORMALIZE = re.compile(r"[-_.]+")


def canonical(name: str) -> str:
    return _NORMALIZE.sub("-", name).lower()


def _headers(data: bytes) -> dict[str, str]:
    message = BytesHeaderParser().parsebytes(data)
    return {k: str(v) for k, v in message.items()}


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
    view: FilesystemView, env: str, record: bytes
) -> tuple[int, int, list[RecordIssue]]:
    files = checked = 0
    issues: list[RecordIssue] = []
    reader = csv.reader(io.StringIO(record.decode("utf-8", errors="replace")))
    for row in reader:
        if not row or not row[0]:
            continue
        files += 1
        if len(row) < 2 or not row[1].startswith("sha256="):
            continue
        expected = row[1].removeprefix("sha256=")
        path = posixpath.normpath(posixpath.join(env, row[0]))
        if path.startswith(".."):
            continue  # climbs out of the image: not ours to judge
        node = view.node(path)
        if node is None:
            issues.append(RecordIssue(path=row[0], problem="missing", expected=expected))
            continue
        actual = node.entry.sha256
        if actual is None:
            continue  # outside the hashed folders (e.g. bin/ scripts)
        checked += 1
        if actual != expected:
            issues.append(
                RecordIssue(path=row[0], problem="modified", expected=expected, actual=actual)
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
    direct_url = None
    if direct:
        try:
            direct_url = str(json.loads(direct).get("url"))
        except (ValueError, AttributeError):
            direct_url = None
    wheel = view.read(posixpath.join(path, "WHEEL"))
    tags: tuple[str, ...] = ()
    build = None
    if wheel:
        lines = wheel.decode(errors="replace").splitlines()
        tags = tuple(
            sorted(line.split(":", 1)[1].strip() for line in lines if line.startswith("Tag:"))
        )
        build = next(
            (line.split(":", 1)[1].strip() for line in lines if line.startswith("Build:")), None
        )
    files = checked = 0
    issues: list[RecordIssue] = []
    record = view.read(posixpath.join(path, "RECORD"))
    if record is not None and check_record:
        files, checked, issues = _record_issues(view, env, record)
    elif record is not None:
        files = sum(1 for line in record.splitlines() if line.strip())
    return PythonDist(
        name=canonical(headers["Name"]),
        version=headers["Version"],
        metadata_path=path,
        layer=metadata_node.layer,
        installer=installer.decode().strip() if installer else None,
        direct_url=direct_url,
        wheel_tags=tags,
        build=build,
        files=files,
        checked=checked,
        record_issues=tuple(issues),
    )


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
                path="/" + env,
                python=match.group(1) if match else None,
                kind=env_kind(view, env),
                dists=tuple(sorted(dists, key=lambda d: d.name)),
            )
        )
    return envs
