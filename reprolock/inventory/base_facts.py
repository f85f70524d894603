"""What a base image offers the environment built on it, read from its filesystem.

The lock relies on these facts: the C library (which wheel tags can install), every
CPython interpreter (its exact version, and whether ``python -m venv`` works and seeds
pip), CUDA already present, the users and groups (the image's user must not collide),
the OS.  Nothing is run: each fact comes from a file the image holds (dpkg's or apk's
database, ``patchlevel.h``, the interpreter's stdlib folders, ``/etc/passwd``) or from its
config (``PYTHON_VERSION``, ``CUDA_VERSION``, ``PATH``), and says where it came from.

A pure cataloger over a `FilesystemView`; values are checked against the lock's grammars
here, so a hostile image can only make a fact absent, never a value the lock refuses.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterable, Mapping

from reprolock.image.view import FilesystemView
from reprolock.inventory.cuda import catalog_cuda
from reprolock.inventory.dpkg import parse_status
from reprolock.inventory.model import DebPackage
from reprolock.inventory.os_release import parse_os_release
from reprolock.inventory.text import decode
from reprolock.lock.model import BaseFacts, BasePython
from reprolock.model import grammar

# docker's PATH for an image whose config sets none
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# where interpreters are looked for besides the PATH
_BIN_DIRS = ("usr/local/bin", "usr/bin", "bin")
_INTERPRETER = re.compile(r"python3\.([0-9]{1,3})", re.ASCII)
_PATCHLEVEL = re.compile(r'^#define\s+PY_VERSION\s+"([^"\n]{1,32})"', re.MULTILINE)
_FILES = frozenset(
    {
        "etc/os-release",
        "usr/lib/os-release",
        "var/lib/dpkg/status",
        "etc/passwd",
        "etc/group",
        "lib/apk/db/installed",
    }
)
_PATCHLEVEL_PATH = re.compile(r"(.+/)?include/python3\.[0-9]{1,3}[a-z]?/patchlevel\.h", re.ASCII)
_MAX_ACCOUNTS = 4096  # entries of /etc/passwd or /etc/group recorded; more is not a base


def want_content(path: str) -> bool:
    """The files the facts are read from (all small): kept in memory while scanning."""
    if path in _FILES or path.startswith("var/lib/dpkg/status.d/"):
        return True
    if path.startswith("usr/local/cuda") and path.endswith(("/version.json", "/version.txt")):
        return True
    return _PATCHLEVEL_PATH.fullmatch(path) is not None


def base_facts(view: FilesystemView, env: Mapping[str, str]) -> BaseFacts:
    """The facts of the image whose merged filesystem is ``view`` and config env ``env``."""
    debs = _debs(view)
    apks = _apks(view)
    os_info = None
    for path in ("etc/os-release", "usr/lib/os-release"):
        data = view.read(path)
        if data is not None:
            os_info = parse_os_release(decode(data), path="/" + path, layer=-1)
            if os_info is not None:
                break
    libc, libc_version = _libc(view, debs, apks)
    return BaseFacts(
        os_id=_valid(os_info.id if os_info else None, grammar.os_release_id),
        os_version=_valid(os_info.version_id if os_info else None, grammar.os_release_id),
        libc=libc,
        libc_version=libc_version,
        cuda=_cuda(view, env, debs),
        pythons=tuple(_pythons(view, env, debs, apks)),
        users=_accounts(view.read("etc/passwd"), _passwd_entry),
        groups=_accounts(view.read("etc/group"), _group_entry),
    )


def _valid(value: str | None, check: Callable[[str], str]) -> str | None:
    if value is None:
        return None
    try:
        return check(value)
    except ValueError:
        return None


def _debs(view: FilesystemView) -> list[DebPackage]:
    debs: list[DebPackage] = []
    status = view.read("var/lib/dpkg/status")
    if status is not None:
        debs.extend(parse_status(decode(status), path="/var/lib/dpkg/status", layer=-1))
    for name in view.listdir("var/lib/dpkg/status.d"):
        data = view.read(f"var/lib/dpkg/status.d/{name}")
        if data is not None and not name.endswith(".md5sums"):
            debs.extend(parse_status(decode(data), path=name, layer=-1, distroless=True))
    return debs


def _apks(view: FilesystemView) -> dict[str, str]:
    """Alpine's installed packages (``lib/apk/db/installed``): name → version."""
    out: dict[str, str] = {}
    for block in decode(view.read("lib/apk/db/installed") or b"").split("\n\n"):
        fields = dict(line.split(":", 1) for line in block.splitlines() if line[1:2] == ":")
        if fields.get("P") and fields.get("V"):
            out[fields["P"]] = fields["V"]
    return out


def _upstream(version: str) -> str:
    """The upstream part of a Debian (``2:2.36-9+deb12u4``) or apk (``1.2.5-r0``) version."""
    return version.split(":", 1)[-1].rsplit("-", 1)[0]


def _numeric(text: str, parts: int) -> str | None:
    """The leading ``parts`` numbers of ``text`` (``2.36`` of ``2.36-9``), or None."""
    found = re.match(r"([0-9]{1,9}(?:\.[0-9]{1,9}){" + str(parts - 1) + "})", text)
    return found.group(1) if found else None


def _libc(
    view: FilesystemView, debs: list[DebPackage], apks: Mapping[str, str]
) -> tuple[str | None, str | None]:
    """("glibc", "2.36") from libc6's dpkg record (or a ``libc-2.31.so`` file name);
    ("musl", "1.2.5") from the musl package; the kind alone when only the loader tells."""
    for deb in debs:
        if deb.name in ("libc6", "libc6.1") and (v := _numeric(_upstream(deb.version), 2)):
            return "glibc", v
        if deb.name == "musl" and (v := _numeric(_upstream(deb.version), 3)):
            return "musl", v
    if "musl" in apks and (v := _numeric(_upstream(apks["musl"]), 3)):
        return "musl", v
    for pattern in ("lib/ld-musl-*.so.1", "usr/lib/ld-musl-*.so.1"):
        if view.glob(pattern):
            return "musl", None
    for pattern in (
        "lib/libc-2.*.so",
        "lib/*-linux-gnu*/libc-2.*.so",
        "lib64/libc-2.*.so",
        "usr/lib/*-linux-gnu*/libc-2.*.so",
        "usr/lib64/libc-2.*.so",
    ):
        for path in view.glob(pattern):
            found = re.search(r"libc-([0-9]{1,3}\.[0-9]{1,3})\.so$", path)
            if found:
                return "glibc", found.group(1)
    for pattern in ("lib*/libc.so.6", "usr/lib*/libc.so.6", "usr/lib/*/libc.so.6"):
        if view.glob(pattern):
            return "glibc", None
    return None, None


def _cuda(view: FilesystemView, env: Mapping[str, str], debs: list[DebPackage]) -> str | None:
    """The CUDA toolkit the base already carries: its config's ``CUDA_VERSION``, a
    ``version.json``, the cudart package or library file."""
    components = catalog_cuda(view, env=dict(env), debs=debs, python_envs=[])
    order = {"env": 0, "version.json": 1, "version.txt": 2, "dpkg": 3}
    found = sorted(
        (order.get(c.source, 9), c.version)
        for c in components
        if c.name in ("cuda", "cuda-runtime")
    )
    for _, version in found:
        if _numeric(version, 2) is not None and (v := _valid(version, grammar.dotted_version)):
            return v
    for pattern in (
        "usr/local/cuda*/lib64/libcudart.so.*.*",
        "usr/lib/*-linux-gnu/libcudart.so.*.*",
    ):
        for path in view.glob(pattern):
            found_version = re.search(r"libcudart\.so\.([0-9.]+)$", path)
            if found_version and (v := _valid(found_version.group(1), grammar.dotted_version)):
                return v
    return None


def _search_dirs(env: Mapping[str, str]) -> list[str]:
    dirs: list[str] = []
    for entry in (env.get("PATH") or DEFAULT_PATH).split(":"):
        folder = entry.strip("/")
        if entry.startswith("/") and folder and folder not in dirs:
            dirs.append(folder)
    dirs.extend(d for d in _BIN_DIRS if d not in dirs)
    return dirs


def _pythons(
    view: FilesystemView,
    env: Mapping[str, str],
    debs: list[DebPackage],
    apks: Mapping[str, str],
) -> list[BasePython]:
    """Every ``python3.X`` on the PATH or in the standard bin folders, once per real file."""
    out: list[BasePython] = []
    seen: set[str] = set()
    installed = {d.name: d.version for d in debs}
    for folder in _search_dirs(env):
        for name in view.listdir(folder):
            match = _INTERPRETER.fullmatch(name)
            if match is None:
                continue
            written = f"{folder}/{name}"
            real = view.resolve(written)
            node = view.node(written)
            if (
                real is None
                or node is None
                or node.entry.kind not in ("file", "hardlink")
                or real in seen
            ):
                continue
            seen.add(real)
            path = _valid("/" + written, grammar.absolute_path)
            if path is None:
                continue
            feature = f"3.{match.group(1)}"
            prefix = posixpath.dirname(posixpath.dirname(real))
            version, found_by = _version(view, feature, prefix, real, env, installed, apks)
            stdlib = posixpath.join(prefix, "lib", f"python{feature}")
            ensurepip = view.exists(f"{stdlib}/ensurepip/__init__.py") and bool(
                view.glob(f"{stdlib}/ensurepip/_bundled/pip-*.whl")
                or view.glob("usr/share/python-wheels/pip-*.whl")
            )
            out.append(
                BasePython(
                    path=path,
                    version=version,
                    venv=view.exists(f"{stdlib}/venv/__init__.py"),
                    ensurepip=ensurepip,
                    found_by=found_by,
                )
            )
    return out


def _version(
    view: FilesystemView,
    feature: str,
    prefix: str,
    real: str,
    env: Mapping[str, str],
    debs: Mapping[str, str],
    apks: Mapping[str, str],
) -> tuple[str, str]:
    """The interpreter's exact version and where it was read; the feature release alone
    when nothing in the image tells more."""
    if real == f"usr/bin/python{feature}":
        for package in (f"python{feature}-minimal", f"python{feature}"):
            if package in debs and (v := debian_python_version(debs[package], feature)):
                return v, grammar.label_text(f"dpkg {package} {debs[package]}")
        if "python3" in apks and (v := debian_python_version(apks["python3"], feature)):
            return v, grammar.label_text(f"apk python3 {apks['python3']}")
    for include in (f"python{feature}", f"python{feature}m"):
        header = posixpath.join(prefix, "include", include, "patchlevel.h")
        found = _PATCHLEVEL.search(decode(view.read(header) or b""))
        if found and (v := _exact(found.group(1), feature)):
            return v, f"/{header}"
    declared = env.get("PYTHON_VERSION", "")
    if prefix == "usr/local" and (v := _exact(declared, feature)):
        return v, "PYTHON_VERSION"
    return feature, "its file name"


def _exact(text: str, feature: str) -> str | None:
    """``text`` when it is an exact release of ``feature`` (``3.11.2``, ``3.11.0rc1``)."""
    value = _valid(text, grammar.python_version)
    if value is None or value.count(".") != 2 or not value.startswith(feature + "."):
        return None
    return value


def debian_python_version(package_version: str, feature: str) -> str | None:
    """The CPython release of a distribution package version: ``3.11.2-6+deb12u6`` →
    ``3.11.2``, ``3.11.0~rc1-1~22.04`` → ``3.11.0rc1``; None if not of ``feature``."""
    found = re.match(
        r"([0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3})(?:~?((?:a|b|rc)[0-9]{1,3}))?",
        _upstream(package_version),
    )
    if found is None:
        return None
    return _exact(found.group(1) + (found.group(2) or ""), feature)


def _passwd_entry(fields: list[str]) -> tuple[str, str] | None:
    if len(fields) < 4:
        return None
    return fields[0], f"{fields[2]}:{fields[3]}"


def _group_entry(fields: list[str]) -> tuple[str, str] | None:
    if len(fields) < 3:
        return None
    return fields[0], fields[2]


def _accounts(
    data: bytes | None, entry: Callable[[list[str]], tuple[str, str] | None]
) -> tuple[tuple[str, str], ...]:
    """(name, ids) of /etc/passwd or /etc/group lines; malformed lines are skipped (a line
    with an odd name cannot collide with the image's user, whose name is checked)."""
    out: dict[str, str] = {}
    lines: Iterable[str] = decode(data or b"").splitlines()
    for line in lines:
        found = entry(line.split(":"))
        if found is None:
            continue
        name, ids = found
        valid_name = _valid(name, grammar.account_name)
        valid_ids = _valid(ids, grammar.uid_gid if ":" in ids else grammar.numeric_id)
        if valid_name is not None and valid_ids is not None and valid_name not in out:
            out[valid_name] = valid_ids
        if len(out) >= _MAX_ACCOUNTS:
            break
    return tuple(sorted(out.items()))
