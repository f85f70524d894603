"""`Lockfile` ↔ plain mappings with kebab-case keys, a fixed key order and sorted lists.

Reading validates every field and names the bad one by its path
(``targets[0].packages[3].wheels[0].sha256``), with its line when known.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import tomli_w
from packaging.requirements import InvalidRequirement, Requirement

from reprolock.document import toml
from reprolock.document.checker import Checker
from reprolock.document.locate import KeyPath
from reprolock.errors import InputError, problems_error
from reprolock.lock import integrity
from reprolock.lock.integrity import Integrity
from reprolock.lock.model import (
    INTEGRITY_SINCE,
    LOCK_VERSION,
    AptPackage,
    BaseChoice,
    BaseFacts,
    BasePython,
    BuildEnv,
    BuildWhere,
    CudaStack,
    ExtensionKernels,
    Interpreter,
    InterpreterSource,
    LockedBase,
    LockedDowngrade,
    LockedHealthcheck,
    LockedImage,
    LockedTarget,
    Lockfile,
    PythonPackage,
    Sdist,
    Wheel,
)
from reprolock.model import ComputeCapability, ImageRef, Platform, grammar
from reprolock.model.grammar import show


def _extension_to_dict(e: ExtensionKernels) -> dict[str, Any]:
    return _drop_none(
        {
            "name": e.name,
            "version": e.version,
            "library": e.library,
            "arches": sorted(set(e.arches), key=_arch_key),
            "ptx": sorted(set(e.ptx), key=_arch_key),
            "ptx-isa": e.ptx_isa,
            "measured": e.measured,
            "coverage": dict(sorted(e.coverage)) or None,
        }
    )


def _arch_key(arch: str) -> tuple[int, int, str]:
    try:
        cc = ComputeCapability.parse(arch)
    except ValueError:
        return (999, 0, arch)
    return (cc.major, cc.minor, cc.suffix)


def _drop_none(mapping: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if v is not None and v not in ((), [])}


# -- writing -------------------------------------------------------------------------
def to_dict(lock: Lockfile) -> dict[str, Any]:
    """The lock as a mapping in its canonical order, ready for TOML."""
    out: dict[str, Any] = {
        "lock-version": lock.lock_version,
        "created-by": lock.created_by,
        "inputs-hash": lock.inputs_hash,
        "matrices-version": lock.matrices_version,
    }
    if lock.inputs:
        out["inputs"] = dict(sorted(lock.inputs))
    if lock.image is not None:
        out["image"] = _image_to_dict(lock.image)
    out["targets"] = [_target_to_dict(t) for t in sorted(lock.targets, key=lambda t: t.id)]
    return out


def _image_to_dict(image: LockedImage) -> dict[str, Any]:
    health = image.healthcheck
    return _drop_none(
        {
            "workdir": image.workdir,
            "user": image.user,
            "venv": image.venv,
            "copy": [list(pair) for pair in image.copy],  # order matters: never sorted
            "cmd": None if image.cmd is None else list(image.cmd),
            "entrypoint": None if image.entrypoint is None else list(image.entrypoint),
            "expose": list(image.expose),
            "env": dict(sorted(image.env)) or None,
            "labels": dict(sorted(image.labels)) or None,
            "healthcheck": None
            if health is None
            else _drop_none(
                {
                    "cmd": list(health.cmd),
                    "interval": health.interval,
                    "timeout": health.timeout,
                    "start-period": health.start_period,
                    "retries": health.retries,
                }
            ),
            "allow-data": list(image.allow_data) or None,
        }
    )


def _target_to_dict(target: LockedTarget) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": target.id,
        "platform": str(target.platform),
        "python": target.python,
    }
    if target.apt_snapshot:
        out["apt-snapshot"] = target.apt_snapshot
    if target.interpreter is not None:
        out["interpreter"] = _interpreter_to_dict(target.interpreter)
    if target.cuda is not None:
        c = target.cuda
        out["cuda"] = _drop_none(
            {
                "toolkit": c.toolkit,
                "cudnn": c.cudnn,
                "nccl": c.nccl,
                "driver-min": c.driver_min,
                "driver-min-compat": c.driver_min_compat,
                "compat": c.compat,
                "frameworks": sorted(c.frameworks) or None,
                "arches": sorted(set(c.arches), key=_arch_key),
                "ptx": sorted(set(c.ptx), key=_arch_key) or None,
                "devices": dict(sorted(c.devices)) or None,
                "coverage": dict(sorted(c.coverage)) or None,
                "conflicts": sorted(c.conflicts) or None,
                "extensions": [
                    _extension_to_dict(e) for e in sorted(c.extensions, key=lambda e: e.name)
                ]
                or None,
            }
        )
    if target.base is not None:
        b = target.base
        out["base"] = _drop_none(
            {
                "ref": b.ref,
                "index-digest": b.index_digest,
                "manifest-digest": b.manifest_digest,
                "config-digest": b.config_digest,
                "diff-ids": list(b.diff_ids),  # layer order matters: never sorted
                "user": b.user,
                "env": dict(sorted(b.env)) or None,
                "labels": dict(sorted(b.labels)) or None,
                "size": b.size,
                "facts": None if b.facts is None else facts_to_dict(b.facts),
                "choice": None if b.choice is None else _choice_to_dict(b.choice),
            }
        )
    if target.apt:
        out["apt"] = [
            {
                "name": p.name,
                "version": p.version,
                "architecture": p.architecture,
                "sha256": p.sha256,
                "size": p.size,
                "url": p.url,
            }
            for p in sorted(target.apt, key=lambda p: (p.name, p.architecture))
        ]
    if target.packages:
        out["packages"] = [
            _drop_none(
                {
                    "name": p.name,
                    "version": p.version,
                    "index": p.index,
                    "dependencies": sorted(set(p.dependencies)),
                    "wheels": _wheels_to_list(p.wheels),
                    "sdist": None if p.sdist is None else _sdist_to_dict(p.sdist),
                    "build": None if p.build is None else _build_to_dict(p.build),
                }
            )
            for p in sorted(target.packages, key=lambda p: p.name)
        ]
    if target.downgrades:
        out["downgrades"] = [
            {"name": d.name, "version": d.version, "newest": d.newest, "reason": d.reason}
            for d in sorted(target.downgrades, key=lambda d: d.name)
        ]
    return out


def _wheels_to_list(wheels: tuple[Wheel, ...]) -> list[dict[str, Any]]:
    return [
        _drop_none({"filename": w.filename, "url": w.url, "sha256": w.sha256, "size": w.size})
        for w in sorted(wheels, key=lambda w: w.filename)
    ]


def _sdist_to_dict(sdist: Sdist) -> dict[str, Any]:
    return _drop_none(
        {"filename": sdist.filename, "url": sdist.url, "sha256": sdist.sha256, "size": sdist.size}
    )


def _build_to_dict(build: BuildEnv) -> dict[str, Any]:
    out: dict[str, Any] = {"backend": build.backend}
    if build.backend_path:
        out["backend-path"] = list(build.backend_path)
    out["requires"] = list(build.requires)
    out["where"] = build.where.value
    if build.why:
        out["why"] = build.why
    out["wheels"] = _wheels_to_list(build.wheels)
    return out


def facts_to_dict(facts: BaseFacts) -> dict[str, Any]:
    """A base image's facts as the lock writes them (also the form they are cached in)."""
    return _drop_none(
        {
            "os": facts.os_id,
            "os-version": facts.os_version,
            "libc": facts.libc,
            "libc-version": facts.libc_version,
            "cuda": facts.cuda,
            "users": dict(sorted(facts.users)) or None,
            "groups": dict(sorted(facts.groups)) or None,
            "pythons": [
                {
                    "path": p.path,
                    "version": p.version,
                    "venv": p.venv,
                    "ensurepip": p.ensurepip,
                    "found-by": p.found_by,
                }
                for p in sorted(facts.pythons, key=lambda p: p.path)
            ],
        }
    )


def _choice_to_dict(choice: BaseChoice) -> dict[str, Any]:
    return _drop_none(
        {
            "image": choice.image,
            "why": choice.why,
            "instead-of": choice.instead_of,
            "instead-of-bytes": choice.instead_of_bytes,
            "cuda-wheel-bytes": choice.cuda_wheel_bytes,
        }
    )


def _interpreter_to_dict(interpreter: Interpreter) -> dict[str, Any]:
    return _drop_none(
        {
            "source": interpreter.source.value,
            "path": interpreter.path,
            "version": interpreter.version,
            "packages": sorted(interpreter.packages),
            "url": interpreter.url,
            "sha256": interpreter.sha256,
            "size": interpreter.size,
        }
    )


def dumps(lock: Lockfile) -> str:
    """The lock as TOML text: deterministic, trailing newline."""
    header = (
        "# This file is written by reprolock; do not edit it by hand.\n"
        "# Regenerate it with `reprolock lock`.\n"
    )
    data = to_dict(lock)
    data["integrity"] = integrity.digests(data)
    return header + tomli_w.dumps(data)


# -- reading ---------------------------------------------------------------------------
@dataclass(slots=True)
class Decoded:
    """A read lock, with warnings for the user (e.g. written by a newer reprolock) and
    what checking its integrity digests found."""

    lock: Lockfile
    integrity: Integrity
    warnings: list[str] = field(default_factory=list)


def loads(text: str, *, file: str) -> Decoded:
    """Parse lock text; `InputError` naming the file, line and field on any problem."""
    try:
        data = toml.loads(text, file=file)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(
            f"{file}: is not valid TOML ({exc}).",
            hint="The lock is written by reprolock; regenerate it with `reprolock lock`.",
        ) from None
    return from_dict(data, file=file, text=text)


_VERSION = re.compile(r"([0-9]{1,6})\.([0-9]{1,6})", re.ASCII)


def from_dict(data: Mapping[str, Any], *, file: str, text: str | None = None) -> Decoded:
    """Build a `Lockfile` from a mapping; every problem is reported at once.

    The integrity digests are checked too, and the finding returned (not raised): what a
    hand-edited lock means is the caller's decision.
    """
    check = Checker(file=file, text=text)
    warnings: list[str] = []
    version = data.get("lock-version")
    found = _VERSION.fullmatch(version) if isinstance(version, str) else None
    if found is None:
        got = show(version) if isinstance(version, str) else type(version).__name__
        raise InputError(
            f"{file}: lock-version is missing or malformed (got {got}).",
            hint="This is not a reprolock lock, or it was damaged; regenerate it with "
            "`reprolock lock`.",
        )
    ours = tuple(int(p) for p in LOCK_VERSION.split("."))
    theirs = (int(found.group(1)), int(found.group(2)))
    if theirs[0] != ours[0]:
        raise InputError(
            f"{file}: lock-version {version} is not supported by this reprolock "
            f"(it reads {ours[0]}.x).",
            hint="Upgrade reprolock to read it, or regenerate the lock with `reprolock lock`.",
        )
    lenient = theirs[1] > ours[1]
    if lenient:
        warnings.append(
            f"{file}: lock-version {version} is newer than this reprolock's {LOCK_VERSION}; "
            "fields it does not know are ignored. Upgrade reprolock."
        )
    reader = _LockReader(check, lenient)
    lock = reader.lockfile(data)
    if check.problems or lock is None:
        raise problems_error(file, check.problems, what="the lock")
    if theirs < INTEGRITY_SINCE and "integrity" not in data:
        found_integrity = Integrity(
            verified=False,
            unverifiable=f"it is a lock-version {version} lock, written before locks carried "
            "integrity digests",
        )
    else:
        found_integrity = integrity.check(data, lenient=lenient)
    return Decoded(lock, found_integrity, warnings)


Grammar = Callable[[str], str]


class _LockReader:
    def __init__(self, check: Checker, lenient: bool) -> None:
        self.check = check
        self.lenient = lenient

    def table(self, value: object, path: KeyPath, keys: tuple[str, ...]) -> dict[str, Any] | None:
        if self.lenient and isinstance(value, dict):
            return {k: v for k, v in value.items() if k in keys}
        return self.check.table(value, path, keys)

    def valid(self, path: KeyPath, value: str, grammar: Grammar | None) -> str | None:
        """``value`` if ``grammar`` accepts it; None (and a problem) otherwise."""
        if grammar is None:
            return value
        try:
            return grammar(value)
        except ValueError as exc:
            self.check.add(path, f"{exc}.")
            return None

    def required(
        self, table: Mapping[str, Any], path: KeyPath, key: str, grammar: Grammar | None
    ) -> str | None:
        if key not in table:
            self.check.add((*path, key), "is missing.")
            return None
        return self.optional(table, path, key, grammar)

    def optional(
        self, table: Mapping[str, Any], path: KeyPath, key: str, grammar: Grammar | None
    ) -> str | None:
        value = self.check.string(table, path, key)
        return None if value is None else self.valid((*path, key), value, grammar)

    def integer(
        self, table: Mapping[str, Any], path: KeyPath, key: str, required: bool
    ) -> int | None:
        value = table.get(key)
        if value is None:
            if required:
                self.check.add((*path, key), "is missing.")
            return None
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << 63:
            self.check.wrong_type((*path, key), value, "a non-negative integer")
            return None
        return value

    def str_list(
        self, table: Mapping[str, Any], path: KeyPath, key: str, grammar: Grammar | None
    ) -> tuple[str, ...]:
        items = self.check.strings(table, path, key) or ()
        return tuple(
            v for i, item in items if (v := self.valid((*path, key, i), item, grammar)) is not None
        )

    def str_pairs(
        self,
        table: Mapping[str, Any],
        path: KeyPath,
        key: str,
        names: Grammar | None,
        values: Grammar | None,
    ) -> tuple[tuple[str, str], ...]:
        out = []
        for name, value in (self.check.string_table(table, path, key) or {}).items():
            where = (*path, key, name)
            ok_name = self.valid(where, name, names)
            ok_value = self.valid(where, value, values)
            if ok_name is not None and ok_value is not None:
                out.append((ok_name, ok_value))
        return tuple(sorted(out))

    def rows(self, table: Mapping[str, Any], path: KeyPath, key: str) -> list[tuple[KeyPath, Any]]:
        value = table.get(key, [])
        if not isinstance(value, list):
            self.check.wrong_type((*path, key), value, "an array of tables")
            return []
        return [((*path, key, i), item) for i, item in enumerate(value)]

    def lockfile(self, data: Mapping[str, Any]) -> Lockfile | None:
        keys = (
            "lock-version",
            "created-by",
            "inputs-hash",
            "matrices-version",
            "inputs",
            "image",
            "targets",
            "integrity",
        )
        root = self.table(dict(data), (), keys)
        if root is None:
            return None
        inputs_hash = self.required(root, (), "inputs-hash", grammar.sha256_digest)
        matrices_version = self.required(root, (), "matrices-version", grammar.label_text)
        created_by = self.optional(root, (), "created-by", grammar.label_text) or "unknown"
        inputs = self.str_pairs(root, (), "inputs", _section_name, grammar.sha256_digest)
        image = self.image(root["image"], ("image",)) if "image" in root else None
        targets = [t for p, v in self.rows(root, (), "targets") if (t := self.target(v, p))]
        seen: dict[str, int] = {}
        for i, target in enumerate(targets):
            if target.id in seen:
                self.check.add(
                    ("targets", i, "id"),
                    f'duplicate target id "{target.id}" (also targets[{seen[target.id]}]).',
                )
            seen.setdefault(target.id, i)
        if inputs_hash is None or matrices_version is None:
            return None
        return Lockfile(
            lock_version=str(root["lock-version"]),
            created_by=created_by,
            inputs_hash=inputs_hash,
            matrices_version=matrices_version,
            inputs=inputs,
            image=image,
            targets=tuple(targets),
        )

    def image(self, value: object, path: KeyPath) -> LockedImage | None:
        keys = (
            "workdir",
            "user",
            "venv",
            "copy",
            "cmd",
            "entrypoint",
            "expose",
            "env",
            "labels",
            "healthcheck",
            "allow-data",
        )
        table = self.table(value, path, keys)
        if table is None:
            return None
        workdir = self.required(table, path, "workdir", grammar.absolute_path)
        user = self.required(table, path, "user", grammar.user)
        copies: list[tuple[str, str]] = []
        for row_path, pair in self.rows(table, path, "copy"):
            if isinstance(pair, list) and len(pair) == 2 and all(isinstance(p, str) for p in pair):
                source = self.valid((*row_path, 0), pair[0], grammar.context_path)
                dest = self.valid((*row_path, 1), pair[1], grammar.absolute_path)
                if source is not None and dest is not None:
                    copies.append((source, dest))
            else:
                self.check.wrong_type(row_path, pair, "a [source, destination] pair")
        health = None
        if "healthcheck" in table:
            hpath = (*path, "healthcheck")
            htable = self.table(
                table["healthcheck"],
                hpath,
                ("cmd", "interval", "timeout", "start-period", "retries"),
            )
            if htable is not None:
                health = LockedHealthcheck(
                    cmd=self.str_list(htable, hpath, "cmd", grammar.argument),
                    interval=self.optional(htable, hpath, "interval", grammar.duration),
                    timeout=self.optional(htable, hpath, "timeout", grammar.duration),
                    start_period=self.optional(htable, hpath, "start-period", grammar.duration),
                    retries=self.integer(htable, hpath, "retries", required=False),
                )
        if workdir is None or user is None:
            return None
        return LockedImage(
            workdir=workdir,
            user=user,
            venv=self.optional(table, path, "venv", grammar.absolute_path),
            copy=tuple(copies),
            cmd=self.str_list(table, path, "cmd", grammar.argument) if "cmd" in table else None,
            entrypoint=self.str_list(table, path, "entrypoint", grammar.argument)
            if "entrypoint" in table
            else None,
            expose=self.str_list(table, path, "expose", grammar.port),
            env=self.str_pairs(table, path, "env", grammar.env_name, grammar.env_value),
            labels=self.str_pairs(table, path, "labels", grammar.label_key, grammar.env_value),
            healthcheck=health,
            allow_data=self.str_list(table, path, "allow-data", grammar.path_glob),
        )

    def target(self, value: object, path: KeyPath) -> LockedTarget | None:
        keys = (
            "id",
            "platform",
            "python",
            "apt-snapshot",
            "interpreter",
            "cuda",
            "base",
            "apt",
            "packages",
            "downgrades",
        )
        table = self.table(value, path, keys)
        if table is None:
            return None
        target_id = self.required(table, path, "id", grammar.target_id)
        python = self.required(table, path, "python", grammar.python_version)
        platform = None
        if (text := self.required(table, path, "platform", None)) is not None:
            try:
                platform = Platform.parse(text)
            except ValueError as exc:
                self.check.add((*path, "platform"), f"{exc}.")
        cuda = self.cuda(table["cuda"], (*path, "cuda")) if "cuda" in table else None
        base = self.base(table["base"], (*path, "base")) if "base" in table else None
        interpreter = (
            self.interpreter(table["interpreter"], (*path, "interpreter"))
            if "interpreter" in table
            else None
        )
        apt = [a for p, v in self.rows(table, path, "apt") if (a := self.apt(v, p))]
        packages = [q for p, v in self.rows(table, path, "packages") if (q := self.package(v, p))]
        downgrades = [
            d for p, v in self.rows(table, path, "downgrades") if (d := self.downgrade(v, p))
        ]
        snapshot = self.optional(table, path, "apt-snapshot", grammar.deb_snapshot)
        if target_id is None or python is None or platform is None:
            return None
        return LockedTarget(
            id=target_id,
            platform=platform,
            python=python,
            interpreter=interpreter,
            cuda=cuda,
            base=base,
            apt_snapshot=snapshot,
            apt=tuple(apt),
            packages=tuple(packages),
            downgrades=tuple(downgrades),
        )

    def downgrade(self, value: object, path: KeyPath) -> LockedDowngrade | None:
        table = self.table(value, path, ("name", "version", "newest", "reason"))
        if table is None:
            return None
        name = self.required(table, path, "name", grammar.project_name)
        version = self.required(table, path, "version", grammar.package_version)
        newest = self.required(table, path, "newest", grammar.package_version)
        reason = self.required(table, path, "reason", _long_text)
        if name is None or version is None or newest is None or reason is None:
            return None
        return LockedDowngrade(name=name, version=version, newest=newest, reason=reason)

    def cuda(self, value: object, path: KeyPath) -> CudaStack | None:
        keys = (
            "toolkit",
            "cudnn",
            "nccl",
            "driver-min",
            "driver-min-compat",
            "compat",
            "frameworks",
            "arches",
            "ptx",
            "devices",
            "coverage",
            "conflicts",
            "extensions",
        )
        table = self.table(value, path, keys)
        if table is None:
            return None
        text = grammar.label_text
        toolkit = self.required(table, path, "toolkit", grammar.dotted_version)
        driver_min = self.required(table, path, "driver-min", grammar.dotted_version)
        stack = CudaStack(
            toolkit=toolkit or "",
            driver_min=driver_min or "",
            cudnn=self.optional(table, path, "cudnn", grammar.dotted_version),
            nccl=self.optional(table, path, "nccl", grammar.dotted_version),
            driver_min_compat=self.optional(
                table, path, "driver-min-compat", grammar.dotted_version
            ),
            compat=self.optional(table, path, "compat", _compat) or "minor",
            arches=self.str_list(table, path, "arches", _arch),
            ptx=self.str_list(table, path, "ptx", _arch),
            devices=self.str_pairs(table, path, "devices", text, _arch),
            coverage=self.str_pairs(table, path, "coverage", text, text),
            frameworks=self.str_list(table, path, "frameworks", text),
            conflicts=self.str_list(table, path, "conflicts", _long_text),
            extensions=tuple(
                e for p, v in self.rows(table, path, "extensions") if (e := self.extension(v, p))
            ),
        )
        return None if toolkit is None or driver_min is None else stack

    def extension(self, value: object, path: KeyPath) -> ExtensionKernels | None:
        keys = ("name", "version", "library", "arches", "ptx", "ptx-isa", "measured", "coverage")
        table = self.table(value, path, keys)
        if table is None:
            return None
        text = grammar.label_text
        name = self.required(table, path, "name", grammar.project_name)
        version = self.required(table, path, "version", grammar.package_version)
        library = self.required(table, path, "library", text)
        measured = self.required(table, path, "measured", _long_text)
        found = ExtensionKernels(
            name=name or "",
            version=version or "",
            library=library or "",
            arches=self.str_list(table, path, "arches", _arch),
            ptx=self.str_list(table, path, "ptx", _arch),
            ptx_isa=self.optional(table, path, "ptx-isa", grammar.dotted_version),
            measured=measured or "",
            coverage=self.str_pairs(table, path, "coverage", text, text),
        )
        return None if None in (name, version, library, measured) else found

    def base(self, value: object, path: KeyPath) -> LockedBase | None:
        keys = (
            "ref",
            "index-digest",
            "manifest-digest",
            "config-digest",
            "diff-ids",
            "user",
            "env",
            "labels",
            "size",
            "facts",
            "choice",
        )
        table = self.table(value, path, keys)
        if table is None:
            return None
        ref = self.required(table, path, "ref", _image_ref)
        facts = self.facts(table["facts"], (*path, "facts")) if "facts" in table else None
        choice = self.choice(table["choice"], (*path, "choice")) if "choice" in table else None
        manifest = self.required(table, path, "manifest-digest", grammar.sha256_digest)
        base = LockedBase(
            ref=ref or "",
            manifest_digest=manifest or "",
            index_digest=self.optional(table, path, "index-digest", grammar.sha256_digest),
            config_digest=self.optional(table, path, "config-digest", grammar.sha256_digest),
            diff_ids=self.str_list(table, path, "diff-ids", grammar.sha256_digest),
            user=self.optional(table, path, "user", grammar.label_text),
            env=self.str_pairs(table, path, "env", _config_key, grammar.argument),
            labels=self.str_pairs(table, path, "labels", _config_key, grammar.argument),
            size=self.integer(table, path, "size", required=False),
            facts=facts,
            choice=choice,
        )
        return None if ref is None or manifest is None else base

    def facts(self, value: object, path: KeyPath) -> BaseFacts | None:
        keys = ("os", "os-version", "libc", "libc-version", "cuda", "users", "groups", "pythons")
        table = self.table(value, path, keys)
        if table is None:
            return None
        pythons = [p for q, v in self.rows(table, path, "pythons") if (p := self.base_python(v, q))]
        return BaseFacts(
            os_id=self.optional(table, path, "os", grammar.os_release_id),
            os_version=self.optional(table, path, "os-version", grammar.os_release_id),
            libc=self.optional(table, path, "libc", _libc),
            libc_version=self.optional(table, path, "libc-version", grammar.dotted_version),
            cuda=self.optional(table, path, "cuda", grammar.dotted_version),
            pythons=tuple(pythons),
            users=self.str_pairs(table, path, "users", grammar.account_name, grammar.uid_gid),
            groups=self.str_pairs(table, path, "groups", grammar.account_name, grammar.numeric_id),
        )

    def base_python(self, value: object, path: KeyPath) -> BasePython | None:
        table = self.table(value, path, ("path", "version", "venv", "ensurepip", "found-by"))
        if table is None:
            return None
        where = self.required(table, path, "path", grammar.absolute_path)
        version = self.required(table, path, "version", grammar.python_version)
        found_by = self.required(table, path, "found-by", grammar.label_text)
        venv = self.check.boolean(table, path, "venv")
        ensurepip = self.check.boolean(table, path, "ensurepip")
        if where is None or version is None or found_by is None:
            return None
        return BasePython(
            path=where,
            version=version,
            venv=bool(venv),
            ensurepip=bool(ensurepip),
            found_by=found_by,
        )

    def choice(self, value: object, path: KeyPath) -> BaseChoice | None:
        keys = ("image", "why", "instead-of", "instead-of-bytes", "cuda-wheel-bytes")
        table = self.table(value, path, keys)
        if table is None:
            return None
        image = self.required(table, path, "image", grammar.label_text)
        why = self.required(table, path, "why", _long_text)
        if image is None or why is None:
            return None
        return BaseChoice(
            image=image,
            why=why,
            instead_of=self.optional(table, path, "instead-of", _image_ref),
            instead_of_bytes=self.integer(table, path, "instead-of-bytes", required=False),
            cuda_wheel_bytes=self.integer(table, path, "cuda-wheel-bytes", required=False),
        )

    def interpreter(self, value: object, path: KeyPath) -> Interpreter | None:
        keys = ("source", "path", "version", "packages", "url", "sha256", "size")
        table = self.table(value, path, keys)
        if table is None:
            return None
        source = self.required(table, path, "source", _interpreter_source)
        where = self.required(table, path, "path", grammar.absolute_path)
        version = self.required(table, path, "version", grammar.python_version)
        url = self.optional(table, path, "url", grammar.http_url)
        sha = self.optional(table, path, "sha256", grammar.sha256_hex)
        if source == InterpreterSource.STANDALONE and (url is None or sha is None):
            self.check.add(path, "a standalone interpreter needs its url and sha256.")
            return None
        if source is None or where is None or version is None:
            return None
        return Interpreter(
            source=InterpreterSource(source),
            path=where,
            version=version,
            packages=self.str_list(table, path, "packages", grammar.deb_name),
            url=url,
            sha256=sha,
            size=self.integer(table, path, "size", required=False),
        )

    def apt(self, value: object, path: KeyPath) -> AptPackage | None:
        keys = ("name", "version", "architecture", "sha256", "size", "url")
        table = self.table(value, path, keys)
        if table is None:
            return None
        name = self.required(table, path, "name", grammar.deb_name)
        version = self.required(table, path, "version", grammar.deb_version)
        architecture = self.required(table, path, "architecture", grammar.deb_architecture)
        url = self.required(table, path, "url", grammar.http_url)
        sha = self.required(table, path, "sha256", grammar.sha256_hex)
        size = self.integer(table, path, "size", required=True)
        if (
            name is None
            or version is None
            or architecture is None
            or url is None
            or sha is None
            or size is None
        ):
            return None
        return AptPackage(
            name=name, version=version, architecture=architecture, sha256=sha, size=size, url=url
        )

    def package(self, value: object, path: KeyPath) -> PythonPackage | None:
        keys = ("name", "version", "index", "dependencies", "wheels", "sdist", "build")
        table = self.table(value, path, keys)
        if table is None:
            return None
        name = self.required(table, path, "name", grammar.project_name)
        version = self.required(table, path, "version", grammar.package_version)
        index = self.required(table, path, "index", grammar.index_url)
        dependencies = self.str_list(table, path, "dependencies", grammar.canonical_name)
        wheels = [w for p, v in self.rows(table, path, "wheels") if (w := self.wheel(v, p))]
        sdist = self.sdist(table["sdist"], (*path, "sdist")) if "sdist" in table else None
        build = self.build(table["build"], (*path, "build")) if "build" in table else None
        if ("sdist" in table) != ("build" in table):
            self.check.add(path, "an sdist and its build environment come together.")
        if name is None or version is None or index is None:
            return None
        return PythonPackage(
            name=name,
            version=version,
            index=index,
            dependencies=dependencies,
            wheels=tuple(wheels),
            sdist=sdist,
            build=build,
        )

    def sdist(self, value: object, path: KeyPath) -> Sdist | None:
        table = self.table(value, path, ("filename", "url", "sha256", "size"))
        if table is None:
            return None
        filename = self.required(table, path, "filename", grammar.sdist_filename)
        url = self.required(table, path, "url", grammar.http_url)
        sha = self.required(table, path, "sha256", grammar.sha256_hex)
        size = self.integer(table, path, "size", required=False)
        if filename is None or url is None or sha is None:
            return None
        return Sdist(filename=filename, url=url, sha256=sha, size=size)

    def build(self, value: object, path: KeyPath) -> BuildEnv | None:
        keys = ("backend", "backend-path", "requires", "where", "why", "wheels")
        table = self.table(value, path, keys)
        if table is None:
            return None
        backend = self.required(table, path, "backend", _backend)
        backend_path = self.str_list(table, path, "backend-path", grammar.relative_file)
        requires = self.str_list(table, path, "requires", _requirement)
        where = self.required(table, path, "where", _build_where)
        why = self.optional(table, path, "why", _long_text) or ""
        wheels = [w for p, v in self.rows(table, path, "wheels") if (w := self.wheel(v, p))]
        for i, wheel in enumerate(wheels):
            if wheel.sha256 is None:
                self.check.add((*path, "wheels", i, "sha256"), "is missing.")
        if backend is None or where is None:
            return None
        return BuildEnv(
            backend=backend,
            backend_path=backend_path,
            requires=requires,
            wheels=tuple(wheels),
            where=BuildWhere(where),
            why=why,
        )

    def wheel(self, value: object, path: KeyPath) -> Wheel | None:
        table = self.table(value, path, ("filename", "url", "sha256", "size"))
        if table is None:
            return None
        filename = self.required(table, path, "filename", grammar.wheel_filename)
        url = self.required(table, path, "url", grammar.http_url)
        sha = self.optional(table, path, "sha256", grammar.sha256_hex)
        size = self.integer(table, path, "size", required=False)
        if filename is None or url is None:
            return None
        return Wheel(filename=filename, url=url, sha256=sha, size=size)


_BACKEND = re.compile(
    r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*(:[A-Za-z_][A-Za-z0-9_.]*)?"
)


def _backend(text: str) -> str:
    """A PEP 517 build-backend object reference (``module.sub:object``)."""
    if len(text) > 200 or not _BACKEND.fullmatch(text):
        raise ValueError(f"{grammar.show(text)} is not a build backend (module:object)")
    return text


def _requirement(text: str) -> str:
    try:
        Requirement(text)
    except InvalidRequirement:
        raise ValueError(f"{grammar.show(text)} is not a PEP 508 requirement") from None
    if grammar.has_control(text) or len(text) > 1000:
        raise ValueError(f"{grammar.show(text)} is not a PEP 508 requirement")
    return text


def _build_where(text: str) -> str:
    if text not in {w.value for w in BuildWhere}:
        raise ValueError(f"{grammar.show(text)} is not one of fetch, image")
    return text


def _section_name(text: str) -> str:
    if not re.fullmatch(r"[a-z][a-z0-9-]{0,63}", text, re.ASCII):
        raise ValueError(f"{show(text)} is not a spec section name")
    return text


def _libc(text: str) -> str:
    if text not in ("glibc", "musl"):
        raise ValueError(f'{show(text)} is not a C library ("glibc" or "musl")')
    return text


def _interpreter_source(text: str) -> str:
    if text not in {s.value for s in InterpreterSource}:
        raise ValueError(f'{show(text)} is not an interpreter source ("base", "apt", "standalone")')
    return text


def facts_from_dict(data: object, *, source: str) -> BaseFacts | None:
    """Base facts in the lock's form (`facts_to_dict`), read back from a cache: validated
    like the lock's; None when anything in them is malformed."""
    reader = _LockReader(Checker(file=source), lenient=False)
    facts = reader.facts(data, ())
    return None if reader.check.problems else facts


def _compat(text: str) -> str:
    if text not in ("minor", "strict"):
        raise ValueError(f'{show(text)} is not a compat policy ("minor" or "strict")')
    return text


def _arch(text: str) -> str:
    if not re.fullmatch(r"(sm|compute)_[0-9]{1,4}[a-z]?", text, re.ASCII):
        raise ValueError(f'{show(text)} is not a GPU architecture (like "sm_90" or "compute_90")')
    return text


def _long_text(text: str) -> str:
    return grammar.label_text(text, limit=4096)


def _config_key(text: str) -> str:
    """A key of an image config's Env or Labels: printable, no ``=``."""
    if "=" in text:
        raise ValueError(f"{show(text)} is not an image config key (it holds '=')")
    return grammar.label_text(text)


def _image_ref(text: str) -> str:
    """An image reference (what FROM is written from): parsed by `ImageRef`, printable
    ASCII only."""
    if not text.isascii() or not text.isprintable():
        raise ValueError(f"{show(text)} is not an image reference (printable ASCII only)")
    ImageRef.parse(text)
    return text
