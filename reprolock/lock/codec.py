"""`Lockfile` ↔ plain mappings with kebab-case keys, a fixed key order and sorted lists.

Reading validates every field and names the bad one by its path
(``targets[0].packages[3].wheels[0].sha256``), with its line when known.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import tomli_w

from reprolock.document.checker import Checker
from reprolock.document.locate import KeyPath
from reprolock.errors import InputError, problems_error
from reprolock.lock.model import (
    LOCK_VERSION,
    AptPackage,
    CudaStack,
    LockedBase,
    LockedHealthcheck,
    LockedImage,
    LockedTarget,
    Lockfile,
    PythonPackage,
    Wheel,
)
from reprolock.model import ComputeCapability, Platform

_HASH = re.compile(r"^sha256:[0-9a-f]{64}$")
_HEX = re.compile(r"^[0-9a-f]{64}$")


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
                    "wheels": [
                        _drop_none(
                            {
                                "filename": w.filename,
                                "url": w.url,
                                "sha256": w.sha256,
                                "size": w.size,
                            }
                        )
                        for w in sorted(p.wheels, key=lambda w: w.filename)
                    ],
                }
            )
            for p in sorted(target.packages, key=lambda p: p.name)
        ]
    return out


def dumps(lock: Lockfile) -> str:
    """The lock as TOML text: deterministic, trailing newline."""
    header = (
        "# This file is written by reprolock; do not edit it by hand.\n"
        "# Regenerate it with `reprolock lock`.\n"
    )
    return header + tomli_w.dumps(to_dict(lock))


# -- reading ---------------------------------------------------------------------------
@dataclass(slots=True)
class Decoded:
    """A read lock, with warnings for the user (e.g. written by a newer reprolock)."""

    lock: Lockfile
    warnings: list[str] = field(default_factory=list)


def loads(text: str, *, file: str) -> Decoded:
    """Parse lock text; `InputError` naming the file, line and field on any problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(
            f"{file}: is not valid TOML ({exc}).",
            hint="The lock is written by reprolock; regenerate it with `reprolock lock`.",
        ) from None
    return from_dict(data, file=file, text=text)


def from_dict(data: Mapping[str, Any], *, file: str, text: str | None = None) -> Decoded:
    """Build a `Lockfile` from a mapping; every problem is reported at once."""
    check = Checker(file=file, text=text)
    warnings: list[str] = []
    version = data.get("lock-version")
    ours = tuple(int(p) for p in LOCK_VERSION.split("."))
    if not isinstance(version, str) or not re.match(r"^\d+\.\d+$", version):
        raise InputError(
            f"{file}: lock-version is missing or malformed (got {version!r}).",
            hint="This is not a reprolock lock, or it was damaged; regenerate it with "
            "`reprolock lock`.",
        )
    theirs = tuple(int(p) for p in version.split("."))
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
    return Decoded(lock, warnings)


class _LockReader:
    def __init__(self, check: Checker, lenient: bool) -> None:
        self.check = check
        self.lenient = lenient

    def table(self, value: object, path: KeyPath, keys: tuple[str, ...]) -> dict[str, Any] | None:
        if self.lenient and isinstance(value, dict):
            return {k: v for k, v in value.items() if k in keys}
        return self.check.table(value, path, keys)

    def required(
        self,
        table: Mapping[str, Any],
        path: KeyPath,
        key: str,
        pattern: re.Pattern[str] | None = None,
        what: str = "",
    ) -> str | None:
        if key not in table:
            self.check.add((*path, key), "is missing.")
            return None
        value = self.check.string(table, path, key)
        if value is not None and pattern is not None and not pattern.match(value):
            self.check.add((*path, key), f'"{value}" is not {what}.')
            return None
        return value

    def optional(self, table: Mapping[str, Any], path: KeyPath, key: str) -> str | None:
        return self.check.string(table, path, key)

    def integer(
        self, table: Mapping[str, Any], path: KeyPath, key: str, required: bool
    ) -> int | None:
        value = table.get(key)
        if value is None:
            if required:
                self.check.add((*path, key), "is missing.")
            return None
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            self.check.wrong_type((*path, key), value, "a non-negative integer")
            return None
        return value

    def str_list(self, table: Mapping[str, Any], path: KeyPath, key: str) -> tuple[str, ...]:
        return tuple(v for _, v in self.check.strings(table, path, key) or ())

    def str_pairs(
        self, table: Mapping[str, Any], path: KeyPath, key: str
    ) -> tuple[tuple[str, str], ...]:
        return tuple(sorted((self.check.string_table(table, path, key) or {}).items()))

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
        )
        root = self.table(dict(data), (), keys)
        if root is None:
            return None
        inputs_hash = self.required(root, (), "inputs-hash", _HASH, "a sha256 hash")
        matrices_version = self.required(root, (), "matrices-version")
        created_by = self.optional(root, (), "created-by") or "unknown"
        inputs = self.str_pairs(root, (), "inputs")
        image = self.image(root["image"], ("image",)) if "image" in root else None
        targets = [t for p, v in self.rows(root, (), "targets") if (t := self.target(v, p))]
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
        )
        table = self.table(value, path, keys)
        if table is None:
            return None
        workdir = self.required(table, path, "workdir")
        user = self.required(table, path, "user")
        copies: list[tuple[str, str]] = []
        for row_path, pair in self.rows(table, path, "copy"):
            if isinstance(pair, list) and len(pair) == 2 and all(isinstance(p, str) for p in pair):
                copies.append((pair[0], pair[1]))
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
                    cmd=self.str_list(htable, hpath, "cmd"),
                    interval=self.optional(htable, hpath, "interval"),
                    timeout=self.optional(htable, hpath, "timeout"),
                    start_period=self.optional(htable, hpath, "start-period"),
                    retries=self.integer(htable, hpath, "retries", required=False),
                )
        if workdir is None or user is None:
            return None
        return LockedImage(
            workdir=workdir,
            user=user,
            venv=self.optional(table, path, "venv"),
            copy=tuple(copies),
            cmd=self.str_list(table, path, "cmd") if "cmd" in table else None,
            entrypoint=self.str_list(table, path, "entrypoint") if "entrypoint" in table else None,
            expose=self.str_list(table, path, "expose"),
            env=self.str_pairs(table, path, "env"),
            labels=self.str_pairs(table, path, "labels"),
            healthcheck=health,
        )

    def target(self, value: object, path: KeyPath) -> LockedTarget | None:
        keys = ("id", "platform", "python", "apt-snapshot", "cuda", "base", "apt", "packages")
        table = self.table(value, path, keys)
        if table is None:
            return None
        target_id = self.required(table, path, "id")
        python = self.required(table, path, "python")
        platform = None
        if (text := self.required(table, path, "platform")) is not None:
            try:
                platform = Platform.parse(text)
            except ValueError as exc:
                self.check.add((*path, "platform"), f"{exc}.")
        cuda = self.cuda(table["cuda"], (*path, "cuda")) if "cuda" in table else None
        base = self.base(table["base"], (*path, "base")) if "base" in table else None
        apt = [a for p, v in self.rows(table, path, "apt") if (a := self.apt(v, p))]
        packages = [q for p, v in self.rows(table, path, "packages") if (q := self.package(v, p))]
        if target_id is None or python is None or platform is None:
            return None
        return LockedTarget(
            id=target_id,
            platform=platform,
            python=python,
            cuda=cuda,
            base=base,
            apt_snapshot=self.optional(table, path, "apt-snapshot"),
            apt=tuple(apt),
            packages=tuple(packages),
        )

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
        )
        table = self.table(value, path, keys)
        if table is None:
            return None
        toolkit = self.required(table, path, "toolkit")
        driver_min = self.required(table, path, "driver-min")
        if toolkit is None or driver_min is None:
            return None
        return CudaStack(
            toolkit=toolkit,
            driver_min=driver_min,
            cudnn=self.optional(table, path, "cudnn"),
            nccl=self.optional(table, path, "nccl"),
            driver_min_compat=self.optional(table, path, "driver-min-compat"),
            compat=self.optional(table, path, "compat") or "minor",
            arches=self.str_list(table, path, "arches"),
            ptx=self.str_list(table, path, "ptx"),
            devices=self.str_pairs(table, path, "devices"),
            coverage=self.str_pairs(table, path, "coverage"),
            frameworks=self.str_list(table, path, "frameworks"),
            conflicts=self.str_list(table, path, "conflicts"),
        )

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
        )
        table = self.table(value, path, keys)
        if table is None:
            return None
        ref = self.required(table, path, "ref")
        manifest = self.required(table, path, "manifest-digest", _HASH, "a sha256 digest")
        for key in ("index-digest", "config-digest"):
            text = self.optional(table, path, key)
            if text is not None and not _HASH.match(text):
                self.check.add((*path, key), f'"{text}" is not a sha256 digest.')
        diff_ids = self.str_list(table, path, "diff-ids")
        for i, d in enumerate(diff_ids):
            if not _HASH.match(d):
                self.check.add((*path, "diff-ids", i), f'"{d}" is not a sha256 digest.')
        if ref is None or manifest is None:
            return None
        return LockedBase(
            ref=ref,
            manifest_digest=manifest,
            index_digest=self.optional(table, path, "index-digest"),
            config_digest=self.optional(table, path, "config-digest"),
            diff_ids=diff_ids,
            user=self.optional(table, path, "user"),
            env=self.str_pairs(table, path, "env"),
            labels=self.str_pairs(table, path, "labels"),
        )

    def apt(self, value: object, path: KeyPath) -> AptPackage | None:
        keys = ("name", "version", "architecture", "sha256", "size", "url")
        table = self.table(value, path, keys)
        if table is None:
            return None
        fields = {
            k: self.required(table, path, k) for k in ("name", "version", "architecture", "url")
        }
        sha = self.required(table, path, "sha256", _HEX, "a sha256 hex digest")
        size = self.integer(table, path, "size", required=True)
        if any(v is None for v in fields.values()) or sha is None or size is None:
            return None
        return AptPackage(
            name=str(fields["name"]),
            version=str(fields["version"]),
            architecture=str(fields["architecture"]),
            sha256=sha,
            size=size,
            url=str(fields["url"]),
        )

    def package(self, value: object, path: KeyPath) -> PythonPackage | None:
        table = self.table(value, path, ("name", "version", "index", "dependencies", "wheels"))
        if table is None:
            return None
        name = self.required(table, path, "name")
        version = self.required(table, path, "version")
        index = self.required(table, path, "index")
        wheels = [w for p, v in self.rows(table, path, "wheels") if (w := self.wheel(v, p))]
        if name is None or version is None or index is None:
            return None
        return PythonPackage(
            name=name,
            version=version,
            index=index,
            dependencies=self.str_list(table, path, "dependencies"),
            wheels=tuple(wheels),
        )

    def wheel(self, value: object, path: KeyPath) -> Wheel | None:
        table = self.table(value, path, ("filename", "url", "sha256", "size"))
        if table is None:
            return None
        filename = self.required(table, path, "filename")
        url = self.required(table, path, "url")
        sha = self.optional(table, path, "sha256")
        if sha is not None and not _HEX.match(sha):
            self.check.add((*path, "sha256"), f'"{sha}" is not a sha256 hex digest.')
        size = self.integer(table, path, "size", required=False)
        if filename is None or url is None:
            return None
        return Wheel(filename=filename, url=url, sha256=sha, size=size)
