"""Properties of the image-side parsers over any input: a value or the one documented
error (ValueError for the OCI model, SourceError for layers), never another exception.
The profile (tests/conftest.py) fixes the seed and keeps the budget small."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import unicodedata
from typing import Any

import zstandard
from hypothesis import given
from hypothesis import strategies as st

from reprolock.errors import SourceError
from reprolock.image.scan import Entry, LayerScan, scan_layer
from reprolock.image.view import FilesystemView
from reprolock.inventory.dpkg import parse_status
from reprolock.inventory.model import PythonDist
from reprolock.inventory.os_release import parse_os_release
from reprolock.inventory.python_dists import read_dist
from reprolock.model.oci import Index, Manifest, parse_config, parse_manifest

DIGEST = "sha256:" + "a" * 64


def has_control(text: str) -> bool:
    """Control characters, line separators, format characters (bidi overrides)."""
    return any(unicodedata.category(c) in ("Cc", "Zl", "Zp", "Cf") for c in text)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.just(DIGEST),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


def _descriptors(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.fixed_dictionaries(
        {"digest": st.just(DIGEST) | values, "size": st.integers(-1, 2**70) | values},
        optional={
            "mediaType": st.text(max_size=10) | values,
            "platform": values,
            "annotations": values,
        },
    )


manifests = st.fixed_dictionaries(
    {},
    optional={
        "mediaType": st.sampled_from(
            [
                "application/vnd.oci.image.manifest.v1+json",
                "application/vnd.oci.image.index.v1+json",
            ]
        )
        | json_values,
        "config": _descriptors(json_values) | json_values,
        "layers": st.lists(_descriptors(json_values), max_size=3) | json_values,
        "manifests": st.lists(_descriptors(json_values), max_size=3) | json_values,
    },
)

configs = st.fixed_dictionaries(
    {},
    optional={
        "os": st.just("linux") | json_values,
        "architecture": json_values,
        "variant": json_values,
        "config": st.fixed_dictionaries(
            {},
            optional={
                key: json_values | st.lists(st.text(max_size=8) | json_values, max_size=3)
                for key in ("Env", "User", "Labels", "Entrypoint", "Cmd", "WorkingDir")
            },
        )
        | json_values,
        "rootfs": st.fixed_dictionaries(
            {},
            optional={
                "diff_ids": st.lists(st.just(DIGEST) | json_values, max_size=3) | json_values
            },
        )
        | json_values,
        "history": st.lists(json_values, max_size=3) | json_values,
    },
)


def _json(value: object) -> bytes:
    return json.dumps(value).encode()


@given(st.binary(max_size=300) | manifests.map(_json) | json_values.map(_json))
def test_parse_manifest_gives_a_document_or_value_error(data: bytes) -> None:
    try:
        document = parse_manifest(data, "")
    except ValueError:
        return
    assert isinstance(document, Manifest | Index)


@given(st.binary(max_size=300) | configs.map(_json) | json_values.map(_json))
def test_parse_config_gives_a_config_or_value_error(data: bytes) -> None:
    try:
        config = parse_config(data)
    except ValueError:
        return
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in config.labels + config.env)
    assert all(str(d).startswith("sha256:") for d in config.diff_ids)


def test_deep_nesting_and_huge_numbers_are_value_errors() -> None:
    for data in (b"[" * 100_000, b'{"a":' * 50_000, b"9" * 5000, b"NaN", b"\xff{}"):
        for parse in (lambda d: parse_manifest(d, ""), parse_config):
            try:
                parse(data)
            except ValueError:
                continue
            raise AssertionError(f"{data[:20]!r} was accepted")


stanza_lines = st.lists(
    st.sampled_from(["Package: p", "Version: 1", "Status: install ok installed", " cont", "", ":"])
    | st.text(max_size=30),
    max_size=12,
)


@given(st.text(max_size=400) | stanza_lines.map("\n".join), st.booleans())
def test_parse_status_never_raises(text: str, distroless: bool) -> None:
    for package in parse_status(text, path="/s", layer=0, distroless=distroless):
        assert package.name and package.version
        assert not has_control(package.name + package.version)


@given(st.text(max_size=400))
def test_parse_os_release_never_raises(text: str) -> None:
    parse_os_release(text, path="/etc/os-release", layer=0)


SP = "usr/lib/python3/dist-packages"
INFO = f"{SP}/x-1.dist-info"


def _view(files: dict[str, bytes]) -> FilesystemView:
    scan = LayerScan(index=0)
    for name, data in files.items():
        scan.entries.append(Entry(path=name, kind="file", size=len(data), content=data))
    return FilesystemView.merge([scan])


record_rows = st.lists(
    st.lists(
        st.text(max_size=12)
        | st.sampled_from(
            ["sha256=" + "A" * 43, "sha256=", "md5=x", f"{INFO}/METADATA", "../../x"]
        ),
        max_size=4,
    ).map(",".join),
    max_size=6,
).map(lambda rows: "\n".join(rows).encode())


@given(
    metadata=st.binary(max_size=200)
    | st.text(max_size=100).map(lambda t: f"Name: {t}\nVersion: 1\n".encode()),
    record=st.binary(max_size=200) | record_rows,
    installer=st.binary(max_size=20),
    direct_url=st.binary(max_size=50) | json_values.map(_json),
    wheel=st.binary(max_size=50),
)
def test_dist_info_files_never_crash_the_cataloger(
    metadata: bytes, record: bytes, installer: bytes, direct_url: bytes, wheel: bytes
) -> None:
    view = _view(
        {
            f"{INFO}/METADATA": metadata,
            f"{INFO}/RECORD": record,
            f"{INFO}/INSTALLER": installer,
            f"{INFO}/direct_url.json": direct_url,
            f"{INFO}/WHEEL": wheel,
        }
    )
    dist = read_dist(view, SP, "x-1.dist-info", check_record=True)
    assert dist is None or isinstance(dist, PythonDist)
    if dist is not None:
        for text in (dist.name, dist.version, dist.installer or "", *dist.wheel_tags):
            assert not has_control(text)


def _tar(members: list[tuple[str, bytes]]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def _mangle(data: bytes, cut: int, flips: list[int]) -> bytes:
    out = bytearray(data[: max(0, len(data) - cut)])
    for position in flips:
        if out:
            out[position % len(out)] ^= 0x5A
    return bytes(out)


small_tars = st.lists(
    st.tuples(
        st.text(min_size=1, max_size=30).filter(lambda n: "\x00" not in n),
        st.binary(max_size=100),
    ),
    max_size=3,
).map(_tar)

layers = st.one_of(
    st.binary(max_size=2000),
    st.builds(_mangle, small_tars, st.integers(0, 600), st.lists(st.integers(0, 4000), max_size=3)),
    st.builds(
        _mangle,
        small_tars.map(lambda t: gzip.compress(t, mtime=0)),
        st.integers(0, 50),
        st.lists(st.integers(0, 400), max_size=2),
    ),
    st.builds(
        _mangle,
        small_tars.map(zstandard.ZstdCompressor().compress),
        st.integers(0, 50),
        st.lists(st.integers(0, 400), max_size=2),
    ),
)


@given(layers)
def test_scan_layer_gives_a_scan_or_source_error(data: bytes) -> None:
    try:
        scan = scan_layer(
            io.BytesIO(data),
            0,
            what="layer",
            want_content=lambda _p: True,
            want_hash=lambda _p: True,
        )
    except SourceError:
        return
    assert scan.compressed_size == len(data)
    FilesystemView.merge([scan])


PYC = "opt/venv/lib/python3.11/site-packages/p/__pycache__/m.cpython-311.pyc"


@given(
    head=st.binary(max_size=20) | st.binary(min_size=4, max_size=4).map(lambda b: b + bytes(12)),
    source=st.none() | st.binary(max_size=40),
    mtime=st.integers(-(2**40), 2**40),
    hashes=st.lists(st.binary(max_size=8), max_size=2),
)
def test_a_pyc_header_gives_a_verdict(
    head: bytes, source: bytes | None, mtime: int, hashes: list[bytes]
) -> None:
    from reprolock.inventory.pyc import check

    scan = LayerScan(index=0)
    pyc = Entry(path=PYC, kind="file", size=len(head), head=head)
    scan.entries.append(pyc)
    if source is not None:
        py = PYC.replace("__pycache__/m.cpython-311.pyc", "m.py")
        entry = Entry(path=py, kind="file", size=len(source), mtime=mtime)
        entry.source_hashes = tuple(hashes)
        scan.entries.append(entry)
    view = FilesystemView.merge([scan])
    node = view.node(PYC)
    assert node is not None
    assert check(view, PYC, node).verdict in ("matches", "stale", "orphan", "unknown")


dpkg_text = st.binary(max_size=200) | st.lists(
    st.sampled_from(
        ["0" * 32, "usr/bin/x", "/usr/bin/x", "../../etc", "path-exclude=/usr/*", ":", " "]
    ),
    max_size=12,
).map(lambda parts: " \n".join(parts).encode())


@given(
    md5sums=dpkg_text,
    diversions=dpkg_text,
    config=dpkg_text,
    status=st.text(max_size=300) | stanza_lines.map("\n".join),
)
def test_dpkg_records_never_crash_the_integrity_check(
    md5sums: bytes, diversions: bytes, config: bytes, status: str
) -> None:
    from reprolock.inventory.dpkg_files import check_dpkg
    from reprolock.inventory.model import DpkgIntegrity

    view = _view(
        {
            "var/lib/dpkg/info/x:amd64.md5sums": md5sums,
            "var/lib/dpkg/diversions": diversions,
            "etc/dpkg/dpkg.cfg.d/x": config,
            "usr/bin/x": b"x",
        }
    )
    found = check_dpkg(view, status)
    assert isinstance(found, DpkgIntegrity)
    assert found.checked <= found.files
