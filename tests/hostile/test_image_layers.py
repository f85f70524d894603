"""Hostile layers: decompression bombs, oversized or malformed tar headers, paths too
deep, catalogued files too big to keep, files that are not UTF-8.  Each case runs the
real CLI in the sandbox (512 MiB of address space, 60 s)."""

from __future__ import annotations

import io
import json
import tarfile

import pytest

from tests.hostile.harness import Sandbox
from tests.hostile.image_inputs import (
    big_member,
    digest_of,
    docker_archive,
    empty_files,
    gzip_stream,
    oci_layout,
    sha,
    tar_of,
    zstd_stream,
)

SP = "usr/lib/python3/dist-packages"


@pytest.fixture(scope="module")
def zstd_bomb() -> bytes:
    """66 KB of zstd that inflate to a 2 GiB layer."""
    return zstd_stream(big_member("zeros", 2 << 30))


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    """Half a MB of gzip that inflate to a 512 MiB layer."""
    return gzip_stream(big_member("zeros", 512 << 20))


@pytest.mark.parametrize("kind", ["zstd", "gzip"])
def test_a_layer_bomb_is_refused_within_memory(
    sandbox: Sandbox, kind: str, request: pytest.FixtureRequest
) -> None:
    bomb: bytes = request.getfixturevalue(f"{kind}_bomb")
    assert len(bomb) < 1 << 20
    docker_archive(sandbox.work / "bomb.tar", [bomb], diff_ids=["sha256:" + "0" * 64])
    outcome = sandbox.run("inspect", "docker-archive:bomb.tar")
    sandbox.check(outcome, [4], says=["layer 0: expands to over", "decompression bomb"])


def test_millions_of_empty_files_are_refused_within_memory(sandbox: Sandbox) -> None:
    """Two layers of 600,000 empty files each (4 MB of gzip apiece): each is under the
    image_entries cap, the image is not (the cap is shared by its layers), and the read
    stops there, within the sandbox's 512 MiB, instead of keeping every entry."""
    layers = [gzip_stream(empty_files(600_000, name), level=6) for name in ("a", "b")]
    assert all(len(layer) < 5 << 20 for layer in layers)
    diff_ids = [digest_of(empty_files(600_000, name)) for name in ("a", "b")]
    docker_archive(sandbox.work / "many.tar", layers, diff_ids=diff_ids)
    outcome = sandbox.run("inspect", "docker-archive:many.tar")
    sandbox.check(
        outcome,
        [4],
        says=[
            "the number of entries (files, folders, links, whiteouts) in the image's layers "
            "exceeds reprolock's limit of 1000000",
            "REPROLOCK_LIMIT_IMAGE_ENTRIES",
        ],
    )


def test_a_path_of_thousands_of_components_is_refused(sandbox: Sandbox) -> None:
    layer = tar_of([("a/" * 1500 + "f", b"x")])
    docker_archive(sandbox.work / "deep.tar", [layer])
    outcome = sandbox.run("inspect", "docker-archive:deep.tar")
    sandbox.check(
        outcome, [4], says=["1501 components", "exceeds reprolock's limit of 256", "PATH_DEPTH"]
    )


@pytest.fixture(scope="module")
def huge_status() -> tuple[bytes, str]:
    """A zstd layer (25 KB) holding a 250 MiB dpkg status, and its diff_id."""
    stanza = b"".join(
        b"Package: pkg%05d\nStatus: install ok installed\nArchitecture: amd64\n"
        b"Version: 1.0-%d\n\n" % (i, i)
        for i in range(800)
    )
    size = 250 << 20
    return (
        zstd_stream(big_member("var/lib/dpkg/status", size, stanza)),
        digest_of(big_member("var/lib/dpkg/status", size, stanza)),
    )


def test_twelve_huge_dpkg_status_files_are_not_kept(
    sandbox: Sandbox, huge_status: tuple[bytes, str]
) -> None:
    """Twelve layers each rewrite a 250 MiB status: none is kept in memory, and the
    inventory fails naming the file (never a silently empty package list)."""
    oci_layout(sandbox.work / "layout", [huge_status] * 12)
    outcome = sandbox.run("inspect", "oci:layout")
    sandbox.check(
        outcome,
        [4],
        says=[
            "/var/lib/dpkg/status, a file reprolock reads to catalog the image, exceeds "
            "reprolock's limit of 32 MiB (262144000 bytes)",
            "REPROLOCK_LIMIT_CATALOG_FILE_BYTES",
        ],
    )


def test_catalogued_files_beyond_the_image_budget_are_refused(sandbox: Sandbox) -> None:
    """Files each under the per-file cap still count against the image's total: the
    first two (2 MB each) are kept, the third is over a 5 MB budget."""
    two_mb = b"# " + b"x" * (2_000_000 - 3) + b"\n"
    names = ("var/lib/dpkg/status", "etc/os-release", "etc/passwd")
    docker_archive(sandbox.work / "a.tar", [tar_of([(name, two_mb) for name in names])])
    outcome = sandbox.run(
        "inspect",
        "docker-archive:a.tar",
        env={"REPROLOCK_LIMIT_CATALOG_TOTAL_BYTES": "5000000"},
    )
    sandbox.check(
        outcome,
        [4],
        says=[
            "/etc/passwd: the files reprolock keeps in memory to catalog this image exceed",
            "REPROLOCK_LIMIT_CATALOG_TOTAL_BYTES",
        ],
    )


def _pax_bomb() -> bytes:
    """A layer whose first header is a 200 MiB pax header (zstd: a few KB)."""
    size = 200 << 20
    record_head = b"%d path=" % size
    body = record_head + b"a" * (size - len(record_head) - 1) + b"\n"
    info = tarfile.TarInfo("././@PaxHeader")
    info.type, info.size = tarfile.XHDTYPE, len(body)
    header = info.tobuf(format=tarfile.USTAR_FORMAT)

    def chunks() -> list[bytes]:
        out = [header]
        view = memoryview(body)
        out.extend(bytes(view[i : i + (1 << 20)]) for i in range(0, len(body), 1 << 20))
        out.append(bytes(-len(body) % 512))
        out.append(tar_of([("f", b"x")]))
        return out

    return zstd_stream(chunks())


def test_an_oversized_pax_header_is_refused(sandbox: Sandbox) -> None:
    docker_archive(sandbox.work / "pax.tar", [_pax_bomb()], diff_ids=["sha256:" + "0" * 64])
    outcome = sandbox.run("inspect", "docker-archive:pax.tar")
    sandbox.check(
        outcome,
        [4],
        says=["an extended header of 209715200 bytes", "REPROLOCK_LIMIT_TAR_HEADER_BYTES"],
    )


def _sparse_layer() -> bytes:
    """A GNU sparse member whose sparse map claims to continue past the end."""
    info = tarfile.TarInfo("sparse")
    info.size = 0
    header = bytearray(info.tobuf(format=tarfile.GNU_FORMAT))
    header[156] = ord(tarfile.GNUTYPE_SPARSE)
    header[482] = 1  # "more sparse headers follow": none do
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % sum(header)
    return bytes(header)


def test_a_sparse_member_is_refused(sandbox: Sandbox) -> None:
    docker_archive(sandbox.work / "s.tar", [_sparse_layer()])
    outcome = sandbox.run("inspect", "docker-archive:s.tar")
    sandbox.check(outcome, [4], says=["sparse file"])


def _dist_info(files: dict[str, bytes]) -> bytes:
    info = f"{SP}/odd-1.0.dist-info"
    return tar_of([(f"{info}/{name}", data) for name, data in files.items()])


def test_non_utf8_and_malformed_dist_info_files_are_data_not_crashes(sandbox: Sandbox) -> None:
    record = (
        b"odd/__init__.py,sha256=not-base64!,12\n"
        b"odd/a.py,sha256=" + b"A" * 43 + b",1,extra,columns\n"
        b"odd/b.py\n" + b'"' + b"x" * 200_000 + b'",,\n'
    )
    layer = _dist_info(
        {
            "METADATA": b"Metadata-Version: 2.1\nName: caf\xe9-\x1b[31modd\nVersion: 1.0\xff\n",
            "INSTALLER": b"\xff\xfepip\x00\n",
            "RECORD": record,
            "WHEEL": b"Tag: \xff\n",
            "direct_url.json": b"[" * 100_000,
        }
    )
    docker_archive(sandbox.work / "odd.tar", [layer])
    outcome = sandbox.run("--format", "json", "inspect", "docker-archive:odd.tar")
    sandbox.check(outcome, [0])
    [env] = json.loads(outcome.out)["python"]
    [dist] = env["packages"]
    assert dist["name"] == "caf\ufffd-\ufffd[31modd"
    assert dist["version"] == "1.0\ufffd"
    assert dist["installer"] == "\ufffd\ufffdpip\ufffd"
    assert dist["direct-url"] is None
    assert [(i["path"], i["problem"]) for i in dist["record-issues"]] == [
        ("odd/__init__.py", "malformed"),
        ("odd/a.py", "missing"),
        ("odd-1.0.dist-info/RECORD", "malformed"),
    ]


def test_non_utf8_text_files_are_catalogued(sandbox: Sandbox) -> None:
    layer = tar_of(
        [
            ("etc/os-release", b'ID=deb\xffian\nVERSION_ID="1\x1b2"\nPRETTY_NAME=\'x' + b"y" * 99),
            ("var/lib/dpkg/status", b"Package: p\xe9\nStatus: install ok installed\nVersion: 1\n"),
            ("etc/passwd", b"r\xf6ot:x:0:0::/:/bin/sh\n"),
        ]
    )
    docker_archive(sandbox.work / "t.tar", [layer])
    outcome = sandbox.run("--format", "json", "inspect", "docker-archive:t.tar")
    sandbox.check(outcome, [0])
    data = json.loads(outcome.out)
    assert (data["os"]["id"], data["os"]["version-id"]) == ("deb\ufffdian", "1\ufffd2")
    assert [d["name"] for d in data["deb-packages"]] == ["p\ufffd"]


def test_a_deeply_nested_config_is_a_source_error(sandbox: Sandbox) -> None:
    layer = tar_of([("f", b"x")])
    nested = b'{"os": "linux", "architecture": "amd64", "x": ' + b"[" * 100_000 + b"]" * 100_000
    docker_archive(sandbox.work / "n.tar", [layer], config_blob=nested + b"}")
    outcome = sandbox.run("inspect", "docker-archive:n.tar")
    sandbox.check(outcome, [4], says=["bad image config", "nests too deeply"])


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"rootfs": []}, "rootfs is not an object"),
        ({"rootfs": {"diff_ids": "sha256:x"}}, "rootfs.diff_ids is not an array"),
        ({"rootfs": {"diff_ids": ["sha256:" + "A" * 64]}}, "rootfs.diff_ids[0]: "),
        ({"config": {"User": 0}}, "config.User is not a string"),
        ({"config": {"WorkingDir": ["/"]}}, "config.WorkingDir is not a string"),
        ({"config": {"Env": ["A=1", 2]}}, "config.Env[1] is not a string"),
        ({"config": {"Labels": {"a": None}}}, 'config.Labels["a"] is not a string'),
        ({"config": {"Cmd": "sh"}}, "config.Cmd is not an array"),
        ({"history": ["x"]}, "history[0] is not an object"),
        ({"history": [{"created_by": 1}]}, "history[0].created_by is not a string"),
        ({"os": 1}, "os is not a string"),
    ],
)
def test_config_fields_of_the_wrong_type_are_source_errors(
    sandbox: Sandbox, change: dict[str, object], says: str
) -> None:
    layer = tar_of([("f", b"x")])
    value: dict[str, object] = {
        "os": "linux",
        "architecture": "amd64",
        "rootfs": {"diff_ids": [sha(layer)]},
    }
    value.update(change)
    docker_archive(sandbox.work / "c.tar", [layer], config_blob=json.dumps(value).encode())
    outcome = sandbox.run("inspect", "docker-archive:c.tar")
    sandbox.check(outcome, [4], says=["bad image config", says])


def test_a_symlink_chain_in_a_layer_ends(sandbox: Sandbox) -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, target in (("etc/os-release", "a"), ("etc/a", "b"), ("etc/b", "a")):
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    docker_archive(sandbox.work / "l.tar", [raw.getvalue()])
    outcome = sandbox.run("--format", "json", "inspect", "docker-archive:l.tar")
    sandbox.check(outcome, [0])
    assert json.loads(outcome.out)["os"] is None


def test_a_layer_path_is_never_a_file_outside(sandbox: Sandbox) -> None:
    """Links out of the root resolve inside it (a chroot's view), whatever a layer says."""
    target = sandbox.outside / "sentinel"
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("var/lib/dpkg/status")
        info.type, info.linkname = tarfile.SYMTYPE, str(target)
        tar.addfile(info)
    docker_archive(sandbox.work / "o.tar", [raw.getvalue()])
    outcome = sandbox.run("--format", "json", "inspect", "docker-archive:o.tar")
    sandbox.check(outcome, [0])
    assert json.loads(outcome.out)["deb-packages"] == []
