"""The pure parts of building sdists: names, [build-system], hostile archives, selection."""

from __future__ import annotations

import gzip
import io
import tarfile
import zipfile
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name
from packaging.version import Version

from reprolock.errors import SourceError
from reprolock.limits import DEFAULT, install
from reprolock.model import Platform, PythonVersion
from reprolock.resolve.python.index import DistFile
from reprolock.resolve.python.sdist import (
    LEGACY_BACKEND,
    parse_build_system,
    read_sdist,
)
from reprolock.resolve.python.select import Refusal, sdist_version, select_core
from reprolock.resolve.python.target import PythonTarget


def _tar(members: dict[str, bytes | None], *, links: dict[str, str] | None = None) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    return out.getvalue()


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("antlr4_python3_runtime-4.9.3.tar.gz", "4.9.3"),  # PEP 625
        ("antlr4-python3-runtime-4.9.3.tar.gz", "4.9.3"),  # as uploaded before PEP 625
        ("Antlr4-Python3-Runtime-4.9.3.zip", "4.9.3"),  # a legacy .zip
        ("antlr4-python3-runtime-4.9.3.exe", None),
        ("other-4.9.3.tar.gz", None),
        ("antlr4-python3-runtime-notaversion.zip", None),
    ],
)
def test_sdist_names(filename: str, expected: str | None) -> None:
    found = sdist_version(canonicalize_name("antlr4-python3-runtime"), filename)
    assert found == (Version(expected) if expected else None)


def test_build_system_defaults_and_declarations() -> None:
    legacy = parse_build_system(None, "x-1.tar.gz")
    assert (legacy.requires, legacy.backend, legacy.declared) == (
        ("setuptools>=40.8.0",),
        LEGACY_BACKEND,
        False,
    )
    assert parse_build_system(b"[project]\nname = 'x'\n", "x-1.tar.gz") == legacy
    only_requires = parse_build_system(b'[build-system]\nrequires = ["setuptools", "wheel"]\n', "x")
    assert only_requires.backend == LEGACY_BACKEND
    assert only_requires.requires == ("setuptools", "wheel")
    declared = parse_build_system(
        b'[build-system]\nrequires = ["hatchling>=1.21"]\nbuild-backend = "hatchling.build"\n'
        b'backend-path = ["_build"]\n',
        "x",
    )
    assert declared.backend == "hatchling.build" and declared.backend_path == ("_build",)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"[build-system\n", "pyproject.toml is not valid TOML"),
        (b'[build-system]\nrequires = "setuptools"\n', "is not a list of strings"),
        (b'[build-system]\nrequires = ["not a requirement!"]\n', "not PEP 508"),
        (b'[build-system]\nrequires = []\nbuild-backend = "os; rm"\n', "is not module:object"),
        (b'[build-system]\nrequires = []\nbackend-path = ["../up"]\n', "folders inside it"),
    ],
)
def test_broken_build_system_is_named(text: bytes, message: str) -> None:
    with pytest.raises(SourceError) as caught:
        parse_build_system(text, "bad-1.0.tar.gz")
    assert caught.value.message.startswith("bad-1.0.tar.gz: ")
    assert message in caught.value.message
    assert "no-build" in (caught.value.hint or "")


def test_read_sdist_finds_the_facts() -> None:
    data = _tar(
        {
            "pkg-1.0/": None,
            "pkg-1.0/PKG-INFO": b"Metadata-Version: 2.1\nName: pkg\nVersion: 1.0\n",
            "pkg-1.0/setup.py": b"from setuptools import setup, Extension\n"
            b"setup(ext_modules=[Extension('pkg._c', ['pkg/_c.c'])])\n",
            "pkg-1.0/pkg/_c.c": b"int x;\n",
        }
    )
    facts = read_sdist(data, "pkg-1.0.tar.gz")
    assert facts.top == "pkg-1.0"
    assert facts.build_system.backend == LEGACY_BACKEND
    assert facts.compiles == "its setup.py declares extension modules (ext_modules)"
    pure = read_sdist(_tar({"pkg-1.0/pkg/__init__.py": b""}), "pkg-1.0.tar.gz")
    assert pure.compiles is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_tar({"pkg-1.0/a": b""}, links={"pkg-1.0/evil": "/etc/passwd"}), "is a link"),
        (_tar({"pkg-1.0/../../escape": b"x"}), "climbs out"),
        (_tar({"/etc/cron.d/x": b"x"}), "absolute or unsafe path"),
        (_tar({"pkg-1.0/a": b"", "other-2.0/b": b""}), "more than one top folder"),
        (b"\x1f\x8b\x08\x00garbage", "pkg-1.0.tar.gz: corrupt compressed data"),
    ],
)
def test_hostile_archives_are_refused(data: bytes, message: str) -> None:
    with pytest.raises(SourceError) as caught:
        read_sdist(data, "pkg-1.0.tar.gz")
    assert message in caught.value.message, caught.value.message


def test_member_count_is_bounded() -> None:
    import dataclasses

    install(dataclasses.replace(DEFAULT, sdist_members=3))
    try:
        with pytest.raises(SourceError) as caught:
            read_sdist(_tar({f"pkg-1.0/f{i}": b"" for i in range(5)}), "pkg-1.0.tar.gz")
    finally:
        install(DEFAULT)
    assert "REPROLOCK_LIMIT_SDIST_MEMBERS" in (caught.value.hint or "")


def test_zip_sdists_are_read_too() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("pkg-1.0/pyproject.toml", '[build-system]\nrequires = ["flit_core"]\n')
    facts = read_sdist(out.getvalue(), "pkg-1.0.zip")
    assert facts.build_system.requires == ("flit_core",)


def _file(filename: str, sha: str | None = "a" * 64, **kw: object) -> DistFile:
    return DistFile(
        filename=filename,
        url=f"https://x/{filename}",
        index="https://x",
        sha256=sha,
        **kw,  # type: ignore[arg-type]
    )


def test_selection_builds_only_where_no_wheel_fits() -> None:
    target = PythonTarget(
        python=PythonVersion.parse("3.11"), platform=Platform.parse("linux/amd64")
    )
    files = [
        _file("p-1.0-py3-none-any.whl"),
        _file("p-1.0.tar.gz"),
        _file("p-2.0.tar.gz"),
        _file("p-2.0.zip"),
        _file("p-3.0.tar.gz", requires_python=">=3.12"),
        _file("p-4.0.tar.gz", sha=None),
    ]
    name = canonicalize_name("p")
    refused = select_core(name, files, target)
    assert [str(r.version) for r in refused.releases] == ["1.0"]
    core = select_core(name, files, target, build=True)
    chosen = {str(r.version): r.wheel.filename for r in core.releases}
    assert chosen == {"2.0": "p-2.0.tar.gz", "1.0": "p-1.0-py3-none-any.whl"}
    assert (
        Version("3.0"),
        "requires Python >=3.12, the target is 3.11.0",
        Refusal.REQUIRES_PYTHON,
    ) in core.rejected
    assert (
        Version("4.0"),
        "p-4.0.tar.gz has no sha256 on the index, so it is not built",
        Refusal.UNHASHED,
    ) in core.rejected


def test_unpacking_streams_files_and_refuses_a_truncated_one(tmp_path: Path) -> None:
    """Files are copied to disk a chunk at a time (a large member is never held whole), and
    an archive cut inside a file is a SourceError naming it, not a traceback; a member
    whose pyproject.toml is cut short is refused by read_sdist the same way."""
    import os

    from reprolock.pep517.unpack import unpack

    big = os.urandom(3 << 20)  # three chunks, incompressible
    data = _tar({"pkg-1.0/": None, "pkg-1.0/blob.bin": big, "pkg-1.0/pyproject.toml": b""})
    tree = unpack(data, "pkg-1.0.tar.gz", tmp_path / "ok")
    assert (tree / "blob.bin").read_bytes() == big
    cut = data[: len(data) // 2]
    with pytest.raises(SourceError) as caught:
        unpack(cut, "pkg-1.0.tar.gz", tmp_path / "cut")
    assert caught.value.message == (
        "pkg-1.0.tar.gz: corrupt compressed data (the compressed stream is truncated)."
    )
    plain = gzip.decompress(data)  # an uncompressed tar cut inside blob.bin
    with pytest.raises(SourceError) as caught:
        unpack(plain[: 2 << 20], "pkg-1.0.tar.gz", tmp_path / "plain")
    assert caught.value.message.startswith(
        "pkg-1.0.tar.gz is not a safe, readable source distribution: member 'blob.bin'"
    ), caught.value.message
    with pytest.raises(SourceError):
        read_sdist(_tar({"pkg-1.0/pyproject.toml": b"x" * 100_000})[:2_000], "pkg-1.0.tar.gz")
