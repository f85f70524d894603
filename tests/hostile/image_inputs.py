"""Hostile images for the corpus: bombs, oversized members, malformed archives and layouts.

Big inputs are generated as streams (a tar header, then zeros or a repeated stanza)
through a compressor, so the files on disk stay small and nothing big is ever held in
the test's memory.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import zstandard

ZEROS = bytes(1 << 20)
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def tar_of(members: Iterable[tuple[str, bytes]], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    """A tar of regular files, in order."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=fmt) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def big_member(name: str, size: int, piece: bytes = ZEROS) -> Iterator[bytes]:
    """A tar holding one file of ``size`` bytes (``piece`` repeated), as a stream."""
    info = tarfile.TarInfo(name)
    info.size = size
    yield info.tobuf(format=tarfile.PAX_FORMAT)
    left = size
    while left > 0:
        chunk = piece[: min(len(piece), left)]
        left -= len(chunk)
        yield chunk
    yield bytes(-size % 512) + bytes(1024)  # padding, then the end-of-archive blocks


def empty_files(count: int, folder: str) -> Iterator[bytes]:
    """A tar of ``count`` empty files ``FOLDER/NNNN/fNNN`` (512 bytes of header each), as a
    stream: headers patched from one template (``TarInfo.tobuf`` would take a minute)."""
    template = bytearray(tarfile.TarInfo(f"{folder}/0000/f000").tobuf(format=tarfile.USTAR_FORMAT))
    width = len(folder) + 10
    rest = sum(template) - sum(template[:width]) - sum(template[148:156]) + 8 * ord(" ")
    batch: list[bytes] = []
    for i in range(count):
        name = b"%s/%04d/f%03d" % (folder.encode(), i // 1000, i % 1000)
        template[:width] = name
        template[148:156] = b"%06o\0 " % (rest + sum(name))
        batch.append(bytes(template))
        if len(batch) == 4096:
            yield b"".join(batch)
            batch = []
    yield b"".join(batch) + bytes(1024)


def zstd_stream(chunks: Iterable[bytes]) -> bytes:
    compressor = zstandard.ZstdCompressor(level=3).compressobj()
    out = [compressor.compress(c) for c in chunks]
    out.append(compressor.flush())
    return b"".join(out)


def gzip_stream(chunks: Iterable[bytes], level: int = 9) -> bytes:
    compressor = zlib.compressobj(level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    out = [compressor.compress(c) for c in chunks]
    out.append(compressor.flush())
    return b"".join(out)


def digest_of(chunks: Iterable[bytes]) -> str:
    hasher = hashlib.sha256()
    for chunk in chunks:
        hasher.update(chunk)
    return "sha256:" + hasher.hexdigest()


def config(diff_ids: list[str], **extra: Any) -> bytes:
    value: dict[str, Any] = {
        "os": "linux",
        "architecture": "amd64",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }
    value.update(extra)
    return json.dumps(value).encode()


def add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def link(tar: tarfile.TarFile, name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    tar.addfile(info)


def docker_archive(
    path: Path,
    layers: list[bytes],
    *,
    diff_ids: list[str] | None = None,
    config_blob: bytes | None = None,
    manifest: object = None,
) -> None:
    """A `docker save` archive of raw (possibly hostile) layer blobs."""
    names = [f"l{i}/layer.tar" for i in range(len(layers))]
    config_blob = config_blob or config(diff_ids or [sha(layer) for layer in layers])
    if manifest is None:
        manifest = [{"Config": "config.json", "RepoTags": ["x:1"], "Layers": names}]
    with tarfile.open(path, "w") as tar:
        for name, layer in zip(names, layers, strict=True):
            add(tar, name, layer)
        add(tar, "config.json", config_blob)
        add(tar, "manifest.json", json.dumps(manifest).encode())


def oci_layout(
    folder: Path,
    layers: list[tuple[bytes, str]],
    *,
    config_blob: bytes | None = None,
    media_type: str = "application/vnd.oci.image.layer.v1.tar+zstd",
) -> dict[str, str]:
    """An OCI layout of (blob, diff_id) layers; returns the blobs' file names by role."""
    blobs = folder / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    (folder / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    names: dict[str, str] = {}
    descriptors = []
    for i, (blob, _) in enumerate(layers):
        (blobs / sha(blob)[7:]).write_bytes(blob)
        descriptors.append({"mediaType": media_type, "digest": sha(blob), "size": len(blob)})
        names[f"layer{i}"] = sha(blob)[7:]
    config_blob = config_blob or config([d for _, d in layers])
    (blobs / sha(config_blob)[7:]).write_bytes(config_blob)
    names["config"] = sha(config_blob)[7:]
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": sha(config_blob),
                "size": len(config_blob),
            },
            "layers": descriptors,
        }
    ).encode()
    (blobs / sha(manifest)[7:]).write_bytes(manifest)
    names["manifest"] = sha(manifest)[7:]
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": sha(manifest), "size": len(manifest)}],
    }
    (folder / "index.json").write_text(json.dumps(index))
    return names


def gzip_bytes(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=1, mtime=0)
