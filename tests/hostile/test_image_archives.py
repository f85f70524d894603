"""Hostile image archives and layouts: compressed archives too big for memory, link loops,
manifests of the wrong shape, layout blobs that are links, FIFOs or devices, blobs that
do not match their descriptors.  Each case runs the real CLI in the sandbox."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import zstandard

from tests.hostile.harness import Sandbox
from tests.hostile.image_inputs import (
    add,
    big_member,
    config,
    digest_of,
    docker_archive,
    link,
    oci_layout,
    sha,
    tar_of,
)
from tests.imagefiles import write_docker_archive
from tests.test_inspect import realistic_image

# -- docker-archive ---------------------------------------------------------------------------


def _outer_member(name: str, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    return info.tobuf(format=tarfile.PAX_FORMAT)


@pytest.fixture(scope="module")
def big_gzipped_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A gzip'd `docker save` of a 600 MiB layer (7 MB on disk), written as a stream:
    more than the sandbox's address space, so it cannot be held in memory."""
    piece = os.urandom(8 << 10) + bytes((1 << 20) - (8 << 10))  # compresses about 100:1
    size = 600 << 20

    def layer() -> Iterator[bytes]:
        return big_member("data.bin", size, piece)

    layer_size = sum(len(c) for c in layer())
    config_blob = config([digest_of(layer())])
    manifest = json.dumps(
        [{"Config": "config.json", "RepoTags": ["big:1"], "Layers": ["l/layer.tar"]}]
    ).encode()
    path = tmp_path_factory.mktemp("big") / "big.tar.gz"
    with gzip.open(path, "wb", compresslevel=1) as out:
        out.write(_outer_member("l/layer.tar", layer_size))
        for chunk in layer():
            out.write(chunk)
        out.write(bytes(-layer_size % 512))
        for name, data in (("config.json", config_blob), ("manifest.json", manifest)):
            out.write(_outer_member(name, len(data)) + data + bytes(-len(data) % 512))
        out.write(bytes(1024))
    return path


def test_a_gzipped_archive_is_streamed_not_held_in_memory(
    sandbox: Sandbox, big_gzipped_archive: Path
) -> None:
    outcome = sandbox.run("inspect", f"docker-archive:{big_gzipped_archive}")
    sandbox.check(outcome, [0], says=["layers   1 (629.1 MB uncompressed)"])


@pytest.mark.parametrize("kind", ["gz", "xz", "zst", "bz2"])
def test_compressed_archives_read_like_plain_ones(sandbox: Sandbox, kind: str) -> None:
    write_docker_archive(sandbox.work / "image.tar", realistic_image())
    plain = sandbox.run("--format", "json", "inspect", "docker-archive:image.tar")
    sandbox.check(plain, [0])
    data = (sandbox.work / "image.tar").read_bytes()
    packed = {
        "gz": lambda: gzip.compress(data),
        "xz": lambda: lzma.compress(data),
        "zst": lambda: zstandard.ZstdCompressor().compress(data),
        "bz2": lambda: bz2.compress(data),
    }[kind]()
    (sandbox.work / f"image.tar.{kind}").write_bytes(packed)
    outcome = sandbox.run("--format", "json", "inspect", f"docker-archive:image.tar.{kind}")
    sandbox.check(outcome, [0])
    expected = json.loads(plain.out)
    expected["image"]["source"] += f".{kind}"
    assert json.loads(outcome.out) == expected


def test_a_gzip_bomb_archive_is_refused(sandbox: Sandbox) -> None:
    bomb = gzip.compress(_outer_member("l/layer.tar", 300 << 20) + bytes(300 << 20), 9)
    (sandbox.work / "bomb.tar.gz").write_bytes(bomb)
    outcome = sandbox.run("inspect", "docker-archive:bomb.tar.gz")
    sandbox.check(outcome, [4], says=["decompression bomb"])


def _archive_with_links(path: Path, links: list[tuple[str, str]], *, layers: list[str]) -> None:
    with tarfile.open(path, "w") as tar:
        add(tar, "config.json", config([sha(b"")] * len(layers)))
        for name, target in links:
            link(tar, name, target)
        if not any(name == "manifest.json" for name, _ in links):
            manifest = [{"Config": "config.json", "Layers": layers}]
            add(tar, "manifest.json", json.dumps(manifest).encode())


@pytest.mark.parametrize(
    ("links", "layers"),
    [
        ([("manifest.json", "manifest.json")], []),
        ([("manifest.json", "./x/../manifest.json")], []),
        ([("a/layer.tar", "../b/layer.tar"), ("b/layer.tar", "../a/layer.tar")], ["a/layer.tar"]),
    ],
    ids=["itself", "itself-by-another-name", "a-b-a"],
)
def test_a_link_loop_in_the_archive_ends(
    sandbox: Sandbox, links: list[tuple[str, str]], layers: list[str]
) -> None:
    _archive_with_links(sandbox.work / "loop.tar", links, layers=layers)
    outcome = sandbox.run("inspect", "docker-archive:loop.tar")
    sandbox.check(outcome, [4], says=["is a chain of links that exceeds", "LINK_HOPS"])


def test_a_link_out_of_the_archive_is_not_followed(sandbox: Sandbox) -> None:
    _archive_with_links(
        sandbox.work / "out.tar",
        [("manifest.json", str(sandbox.outside / "sentinel"))],
        layers=[],
    )
    outcome = sandbox.run("inspect", "docker-archive:out.tar")
    sandbox.check(outcome, [4], says=["has no manifest.json"])


@pytest.mark.parametrize(
    ("manifest", "says"),
    [
        ({"Config": "config.json"}, "manifest.json lists no image"),
        ([1], "manifest.json[0] is not an object"),
        ([{"Config": 1, "Layers": []}], "manifest.json[0].Config is not a file name"),
        ([{"Config": "config.json", "Layers": "l0/layer.tar"}], ".Layers is not a list of names"),
        ([{"Config": "config.json", "Layers": [None]}], ".Layers is not a list of names"),
        ([{"Config": "config.json", "RepoTags": [{}]}], ".RepoTags is not a list of names"),
        ([{"Config": "config.json"}, 7], "manifest.json[1] is not an object"),
    ],
)
def test_manifest_entries_of_the_wrong_type_are_source_errors(
    sandbox: Sandbox, manifest: object, says: str
) -> None:
    docker_archive(sandbox.work / "m.tar", [tar_of([("f", b"x")])], manifest=manifest)
    outcome = sandbox.run("inspect", "docker-archive:m.tar")
    sandbox.check(outcome, [4], says=[says])


def test_a_huge_manifest_json_is_refused_unread(sandbox: Sandbox) -> None:
    with tarfile.open(sandbox.work / "h.tar", "w") as tar:
        add(tar, "manifest.json", b"[" + b" " * (5 << 20) + b"]")
    outcome = sandbox.run("inspect", "docker-archive:h.tar")
    sandbox.check(
        outcome, [4], says=["manifest.json exceeds reprolock's limit of 4 MiB", "MANIFEST_BYTES"]
    )


def test_a_non_utf8_manifest_json_is_a_source_error(sandbox: Sandbox) -> None:
    with tarfile.open(sandbox.work / "u.tar", "w") as tar:
        add(tar, "manifest.json", b'[{"Config": "\xff"}]')
    outcome = sandbox.run("inspect", "docker-archive:u.tar")
    sandbox.check(outcome, [4], says=["manifest.json is not UTF-8"])


# -- OCI layouts ------------------------------------------------------------------------------


@pytest.fixture
def layout(sandbox: Sandbox) -> tuple[Path, dict[str, str]]:
    layer = tar_of([("etc/hostname", b"x\n")])
    folder = sandbox.work / "layout"
    names = oci_layout(
        folder, [(layer, sha(layer))], media_type="application/vnd.oci.image.layer.v1.tar"
    )
    return folder, names


def _blob(folder: Path, name: str) -> Path:
    return folder / "blobs" / "sha256" / name


@pytest.mark.parametrize("role", ["config", "layer0", "manifest"])
def test_a_layout_blob_linked_to_dev_zero_is_refused(
    sandbox: Sandbox, layout: tuple[Path, dict[str, str]], role: str
) -> None:
    folder, names = layout
    path = _blob(folder, names[role])
    path.unlink()
    path.symlink_to("/dev/zero")
    outcome = sandbox.run("inspect", "oci:layout")
    sandbox.check(outcome, [4], says=["is a symbolic link; refusing to follow it"])


@pytest.mark.parametrize("role", ["config", "layer0"])
def test_a_layout_blob_that_is_a_fifo_is_refused(
    sandbox: Sandbox, layout: tuple[Path, dict[str, str]], role: str
) -> None:
    folder, names = layout
    path = _blob(folder, names[role])
    path.unlink()
    os.mkfifo(path)
    outcome = sandbox.run("inspect", "oci:layout", seconds=20)
    sandbox.check(outcome, [4], says=["is not a regular file (a FIFO)"])


def test_layout_files_outside_the_layout_are_refused(
    sandbox: Sandbox, layout: tuple[Path, dict[str, str]]
) -> None:
    folder, _ = layout
    elsewhere = sandbox.root / "elsewhere"
    (folder / "blobs").rename(elsewhere)
    (folder / "blobs").symlink_to(elsewhere)
    outcome = sandbox.run("inspect", "oci:layout")
    sandbox.check(outcome, [4], says=["leads out of", "refusing to read it"])


def test_an_index_json_linked_outside_is_refused(
    sandbox: Sandbox, layout: tuple[Path, dict[str, str]]
) -> None:
    folder, _ = layout
    (folder / "index.json").unlink()
    (folder / "index.json").symlink_to(sandbox.outside / "sentinel")
    outcome = sandbox.run("inspect", "oci:layout")
    sandbox.check(outcome, [4], says=["index.json is a symbolic link"])


def test_a_layer_longer_than_its_descriptor_is_refused_before_reading(
    sandbox: Sandbox, layout: tuple[Path, dict[str, str]]
) -> None:
    folder, names = layout
    with _blob(folder, names["layer0"]).open("ab") as blob:
        blob.write(bytes(1 << 20))
    outcome = sandbox.run("inspect", "oci:layout")
    sandbox.check(outcome, [4], says=["layer 0 does not match its descriptor: the blob is"])


def _use_manifest(folder: Path, manifest: dict[str, object]) -> None:
    """Store ``manifest`` as a blob and point index.json at it."""
    data = json.dumps(manifest).encode()
    _blob(folder, sha(data)[7:]).write_bytes(data)
    index = json.loads((folder / "index.json").read_text())
    index["manifests"][0].update(digest=sha(data), size=len(data))
    (folder / "index.json").write_text(json.dumps(index))


def _changed_manifest(folder: Path, names: dict[str, str], change: dict[str, object]) -> None:
    """The manifest with ``change`` applied: ``key`` at the top, ``config.key`` in the
    config descriptor, ``layers.key`` in the first layer's."""
    manifest = json.loads(_blob(folder, names["manifest"]).read_bytes())
    for key, value in change.items():
        target, _, field = key.partition(".")
        if not field:
            manifest[key] = value
        elif target == "layers":
            manifest["layers"][0][field] = value
        else:
            manifest[target][field] = value
    _use_manifest(folder, manifest)


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"layers.size": "1"}, "layers[0].size is not a non-negative 64-bit integer"),
        ({"layers.size": True}, "layers[0].size is not a non-negative 64-bit integer"),
        ({"layers.size": 2**80}, "layers[0].size is not a non-negative 64-bit integer"),
        ({"layers.mediaType": 5}, "layers[0].mediaType is not a string"),
        ({"layers.digest": "sha256:" + "A" * 64}, "layers[0].digest: "),
        ({"layers.digest": "sha512:" + "a" * 128}, "is not a sha256 digest"),
        ({"layers.platform": "linux"}, "layers[0].platform is not an object"),
        ({"config.annotations": {"a": 1}}, 'config.annotations["a"] is not a string'),
        ({"mediaType": ["x"]}, "mediaType is not a string"),
        ({"layers": {}}, "the manifest has no layers list"),
    ],
)
def test_manifest_fields_of_the_wrong_type_are_source_errors(
    sandbox: Sandbox, layout: tuple[Path, dict[str, str]], change: dict[str, object], says: str
) -> None:
    folder, names = layout
    _changed_manifest(folder, names, change)
    outcome = sandbox.run("inspect", "oci:layout")
    sandbox.check(outcome, [4], says=[says])


def test_a_config_over_its_cap_is_refused_unread(
    sandbox: Sandbox, layout: tuple[Path, dict[str, str]]
) -> None:
    folder, names = layout
    _changed_manifest(folder, names, {"config.size": 20 << 20})
    outcome = sandbox.run("inspect", "oci:layout")
    sandbox.check(
        outcome, [4], says=["exceeds reprolock's limit of 16 MiB (20971520 bytes declared)"]
    )


def test_a_huge_index_json_is_refused_unread(
    sandbox: Sandbox, layout: tuple[Path, dict[str, str]]
) -> None:
    folder, _ = layout
    with (folder / "index.json").open("ab") as index:
        index.write(b" " * (5 << 20))
    outcome = sandbox.run("inspect", "oci:layout")
    sandbox.check(outcome, [4], says=["index.json exceeds reprolock's limit of 4 MiB"])


def test_an_index_json_annotation_of_the_wrong_type_is_a_source_error(
    sandbox: Sandbox, layout: tuple[Path, dict[str, str]]
) -> None:
    folder, _ = layout
    index = json.loads((folder / "index.json").read_text())
    index["manifests"][0]["annotations"] = ["org.opencontainers.image.ref.name"]
    (folder / "index.json").write_text(json.dumps(index))
    outcome = sandbox.run("inspect", "oci:layout:v1")
    sandbox.check(outcome, [4], says=["manifests[0].annotations is not an object"])


# -- oci-archive ------------------------------------------------------------------------------


def _oci_archive(path: Path, folder: Path, *, replace: dict[str, bytes | str]) -> None:
    """A tar of ``folder``; members named in ``replace`` become other bytes or links."""
    with tarfile.open(path, "w") as tar:
        for file in sorted(folder.rglob("*")):
            if file.is_dir():
                continue
            name = file.relative_to(folder).as_posix()
            value = replace.get(name, file.read_bytes())
            if isinstance(value, str):
                link(tar, name, value)
            else:
                add(tar, name, value)


def test_an_oci_archive_layer_longer_than_its_descriptor_is_refused(
    sandbox: Sandbox, layout: tuple[Path, dict[str, str]]
) -> None:
    folder, names = layout
    name = f"blobs/sha256/{names['layer0']}"
    longer = _blob(folder, names["layer0"]).read_bytes() + bytes(4096)
    _oci_archive(sandbox.work / "a.tar", folder, replace={name: longer})
    outcome = sandbox.run("inspect", "oci-archive:a.tar")
    sandbox.check(outcome, [4], says=["layer 0 does not match its descriptor"])


def test_an_oci_archive_link_loop_ends(
    sandbox: Sandbox, layout: tuple[Path, dict[str, str]]
) -> None:
    folder, names = layout
    name = f"blobs/sha256/{names['config']}"
    _oci_archive(sandbox.work / "a.tar", folder, replace={name: names["config"]})
    outcome = sandbox.run("inspect", "oci-archive:a.tar")
    sandbox.check(outcome, [4], says=["is a chain of links that exceeds"])


def test_an_oci_archive_of_too_many_members_is_refused(sandbox: Sandbox) -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for i in range(200):
            add(tar, f"f{i}", b"")
    (sandbox.work / "many.tar").write_bytes(raw.getvalue())
    outcome = sandbox.run(
        "inspect", "oci-archive:many.tar", env={"REPROLOCK_LIMIT_ARCHIVE_MEMBERS": "100"}
    )
    sandbox.check(outcome, [4], says=["its members exceeds reprolock's limit of 100"])
