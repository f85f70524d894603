"""The files of installed Debian packages against dpkg's own record of them, as ``debsums``
checks them: ``var/lib/dpkg/info/PKG.md5sums`` for a package's files, the ``Conffiles``
field of ``var/lib/dpkg/status`` for its configuration files.

Rules, each measured on real images (docs/inspect.md): a diverted file
(``var/lib/dpkg/diversions``) is checked where dpkg moved it; a file dpkg was told not to
install (``path-exclude`` in ``etc/dpkg/dpkg.cfg.d/*``, as Debian's slim images have) and
documentation removed to slim an image (``/usr/share/doc``, ``man``, ``info``, ``locale``,
``groff``, ``lintian``) are not missing; a conffile removed or marked obsolete is the
administrator's choice.  Files are compared by the md5 the scan took (`want_md5`);
a file outside the hashed folders is counted as not checked.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import posixpath
import re
from collections.abc import Iterator

from reprolock.image.view import FilesystemView
from reprolock.inventory.model import DpkgIntegrity, DpkgIssue
from reprolock.inventory.text import decode, printable
from reprolock.model.deb822 import stanzas

INFO = "var/lib/dpkg/info"
DIVERSIONS = "var/lib/dpkg/diversions"
CONFIG = "etc/dpkg/dpkg.cfg.d"
DOCS = (
    "usr/share/doc/",
    "usr/share/man/",
    "usr/share/info/",
    "usr/share/locale/",
    "usr/share/groff/",
    "usr/share/lintian/",
    "usr/share/linda/",
)
# Where dpkg installs files; the rest of an image (venvs under /opt, /home, /root,
# /usr/local but CUDA's) holds none, and is not hashed for this check.
_ROOTS = ("usr/", "etc/", "bin/", "sbin/", "lib", "var/lib/")
_NOT_DPKG = ("usr/local/", "var/lib/dpkg/", "var/lib/apt/")
_MD5 = frozenset("0123456789abcdef")
_OPTION = re.compile(r"(?:--)?(path-exclude|path-include)(?:\s*=\s*|\s+)(\S.*)")


def want_md5(path: str) -> bool:
    """Files hashed with md5 while scanning: where Debian packages install theirs."""
    if path.startswith("usr/local/cuda"):
        return True  # NVIDIA's CUDA packages install under /usr/local/cuda-X.Y
    if not path.startswith(_ROOTS) or path.startswith(_NOT_DPKG):
        return False
    return "-packages/" not in path or (path.startswith("usr/lib/") and "/dist-packages/" in path)


def want_content(path: str) -> bool:
    """dpkg's records this check reads (kept in memory while scanning)."""
    if path == DIVERSIONS or path.startswith(CONFIG + "/"):
        return True
    return path.startswith(INFO + "/") and path.endswith((".md5sums", ".list"))


def check_dpkg(view: FilesystemView, status: str | None) -> DpkgIntegrity | None:
    """Every package's files and conffiles against their recorded md5; None when the
    image has no dpkg database."""
    if status is None:
        return None
    diverted = _diversions(view)
    leaves = {posixpath.basename(p) for p in diverted}  # only these paths can be diverted
    excluded = _excludes(view)
    issues: list[DpkgIssue] = []
    files = checked = moved = 0
    for package, listed in _md5sums(view):
        for md5, path in listed:
            files += 1
            real = path
            leaf = posixpath.basename(path)
            owner = diverted.get(_real(view, path) or path) if leaf in leaves else None
            if owner is not None and owner[1] != package:
                real, moved = owner[0], moved + 1
            node = view.node(real)
            if node is None:
                if not _expected_missing(real, excluded):
                    layer = view.deleted_by(real)
                    issues.append(_issue(package, real, "missing", md5, None, layer))
                continue
            if node.entry.md5 is None:
                continue
            checked += 1
            if node.entry.md5 != md5:
                issues.append(_issue(package, real, "modified", md5, node.entry.md5, node.layer))
    for package, path, md5 in _conffiles(status):
        files += 1
        node = view.node(path)
        if node is None or node.entry.md5 is None:
            continue  # a removed conffile is the administrator's choice
        checked += 1
        if node.entry.md5 != md5:
            issue = _issue(package, path, "modified", md5, node.entry.md5, node.layer)
            issues.append(dataclasses.replace(issue, conffile=True))
    return DpkgIntegrity(files=files, checked=checked, diverted=moved, issues=tuple(issues))


def _issue(
    package: str, path: str, problem: str, expected: str, actual: str | None, layer: int | None
) -> DpkgIssue:
    return DpkgIssue(
        package=printable(package),
        path="/" + printable(path),
        problem=problem,
        expected=expected,
        actual=actual,
        layer=layer,
    )


def _md5sums(view: FilesystemView) -> Iterator[tuple[str, list[tuple[str, str]]]]:
    """(package, [(md5, path)]) from each ``PKG[:ARCH].md5sums``, in name order; lines
    that are not an md5 and a path are skipped."""
    for name in view.listdir(INFO):
        if not name.endswith(".md5sums"):
            continue
        data = view.read(posixpath.join(INFO, name))
        rows = []
        for line in decode(data or b"").splitlines():
            md5, _, path = line.partition(" ")
            path = path.strip().lstrip("/")
            if len(md5) == 32 and set(md5) <= _MD5 and path and ".." not in path.split("/"):
                rows.append((md5, path))
        yield name.removesuffix(".md5sums").split(":")[0], rows


def _conffiles(status: str) -> Iterator[tuple[str, str, str]]:
    """(package, path, md5) of each installed package's live conffiles."""
    for fields in stanzas(status):
        if fields.get("Status", "").split()[-1:] != ["installed"]:
            continue
        for line in fields.get("Conffiles", "").splitlines():
            parts = line.split()
            if len(parts) < 2 or parts[2:3] in (["obsolete"], ["remove-on-upgrade"]):
                continue
            path, md5 = parts[0].lstrip("/"), parts[1]
            if len(md5) == 32 and set(md5) <= _MD5 and path and ".." not in path.split("/"):
                yield fields.get("Package", ""), path, md5


def _diversions(view: FilesystemView) -> dict[str, tuple[str, str]]:
    """Diverted real path → (where its owner's file is now, the package that diverted it;
    ":" for a local diversion).  Real paths: in a merged-/usr image a diversion of
    /usr/bin/zcat diverts the file gzip lists as /bin/zcat."""
    lines = decode(view.read(DIVERSIONS) or b"").splitlines()
    out: dict[str, tuple[str, str]] = {}
    for i in range(0, len(lines) - 2, 3):
        source, target, package = (x.strip() for x in lines[i : i + 3])
        if source.startswith("/") and target.startswith("/"):
            real = _real(view, source.lstrip("/"))
            if real is not None:
                out[real] = (target.lstrip("/"), package)
    return out


def _real(view: FilesystemView, path: str) -> str | None:
    """``path`` with the links in its folders followed (not a link at its end)."""
    folder, leaf = posixpath.split(path)
    real = view.resolve(folder) if folder else ""
    return None if real is None else posixpath.join(real, leaf) if real else leaf


def _excludes(view: FilesystemView) -> list[tuple[bool, str]]:
    """dpkg's ``path-exclude``/``path-include`` options, in the order dpkg reads them:
    (excluded, pattern)."""
    rules: list[tuple[bool, str]] = []
    for name in view.listdir(CONFIG):
        for line in decode(view.read(posixpath.join(CONFIG, name)) or b"").splitlines():
            match = _OPTION.fullmatch(line.strip())
            if match is not None:
                rules.append((match.group(1) == "path-exclude", match.group(2).strip()))
    return rules


def _expected_missing(path: str, rules: list[tuple[bool, str]]) -> bool:
    """Documentation slimmed away, or a path dpkg was configured not to install (the last
    matching rule decides, as in dpkg)."""
    if path.startswith(DOCS):
        return True
    excluded = False
    for exclude, pattern in rules:
        if fnmatch.fnmatchcase("/" + path, pattern):
            excluded = exclude
    return excluded
