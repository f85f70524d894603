"""The apt layer: the locked ``.deb`` files unpacked as dpkg would, and dpkg's database.

Like distroless images, the packages are unpacked, not installed: each ``data.tar``'s
files go to their real paths (through the base's links, as dpkg writes ``/lib/…``
through a merged ``/usr``; through dpkg's diversions; leaving out what the base's
``path-exclude`` options exclude), owned by the user and group *names* the archive gives,
mapped through the base's ``/etc/passwd`` and ``/etc/group`` as dpkg maps them, with the
archive's modes and mtimes.  dpkg's database is written so that ``dpkg -l`` and
reprolock's inventory see the packages: a stanza per package in ``var/lib/dpkg/status``
(the base's stanzas kept, the file sorted by package as dpkg writes it; ``Conffiles``
with each conffile's md5), and ``info/<package>.list``, ``.md5sums``, ``.conffiles``,
the maintainer scripts and the other control files.  A package that replaces one of the
base's (an upgrade) deletes the files of the old version the new one no longer has, and
its old control files.

Which maintainer scripts and triggers are reproduced, and which refuse the package (exit
3), is the rule of `reprolock.build.scripts`.
"""

from __future__ import annotations

import fnmatch
import hashlib
import posixpath
import re
import tarfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from reprolock import limits
from reprolock.build.deb import SCRIPTS, Control, DebFile, entries
from reprolock.build.scripts import (
    HARMLESS_TRIGGERS,
    judge,
    parse_file_interests,
    parse_triggers,
)
from reprolock.build.tree import Tree, clean
from reprolock.errors import Problem, SourceError, Unsatisfiable
from reprolock.image.view import FilesystemView
from reprolock.lock import AptPackage
from reprolock.model import Platform

STATUS = "var/lib/dpkg/status"
INFO = "var/lib/dpkg/info"
_DIVERSIONS = "var/lib/dpkg/diversions"
_FILE_TRIGGERS = "var/lib/dpkg/triggers/File"
_DPKG_CONFIG = "etc/dpkg/dpkg.cfg.d"
# dpkg's order of the fields it knows in a status stanza; other fields follow as written
_FIELD_ORDER = (
    "Package",
    "Essential",
    "Protected",
    "Status",
    "Priority",
    "Section",
    "Installed-Size",
    "Origin",
    "Maintainer",
    "Bugs",
    "Architecture",
    "Multi-Arch",
    "Source",
    "Version",
    "Config-Version",
    "Replaces",
    "Provides",
    "Depends",
    "Pre-Depends",
    "Recommends",
    "Suggests",
    "Breaks",
    "Conflicts",
    "Enhances",
    "Conffiles",
    "Description",
)
_SHARED_LIBRARY = re.compile(r"\.so(\.[0-9][0-9.]*)?$")
_OPTION = re.compile(r"(?:--)?(path-exclude|path-include)(?:\s*=\s*|\s+)(\S.*)")
DOCKERFILE_HINT = (
    "Build this target with `reprolock dockerfile` and `docker build`, which install the "
    "packages with apt-get and run their maintainer scripts, or drop the package from "
    "[apt] packages."
)


def wanted(path: str) -> bool:
    """The base's files the apt and user layers read (kept while scanning its layers)."""
    if path in (STATUS, _DIVERSIONS, _FILE_TRIGGERS, "etc/passwd", "etc/group"):
        return True
    if path.startswith(_DPKG_CONFIG + "/"):
        return True
    return path.startswith(INFO + "/") and path.endswith(
        (".list", ".triggers", ".prerm", ".postrm", ".conffiles")
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Unpacked:
    """What the layer holds of one package."""

    name: str
    version: str
    architecture: str
    files: int
    upgraded_from: str | None = None


@dataclass(slots=True, kw_only=True)
class AptLayer:
    packages: list[Unpacked] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what was not reproduced, and why


@dataclass(slots=True)
class _Base:
    """The base's dpkg records, read once."""

    view: FilesystemView
    stanzas: dict[tuple[str, str], str]  # (package, architecture) → its paragraph
    order: list[tuple[str, str]]
    users: dict[str, int]
    groups: dict[str, int]
    diversions: dict[str, tuple[str, str]]  # path → (diverted to, by package)
    interests: dict[str, tuple[str, ...]]  # trigger name or path → interested packages
    filters: list[tuple[bool, str]]  # (include?, glob) in dpkg's order


def _text(view: FilesystemView, path: str) -> str:
    data = view.read(path)
    return "" if data is None else data.decode("utf-8", errors="replace")


def _accounts(text: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) >= 3 and fields[2].isdigit() and fields[0] not in out:
            out[fields[0]] = int(fields[2])
    return out


def paragraphs(text: str) -> list[str]:
    """The stanzas of a dpkg status file, each as written (no trailing newline)."""
    out: list[str] = []
    lines: list[str] = []
    for line in text.splitlines():
        if line.strip():
            lines.append(line)
        elif lines:
            out.append("\n".join(lines))
            lines = []
    if lines:
        out.append("\n".join(lines))
    return out


def _field(paragraph: str, name: str) -> str:
    prefix = name.lower() + ":"
    for line in paragraph.splitlines():
        if line.lower().startswith(prefix):
            return line[len(prefix) :].strip()
    return ""


def _read_base(view: FilesystemView) -> _Base:
    stanzas: dict[tuple[str, str], str] = {}
    order: list[tuple[str, str]] = []
    for paragraph in paragraphs(_text(view, STATUS)):
        key = (_field(paragraph, "Package"), _field(paragraph, "Architecture"))
        if key[0] and key not in stanzas:
            order.append(key)
        stanzas[key] = paragraph
    diversions: dict[str, tuple[str, str]] = {}
    lines = _text(view, _DIVERSIONS).splitlines()
    for i in range(0, len(lines) - 2, 3):
        source, target, package = lines[i], lines[i + 1], lines[i + 2]
        if source.startswith("/") and target.startswith("/"):
            diversions[source.strip("/")] = (target.strip("/"), package.strip())
    interests: dict[str, set[str]] = {
        path: set(names)
        for path, names in parse_file_interests(_text(view, _FILE_TRIGGERS)).items()
    }
    for name in view.listdir(INFO):
        if name.endswith(".triggers"):
            package = name.removesuffix(".triggers").split(":", 1)[0]
            for interest in parse_triggers(_text(view, f"{INFO}/{name}")).interests:
                interests.setdefault(interest.rstrip("/") or "/", set()).add(package)
    filters: list[tuple[bool, str]] = []
    for name in view.listdir(_DPKG_CONFIG):
        for line in _text(view, f"{_DPKG_CONFIG}/{name}").splitlines():
            match = _OPTION.fullmatch(line.strip())
            if match:
                filters.append((match.group(1) == "path-include", match.group(2).strip()))
    return _Base(
        view=view,
        stanzas=stanzas,
        order=order,
        users=_accounts(_text(view, "etc/passwd")),
        groups=_accounts(_text(view, "etc/group")),
        diversions=diversions,
        interests={k: tuple(sorted(v)) for k, v in interests.items()},
        filters=filters,
    )


def _excluded(base: _Base, path: str) -> bool:
    """Whether dpkg's ``path-exclude``/``path-include`` options leave ``/path`` out."""
    result = False
    for include, pattern in base.filters:
        if fnmatch.fnmatchcase("/" + path, pattern):
            result = not include
    return result


@dataclass(slots=True, kw_only=True)
class _Package:
    locked: AptPackage
    deb: DebFile
    control: Control
    key: str  # the name of its files in dpkg's info folder: "name" or "name:arch"
    old: tuple[str, str] | None  # the base's stanza it replaces
    activates: tuple[str, ...]
    ldconfig: bool


def _info_key(control: Control, locked: AptPackage) -> str:
    if control.get("Multi-Arch").lower() == "same":
        return f"{locked.name}:{locked.architecture}"
    return locked.name


def _check_identity(control: Control, locked: AptPackage, what: str) -> None:
    found = (control.get("Package"), control.get("Version"), control.get("Architecture"))
    wanted = (locked.name, locked.version, locked.architecture)
    if found != wanted:
        raise SourceError(
            f"{what}: its control file says {' '.join(found)}, the lock {' '.join(wanted)}.",
            hint="The lock names a .deb that is not the package it pins; run `reprolock lock`.",
        )


def _base_key(base: _Base, key: tuple[str, str]) -> str:
    """The name of a base package's files in dpkg's info folder."""
    same = _field(base.stanzas[key], "Multi-Arch").lower() == "same"
    return f"{key[0]}:{key[1]}" if same else key[0]


def _judge(package: _Package, base: _Base, problems: list[Problem]) -> None:
    """Every script dpkg would run to install ``package``, against the rule."""
    name = package.locked.name
    scripts = [(s, package.control.files.get(s, b"")) for s in ("preinst", "postinst", "config")]
    if package.old is not None:
        old_key = _base_key(base, package.old)
        for script in ("prerm", "postrm"):
            data = base.view.read(f"{INFO}/{old_key}.{script}")
            scripts.append((f"{script} of the base's version", data or b""))
    for script, data in scripts:
        if not data:
            continue
        verdict = judge(data.decode("utf-8", errors="replace"))
        package.ldconfig = package.ldconfig or verdict.ldconfig
        if not verdict.trivial:
            problems.append(
                Problem(
                    message=f"its {script} runs `{verdict.line}` (line {verdict.number}), "
                    "which an unpacked layer does not reproduce",
                    key=f"apt {name} {package.locked.version}",
                )
            )
    triggers = parse_triggers(package.control.files.get("triggers", b"").decode(errors="replace"))
    if triggers.interests:
        problems.append(
            Problem(
                message="it declares trigger interests ("
                + ", ".join(triggers.interests[:3])
                + "): its postinst runs when other packages change",
                key=f"apt {name} {package.locked.version}",
            )
        )
    package.activates = triggers.activates


def _activated(
    base: _Base, trigger: str, package: _Package, problems: list[Problem], notes: list[str]
) -> None:
    if trigger == "ldconfig":
        package.ldconfig = True
        return
    interested = [p for p in base.interests.get(trigger.rstrip("/") or "/", ()) if p]
    if not interested:
        return
    if trigger in HARMLESS_TRIGGERS:
        notes.append(
            f"{package.locked.name}: the trigger {trigger} of {', '.join(interested)} was not "
            "run (it only refreshes an index)"
        )
        return
    problems.append(
        Problem(
            message=f"it activates the trigger {trigger}, whose handler "
            f"({', '.join(interested)}) runs a script",
            key=f"apt {package.locked.name} {package.locked.version}",
        )
    )


def _library_folders(tree: Tree, platform: Platform) -> set[str]:
    """Where the dynamic loader looks without its cache (resolved in this image)."""
    folders = set()
    for folder in ("lib", "usr/lib"):
        for path in (folder, f"{folder}/{platform.multiarch}"):
            folders.add(tree.resolve(path))
    return folders


def prejudge(packages: Sequence[tuple[AptPackage, DebFile]]) -> None:
    """The rule applied to what the ``.deb`` files alone tell (their own scripts and
    trigger interests), before any base is pulled: `Unsatisfiable` naming every package
    refused.  `apt_layer` judges again with the base (an upgrade's old scripts, triggers)."""
    empty = _Base(
        view=FilesystemView(),
        stanzas={},
        order=[],
        users={},
        groups={},
        diversions={},
        interests={},
        filters=[],
    )
    problems: list[Problem] = []
    for locked, deb in sorted(packages, key=lambda p: (p[0].name, p[0].architecture)):
        _judge(_package(locked, deb, None), empty, problems)
    _refuse(problems)


def _package(locked: AptPackage, deb: DebFile, old: tuple[str, str] | None) -> _Package:
    """A locked package and its .deb, checked to be the same package, before judging; ``old``
    is the base's record it upgrades, if any."""
    control = deb.control()
    _check_identity(control, locked, deb.what)
    return _Package(
        locked=locked,
        deb=deb,
        control=control,
        key=_info_key(control, locked),
        old=old,
        activates=(),
        ldconfig=False,
    )


def apt_layer(
    tree: Tree,
    packages: Sequence[tuple[AptPackage, DebFile]],
    base_view: FilesystemView,
    platform: Platform,
) -> AptLayer:
    """Unpack ``packages`` into ``tree`` (over the base read into ``base_view``) with their
    dpkg records; `Unsatisfiable` (exit 3) naming every package whose maintainer scripts
    or triggers the rule does not reproduce, before anything is unpacked where it can."""
    base = _read_base(base_view)
    problems: list[Problem] = []
    notes: list[str] = []
    prepared: list[_Package] = []
    for locked, deb in sorted(packages, key=lambda p: (p[0].name, p[0].architecture)):
        old = next(
            (
                key
                for key in ((locked.name, locked.architecture), (locked.name, "all"))
                if key in base.stanzas
            ),
            None,
        )
        if old is None and locked.architecture == "all":
            old = next((k for k in base.stanzas if k[0] == locked.name), None)
        package = _package(locked, deb, old)
        _judge(package, base, problems)
        prepared.append(package)
    _refuse(problems)
    result = AptLayer(notes=notes)
    stanzas = dict(base.stanzas)
    libraries = _library_folders(tree, platform)
    for package in prepared:
        listed, md5s, outside = _unpack(tree, package, base, libraries)
        for trigger in package.activates:
            _activated(base, trigger, package, problems, notes)
        for path in listed:
            for interest in _interests_of(base, path):
                _activated(base, interest, package, problems, notes)
        if package.ldconfig and outside:
            problems.append(
                Problem(
                    message="it needs ldconfig's cache for "
                    + ", ".join(sorted(outside)[:3])
                    + (" …" if len(outside) > 3 else "")
                    + ", outside the folders the loader searches without it",
                    key=f"apt {package.locked.name} {package.locked.version}",
                )
            )
        _records(tree, package, base, listed, md5s)
        if package.old is not None:
            stanzas.pop(package.old, None)
        stanzas[(package.locked.name, package.locked.architecture)] = _stanza(package.control, md5s)
        result.packages.append(
            Unpacked(
                name=package.locked.name,
                version=package.locked.version,
                architecture=package.locked.architecture,
                files=len(listed),
                upgraded_from=None
                if package.old is None
                else _field(base.stanzas[package.old], "Version"),
            )
        )
    _refuse(problems)
    text = "".join(stanzas[k] + "\n\n" for k in sorted(stanzas))
    found = tree.lookup(STATUS)
    tree.data(STATUS, text.encode("utf-8"), mode=(found.mode & 0o777) if found else 0o644)
    return result


def _refuse(problems: list[Problem]) -> None:
    if not problems:
        return
    names = sorted({p.key or "" for p in problems})
    raise Unsatisfiable(
        f"reprolock build cannot reproduce the installation of {len(names)} apt "
        f"package{'s' if len(names) != 1 else ''}: "
        + ", ".join(n.removeprefix("apt ") for n in names)
        + ".",
        problems=problems,
        hint=DOCKERFILE_HINT,
    )


def _interests_of(base: _Base, path: str) -> list[str]:
    """The file triggers an installed ``/path`` activates."""
    out = []
    current = "/" + path
    while True:
        if current in base.interests:
            out.append(current)
        if current == "/":
            return out
        current = posixpath.dirname(current)


def _unpack(
    tree: Tree,
    package: _Package,
    base: _Base,
    libraries: set[str],
) -> tuple[list[str], dict[str, str], list[str]]:
    """The data archive into ``tree``; (the paths dpkg lists, each regular file's md5,
    shared libraries outside the loader's folders and ld.so.conf.d files)."""
    what = package.deb.what
    listed: list[str] = []
    md5s: dict[str, str] = {}  # every regular file's md5, in the archive's order
    outside: list[str] = []
    tar, _source = package.deb.data()
    cap = limits.current().member_bytes
    for member in entries(tar, what):
        path = clean(member.name, what)
        if "\ufffd" in member.name:
            raise SourceError(f"{what}: a path in its data archive is not UTF-8.")
        if not path:
            continue
        listed.append(path)
        if not member.isdir() and _excluded(base, path):
            continue
        target = path
        diverted = base.diversions.get(path)
        if diverted is not None and diverted[1] != package.locked.name:
            target = diverted[0]
        uid = base.users.get(member.uname, member.uid) if member.uname else member.uid
        gid = base.groups.get(member.gname, member.gid) if member.gname else member.gid
        mtime = max(int(member.mtime), 0)
        if member.isdir():
            tree.dir(target, mode=member.mode, uid=uid, gid=gid, mtime=mtime)
        elif member.isreg():
            handle = tar.extractfile(member)
            assert handle is not None
            hasher = hashlib.md5(usedforsecurity=False)
            try:
                content = tree.store.copy(
                    handle,
                    cap=min(member.size, cap),
                    what=f"{what}: /{path}",
                    limit_name="member_bytes",
                    on_data=hasher.update,
                )
            except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
                raise SourceError(f"{what}: /{path} is truncated or corrupt ({exc}).") from None
            if content.size != member.size:
                raise SourceError(f"{what}: /{path} is truncated.")
            md5s[path] = hasher.hexdigest()
            tree.file(target, content, mode=member.mode, uid=uid, gid=gid, mtime=mtime)
        elif member.issym():
            tree.symlink(target, member.linkname, uid=uid, gid=gid, mtime=mtime)
        elif member.islnk():
            source = clean(member.linkname, what)
            tree.hardlink(target, tree.real(source))
            if source in md5s:
                md5s[path] = md5s[source]
        else:
            raise Unsatisfiable(
                f"{what}: /{path} is a device or a FIFO, which reprolock build does not "
                "write into a layer.",
                hint=DOCKERFILE_HINT,
            )
        if member.isdir():
            continue
        if path.startswith("etc/ld.so.conf.d/"):
            outside.append("/" + path)
        elif _SHARED_LIBRARY.search(path):
            folder = tree.resolve(posixpath.dirname(tree.real(target)))
            if folder not in libraries:
                outside.append("/" + path)
    return listed, md5s, outside


def _records(
    tree: Tree, package: _Package, base: _Base, listed: list[str], md5s: dict[str, str]
) -> None:
    """dpkg's info files for ``package``; an upgrade's obsolete files and records go."""
    key = package.key
    new = {tree.real(p) for p in listed}
    if package.old is not None:
        old_key = _base_key(base, package.old)
        old_list = base.view.read(f"{INFO}/{old_key}.list")
        for line in (old_list or b"").decode(errors="replace").splitlines():
            path = line.strip().strip("/")
            if not path or path == ".":
                continue
            try:
                real = tree.real(path)
            except SourceError:
                continue
            found = tree.lookup(real)
            if found is None or found.kind == "dir" or real in new or tree.node(real):
                continue
            tree.whiteout(real)
        prefix = old_key + "."
        for name in base.view.listdir(INFO):
            suffix = name.removeprefix(prefix)
            if (
                name.startswith(prefix)
                and suffix not in package.control.files
                and suffix not in ("list", "md5sums")
            ):
                tree.whiteout(f"{INFO}/{name}")
    for name, data in sorted(package.control.files.items()):
        tree.data(f"{INFO}/{key}.{name}", data, mode=0o755 if name in SCRIPTS else 0o644)
    text = "".join(f"/{p}\n" for p in ["", *listed]).replace("/\n", "/.\n", 1)
    tree.data(f"{INFO}/{key}.list", text.encode("utf-8"))
    if "md5sums" not in package.control.files:  # dpkg writes one for a package without
        text = "".join(f"{md5}  {path}\n" for path, md5 in md5s.items())
        tree.data(f"{INFO}/{key}.md5sums", text.encode("utf-8"))


def _stanza(control: Control, md5s: dict[str, str]) -> str:
    """The status stanza dpkg writes for an installed package."""
    fields = {f.name: f.value for f in control.fields}
    fields["Status"] = "install ok installed"
    conffiles = control.files.get("conffiles", b"").decode(errors="replace").split()
    listed = [p.strip() for p in conffiles if p.strip().startswith("/")]
    if listed:
        fields["Conffiles"] = "\n".join(
            [""] + [f" {p} {md5s.get(p.strip('/'), 'newconffile')}" for p in listed]
        )
    known = {name.lower(): name for name in fields}
    lines = []
    for name in _FIELD_ORDER:
        actual = known.pop(name.lower(), None)
        if actual is not None:
            lines.append(f"{name}: {fields[actual]}".rstrip(" "))
    lines.extend(
        f"{f.name}: {fields[f.name]}".rstrip(" ")
        for f in control.fields
        if f.name.lower() in known and f.name not in ("Status", "Conffiles")
    )
    return "\n".join(lines).replace(": \n", ":\n")
