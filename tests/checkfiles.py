"""Layers for the checks on files (RECORD and bytecode, dpkg's md5sums, sizes, data files):
Python distributions as pip installs them, Debian packages as dpkg records them, pycs as
CPython writes them, and locks to verify them against."""

from __future__ import annotations

import _imp
import base64
import hashlib
import marshal
from pathlib import Path

from reprolock.inventory.pyc import MAGIC, key
from tests.imagefiles import write_docker_archive
from tests.ociregistry import Image, LayerFiles

SP = "opt/venv/lib/python3.11/site-packages"


def record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode()


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _code(source: bytes) -> bytes:
    return marshal.dumps(compile(source, "<test>", "exec"))


def pyc_timestamp(source: bytes, *, mtime: int = 0, size: int | None = None) -> bytes:
    """A timestamp pyc of ``source`` for CPython 3.11 (layers' files have mtime 0)."""
    header = MAGIC["3.11"].to_bytes(2, "little") + b"\r\n" + (0).to_bytes(4, "little")
    header += mtime.to_bytes(4, "little") + (len(source) if size is None else size).to_bytes(
        4, "little"
    )
    return header + _code(source)


def pyc_hash(source: bytes, *, checked: bool, of: bytes | None = None) -> bytes:
    """A hash-based pyc of ``source`` (its hash that of ``of`` when given)."""
    flags = 0b11 if checked else 0b01
    digest = _imp.source_hash(key(MAGIC["3.11"]), source if of is None else of)
    header = MAGIC["3.11"].to_bytes(2, "little") + b"\r\n" + flags.to_bytes(4, "little")
    return header + digest + _code(source)


def dist(
    name: str,
    version: str,
    files: dict[str, bytes],
    *,
    site: str = SP,
    unhashed: tuple[str, ...] = (),
) -> LayerFiles:
    """A distribution as pip leaves it: its files, METADATA, INSTALLER and a RECORD with a
    hash for each file (none for those in ``unhashed``, as pip lists the pycs it writes)."""
    info = f"{name}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\n".encode()
    out: LayerFiles = {f"{site}/{path}": data for path, data in files.items()}
    out[f"{site}/{info}/METADATA"] = metadata
    out[f"{site}/{info}/INSTALLER"] = b"pip\n"
    rows = [
        f"{p},," if p in unhashed else f"{p},{record_hash(d)},{len(d)}" for p, d in files.items()
    ]
    rows += [f"{info}/METADATA,{record_hash(metadata)},{len(metadata)}", f"{info}/RECORD,,"]
    out[f"{site}/{info}/RECORD"] = ("\n".join(rows) + "\n").encode()
    return out


def deb(
    name: str,
    version: str,
    files: dict[str, bytes],
    *,
    conffiles: dict[str, bytes] | None = None,
    arch: str = "amd64",
) -> tuple[bytes, LayerFiles]:
    """A Debian package as dpkg records it: its status stanza (with its conffiles'
    md5s), and its files with ``info/NAME.md5sums`` and ``info/NAME.list``."""
    conffiles = conffiles or {}
    stanza = (
        f"Package: {name}\nStatus: install ok installed\nArchitecture: {arch}\nVersion: {version}\n"
    )
    if conffiles:
        stanza += "Conffiles:\n" + "".join(f" /{p} {md5(d)}\n" for p, d in conffiles.items())
    layer: LayerFiles = {**files, **conffiles}
    info = "var/lib/dpkg/info"
    layer[f"{info}/{name}.md5sums"] = "".join(f"{md5(d)}  {p}\n" for p, d in files.items()).encode()
    layer[f"{info}/{name}.list"] = "".join(f"/{p}\n" for p in [*files, *conffiles]).encode()
    return stanza.encode(), layer


def status(*stanzas: bytes) -> bytes:
    return b"\n".join(stanzas)


def archive(folder: Path, name: str, *layers: LayerFiles, **image: object) -> str:
    """A `docker save` archive of ``layers``; the ``docker-archive:`` name to read it."""
    path = folder / f"{name}.tar"
    write_docker_archive(path, Image(layers=list(layers), **image))  # type: ignore[arg-type]
    return f"docker-archive:{path}"


def write_lock(
    folder: Path,
    packages: dict[str, str],
    *,
    venv: str = "/opt/venv",
    allow_data: tuple[str, ...] = (),
    base_diff_ids: tuple[str, ...] = (),
) -> Path:
    """A lock of ``packages`` (name → version) in ``venv``; with ``base_diff_ids``, a base
    made of those layers."""
    from reprolock import api
    from reprolock.lock import (
        LockedBase,
        LockedImage,
        LockedTarget,
        Lockfile,
        PythonPackage,
        Wheel,
    )
    from reprolock.model import Platform

    base = None
    if base_diff_ids:
        base = LockedBase(
            ref="registry.example/base:1",
            manifest_digest="sha256:" + "b" * 64,
            diff_ids=base_diff_ids,
        )
    target = LockedTarget(
        id="py3.11-amd64",
        platform=Platform.parse("linux/amd64"),
        python="3.11",
        base=base,
        packages=tuple(
            PythonPackage(
                name=name,
                version=version,
                index="https://pypi.org/simple",
                wheels=(
                    Wheel(
                        filename=_wheel(name, version),
                        url=f"https://files.example/{_wheel(name, version)}",
                        sha256="0" * 64,
                    ),
                ),
            )
            for name, version in sorted(packages.items())
        ),
    )
    lock = Lockfile(
        lock_version="1.0",
        created_by="test",
        inputs_hash="sha256:" + "1" * 64,
        matrices_version="x",
        image=LockedImage(workdir="/app", user="root", venv=venv, allow_data=allow_data),
        targets=(target,),
    )
    path = folder / "reprolock.lock"
    api.write_lock(path, lock)
    return path


def _wheel(name: str, version: str) -> str:
    return f"{name.replace('-', '_')}-{version}-py3-none-any.whl"
