"""Pure parts of the Python layer: page parsers, target tags, zip member reads, metadata."""

from __future__ import annotations

import io
import json
import zipfile

from packaging.tags import Tag

from reprolock.model import Platform, PythonVersion
from reprolock.resolve.python import wheelzip
from reprolock.resolve.python.metadata import parse_metadata
from reprolock.resolve.python.pages import parse_html_page, parse_json_page, parse_page
from reprolock.resolve.python.target import PythonTarget


def _keep(_: str) -> bool:
    return True


def test_json_page() -> None:
    body = json.dumps(
        {
            "meta": {"api-version": "1.1"},
            "name": "x",
            "files": [
                {
                    "filename": "x-1.0-py3-none-any.whl",
                    "url": "../../f/x-1.0-py3-none-any.whl",
                    "hashes": {"sha256": "ab" * 32},
                    "requires-python": ">=3.8",
                    "yanked": "broken",
                    "upload-time": "2024-05-01T10:00:00.123456Z",
                    "size": 10,
                    "core-metadata": {"sha256": "cd" * 32},
                },
                {
                    "filename": "x-1.0.tar.gz",
                    "url": "https://other/x-1.0.tar.gz",
                    "hashes": {},
                    "yanked": False,
                    "data-dist-info-metadata": True,
                },
            ],
        }
    ).encode()
    first, second = parse_json_page(
        body, page_url="https://idx/simple/x/", index="https://idx/simple", keep=_keep
    )
    assert first.url == "https://idx/f/x-1.0-py3-none-any.whl"
    assert first.sha256 == "ab" * 32
    assert first.yanked == "broken"
    assert first.metadata == "cd" * 32
    assert first.upload_time is not None and first.upload_time.year == 2024
    assert second.sha256 is None and second.yanked is None and second.metadata is True


def test_html_page() -> None:
    whl1, whl2 = "x-1.0-py3-none-any.whl", "x-2.0-py3-none-any.whl"
    body = (
        '<html><head><base href="https://files.example/"></head><body>\n'
        f'<a href="p/{whl1}#sha256=ABAB" data-requires-python="&gt;=3.8">{whl1}</a>\n'
        f'<a href="p/{whl2}#sha256={"ef" * 32}" data-yanked=""\n'
        f'   data-core-metadata="sha256={"12" * 32}">{whl2}</a>\n'
        '<a href="/elsewhere">not a file</a></body></html>'
    ).encode()
    files = parse_html_page(
        body, page_url="https://idx/simple/x/", index="i", keep=lambda n: n.endswith(".whl")
    )
    assert [f.filename for f in files] == ["x-1.0-py3-none-any.whl", "x-2.0-py3-none-any.whl"]
    assert files[0].url == "https://files.example/p/x-1.0-py3-none-any.whl"
    assert files[0].sha256 is None  # "ABAB" is not a sha256
    assert files[0].requires_python == ">=3.8"
    assert files[1].sha256 == "ef" * 32
    assert files[1].yanked == ""
    assert files[1].metadata == "12" * 32


def test_page_dispatch_on_media_type() -> None:
    body = b'{"files": []}'
    assert (
        parse_page(body, "application/vnd.pypi.simple.v1+json", page_url="u", index="i", keep=_keep)
        == []
    )
    assert (
        parse_page(
            b"<html></html>", "text/html; charset=utf-8", page_url="u", index="i", keep=_keep
        )
        == []
    )


def test_target_tags_follow_the_target() -> None:
    arm = PythonTarget(python=PythonVersion.parse("3.11"), platform=Platform.parse("linux/arm64"))
    priority = arm.tag_priority
    assert Tag("cp311", "cp311", "manylinux_2_17_aarch64") in priority
    assert Tag("cp311", "cp311", "manylinux2014_aarch64") in priority
    assert Tag("cp311", "cp311", "manylinux_2_17_x86_64") not in priority
    assert Tag("cp311", "cp311", "manylinux_2_31_aarch64") not in priority  # glibc 2.28
    assert Tag("cp312", "cp312", "manylinux_2_17_aarch64") not in priority
    assert Tag("py3", "none", "any") in priority
    assert (
        priority[Tag("cp311", "cp311", "manylinux_2_28_aarch64")]
        < priority[Tag("cp311", "abi3", "manylinux_2_28_aarch64")]
        < priority[Tag("py3", "none", "any")]
    )
    amd = PythonTarget(
        python=PythonVersion.parse("3.12.4"), platform=Platform.parse("amd64"), glibc=(2, 35)
    )
    assert Tag("cp312", "cp312", "manylinux_2_35_x86_64") in amd.tag_priority
    assert Tag("cp312", "cp312", "manylinux1_x86_64") in amd.tag_priority
    assert amd.marker_environment()["python_full_version"] == "3.12.4"
    assert amd.marker_environment()["platform_machine"] == "x86_64"


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_read_member_with_few_ranges() -> None:
    blob = bytes(range(256)) * 40_000  # ~10 MB, incompressible enough
    data = _zip({"x/blob.bin": blob, "x-1.0.dist-info/METADATA": b"Name: x\n"})
    calls: list[tuple[int, int]] = []

    def fetch(start: int, end: int) -> bytes:
        calls.append((start, end))
        return data[start:end]

    tail = data[-65536:]
    member = wheelzip.read_member(len(data), tail, fetch, wheelzip.is_metadata)
    assert member == b"Name: x\n"
    assert len(calls) <= 1  # the central directory and this member sit in the tail


def test_read_member_far_from_the_tail() -> None:
    data = _zip(
        {
            "x-1.0.dist-info/METADATA": b"Name: x\n",
            **{f"x/{i}.bin": bytes([i % 256]) * 5000 + bytes(range(256)) * 300 for i in range(50)},
        }
    )
    fetched: list[tuple[int, int]] = []

    def fetch(start: int, end: int) -> bytes:
        fetched.append((start, end))
        return data[start:end]

    member = wheelzip.read_member(len(data), data[-4096:], fetch, wheelzip.is_metadata)
    assert member == b"Name: x\n"
    assert 1 <= len(fetched) <= 3


def test_metadata_parse() -> None:
    meta = parse_metadata(
        b"Metadata-Version: 2.1\nName: Foo_Bar\nVersion: 1.0\nRequires-Python: >=3.9\n"
        b"Requires-Dist: numpy>=1.26\nRequires-Dist: rich; extra == 'cli'\n"
        b"Requires-Dist: this is not valid!!\nProvides-Extra: CLI\n\nlong description\n"
    )
    assert meta.name == "foo-bar"
    assert [str(r) for r in meta.requires_dist] == ["numpy>=1.26", 'rich; extra == "cli"']
    assert meta.invalid == ("this is not valid!!",)
    assert meta.provides_extra == frozenset({"cli"})
    assert meta.requires_python == ">=3.9"
