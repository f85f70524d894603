"""Write test images to disk the ways real tools do: `docker save` archives and OCI layouts."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import zstandard

from tests.ociregistry import OCI_INDEX, OCI_MANIFEST, Image, LayerFiles, layer_tar, sha


def _config(image: Image, diff_ids: list[str]) -> bytes:
    config = {
        "architecture": image.architecture,
        "os": image.os,
        "config": {
            "Env": [f"{k}={v}" for k, v in image.env.items()],
            "User": image.user,
            "Labels": image.labels,
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": f"layer {i}"} for i in range(len(diff_ids))],
    }
    return json.dumps(config, sort_keys=True).encode()


def write_docker_archive(path: Path, image: Image, tag: str = "test:latest") -> None:
    """The legacy `docker save` layout: <id>/layer.tar, <config>.json, manifest.json."""
    tars = [layer_tar(files) for files in image.layers]
    config = _config(image, [sha(t) for t in tars])
    with tarfile.open(path, "w") as out:

        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))

        names = []
        for tar in tars:
            name = f"{sha(tar)[7:]}/layer.tar"
            add(name, tar)
            names.append(name)
        config_name = f"{sha(config)[7:]}.json"
        add(config_name, config)
        add(
            "manifest.json",
            json.dumps([{"Config": config_name, "RepoTags": [tag], "Layers": names}]).encode(),
        )


def _compress(tar: bytes, compression: str) -> tuple[bytes, str]:
    if compression == "gzip":
        return gzip.compress(tar, mtime=0), "application/vnd.oci.image.layer.v1.tar+gzip"
    if compression == "zstd":
        return (
            zstandard.ZstdCompressor().compress(tar),
            "application/vnd.oci.image.layer.v1.tar+zstd",
        )
    return tar, "application/vnd.oci.image.layer.v1.tar"


def layout_files(
    image: Image,
    tag: str = "latest",
    compression: str = "gzip",
) -> dict[str, bytes]:
    """Every file of an OCI layout holding ``image``."""
    files: dict[str, bytes] = {"oci-layout": b'{"imageLayoutVersion": "1.0.0"}'}
    descriptors, diff_ids = [], []
    for layer_files in image.layers:
        tar = layer_tar(layer_files)
        blob, media = _compress(tar, compression)
        files[f"blobs/sha256/{sha(blob)[7:]}"] = blob
        descriptors.append({"mediaType": media, "digest": sha(blob), "size": len(blob)})
        diff_ids.append(sha(tar))
    config = _config(image, diff_ids)
    files[f"blobs/sha256/{sha(config)[7:]}"] = config
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": sha(config),
                "size": len(config),
            },
            "layers": descriptors,
        }
    ).encode()
    files[f"blobs/sha256/{sha(manifest)[7:]}"] = manifest
    files["index.json"] = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {
                    "mediaType": OCI_MANIFEST,
                    "digest": sha(manifest),
                    "size": len(manifest),
                    "annotations": {"org.opencontainers.image.ref.name": tag},
                    "platform": {"os": image.os, "architecture": image.architecture},
                }
            ],
        }
    ).encode()
    return files


def write_oci_layout(
    folder: Path, image: Image, tag: str = "latest", compression: str = "gzip"
) -> None:
    for name, data in layout_files(image, tag, compression).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)


def write_oci_archive(path: Path, image: Image, tag: str = "latest") -> None:
    with tarfile.open(path, "w") as out:
        for name, data in layout_files(image, tag).items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))


def write_rootfs(folder: Path, layers: list[LayerFiles]) -> None:
    """Apply layers to a folder the way a container runtime would (for `dir:` tests)."""
    import os
    import shutil

    for files in layers:
        for name, value in files.items():
            path = folder / name
            leaf = path.name
            if leaf == ".wh..wh..opq":
                for child in path.parent.iterdir():
                    shutil.rmtree(
                        child
                    ) if child.is_dir() and not child.is_symlink() else child.unlink()
                continue
            if leaf.startswith(".wh."):
                victim = path.parent / leaf[4:]
                if victim.is_dir() and not victim.is_symlink():
                    shutil.rmtree(victim)
                elif victim.exists() or victim.is_symlink():
                    victim.unlink()
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            from tests.ociregistry import Dir, Hard, Link

            if isinstance(value, Dir):
                path.mkdir(exist_ok=True)
            elif isinstance(value, Link):
                if path.exists() or path.is_symlink():
                    path.unlink()
                os.symlink(value.target, path)
            elif isinstance(value, Hard):
                os.link(folder / value.source, path)
            else:
                path.write_bytes(value)
