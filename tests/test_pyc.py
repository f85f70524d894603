"""Bytecode against its source: pycs an installer rewrote are not drift; pycs that match no
source are (`pyc-stale`, `pyc-orphan`), listed in RECORD or not; deleted pycs are a cache
gone.  Images are `docker save` archives of layers written here; files have mtime 0."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reprolock.inventory.pyc import MAGIC, source_keys, source_of
from tests.checkfiles import SP, archive, dist, pyc_hash, pyc_timestamp, write_lock
from tests.conftest import Run
from tests.ociregistry import LayerFiles

Cli = Callable[..., Run]
SOURCE = b"def f():\n    return 1\n"
SHIPPED = pyc_timestamp(b"# another build's source\n")  # what a wheel shipped
CACHE = "pkg/__pycache__/mod.cpython-311.pyc"


def test_the_magic_table_knows_the_running_interpreter() -> None:
    feature = f"{sys.version_info.major}.{sys.version_info.minor}"
    if feature not in MAGIC:
        pytest.skip(f"CPython {feature} is not in the table yet")
    assert MAGIC[feature] == int.from_bytes(importlib.util.MAGIC_NUMBER[:2], "little")


def test_sources_and_keys() -> None:
    assert source_of(CACHE) == "pkg/mod.py"
    assert source_of("pkg/__pycache__/mod.cpython-311.opt-1.pyc") == "pkg/mod.py"
    assert source_of("pkg/mod.pyc") is None
    assert source_keys(f"{SP}/pkg/mod.py") == (int.from_bytes(b"\xa7\r\r\n", "little"),)
    assert source_keys("usr/lib/python3/dist-packages/pkg/mod.py") == ()
    assert source_keys("app/mod.py") is None


def _inspect(cli: Cli, image: str) -> dict[str, Any]:
    run = cli("--format", "json", "inspect", image)
    assert run.code == 0, run.err
    [env] = json.loads(run.out)["python"]
    [package] = env["packages"]
    result: dict[str, Any] = package
    return result


def _installed(pyc: bytes, **more: bytes) -> list[LayerFiles]:
    """A base, then pip's install: the wheel shipped ``SHIPPED`` at ``CACHE``, RECORD has
    its hash, and the pyc in the image is ``pyc`` (what byte-compiling wrote)."""
    files = {"pkg/__init__.py": b"", "pkg/mod.py": SOURCE, CACHE: SHIPPED, **more}
    layer = dist("pkg", "1.0", files)
    layer[f"{SP}/{CACHE}"] = pyc
    return [{"etc/os-release": b"ID=debian\n"}, {"opt/venv/pyvenv.cfg": b"", **layer}]


@pytest.mark.parametrize(
    ("pyc", "issues", "rewritten"),
    [
        (pyc_timestamp(SOURCE), [], 1),  # recompiled by the installer: matches its source
        (pyc_hash(SOURCE, checked=True), [], 1),
        (pyc_hash(SOURCE, checked=False), [], 1),
        (SHIPPED, [], 0),  # untouched: RECORD's own hash
        (pyc_timestamp(SOURCE, mtime=12345), [("pyc-stale", True, False)], 0),
        (pyc_timestamp(SOURCE, size=3), [("pyc-stale", True, False)], 0),
        (pyc_hash(SOURCE, checked=True, of=b"x = 2\n"), [("pyc-stale", True, False)], 0),
        # an unchecked hash-based pyc is imported without looking at its source
        (pyc_hash(SOURCE, checked=False, of=b"x = 2\n"), [("pyc-stale", True, True)], 0),
        (b"\x00" * 40, [("pyc-stale", True, False)], 0),
    ],
    ids=[
        "timestamp",
        "checked-hash",
        "unchecked-hash",
        "as-shipped",
        "wrong-mtime",
        "wrong-size",
        "checked-hash-of-another-source",
        "unchecked-hash-of-another-source",
        "garbage",
    ],
)
def test_a_rewritten_pyc_is_judged_by_its_source(
    cli: Cli,
    tmp_path: Path,
    pyc: bytes,
    issues: list[tuple[str, bool, bool]],
    rewritten: int,
) -> None:
    package = _inspect(cli, archive(tmp_path, "p", *_installed(pyc)))
    found = [(i["problem"], i["listed"], i["used"]) for i in package["record-issues"]]
    assert found == issues
    assert package["bytecode-rewritten"] == rewritten
    if issues:
        [issue] = package["record-issues"]
        assert (issue["path"], issue["layer"]) == (CACHE, 1)


def test_orphans_and_pycs_not_in_record(cli: Cli, tmp_path: Path) -> None:
    """Later layers: a source deleted (its pyc an orphan), a stale pyc pip never listed (a
    warning: Python ignores it), a sourceless m.pyc (Python imports it), and RECORD's own
    pyc deleted (a cache gone: nothing)."""
    layers = _installed(pyc_timestamp(SOURCE), **{"pkg/other.py": b"y = 1\n"})
    layers.append(
        {
            f"{SP}/pkg/.wh.mod.py": b"",  # the source goes; its pyc stays
            f"{SP}/pkg/__pycache__/other.cpython-311.pyc": pyc_timestamp(b"y = 22\n"),
            f"{SP}/pkg/evil.pyc": pyc_timestamp(b"import os\n"),
        }
    )
    package = _inspect(cli, archive(tmp_path, "o", *layers))
    found = {
        (i["path"], i["problem"], i["listed"], i["used"], i["layer"])
        for i in package["record-issues"]
    }
    assert found == {
        ("pkg/mod.py", "missing", True, False, 2),
        (CACHE, "pyc-orphan", True, False, 1),
        ("pkg/__pycache__/other.cpython-311.pyc", "pyc-stale", False, False, 2),
        ("pkg/evil.pyc", "pyc-orphan", False, True, 2),
    }
    layers[2] = {f"{SP}/pkg/__pycache__/.wh.mod.cpython-311.pyc": b""}
    assert _inspect(cli, archive(tmp_path, "d", *layers))["record-issues"] == []


def test_verify_severities_and_where(cli: Cli, tmp_path: Path) -> None:
    """A listed pyc that matches no source, or one Python imports anyway, fails verify; an
    unlisted stale one is a warning; `where` names the layer that changed the file."""
    layers = _installed(pyc_timestamp(SOURCE, mtime=7))
    layers.append(
        {
            f"{SP}/pkg/__pycache__/__init__.cpython-311.pyc": pyc_timestamp(b"z = 3\n"),
            f"{SP}/pkg/__init__.py": b"# edited later\n",
        }
    )
    lock = write_lock(tmp_path, {"pkg": "1.0"})
    image = archive(tmp_path, "v", *layers)
    run = cli("--format", "json", "verify", "image", image, "--lock", str(lock))
    assert run.code == 1, run.err
    found = {
        (f["kind"], f["subject"], f["severity"], f["where"])
        for f in json.loads(run.out)["findings"]
    }
    site = "/" + SP
    assert found == {
        ("pyc-stale", f"pkg:{CACHE}", "error", f"layer 1 {site}/{CACHE}"),
        (
            "pyc-stale",
            "pkg:pkg/__pycache__/__init__.cpython-311.pyc",
            "warning",
            f"layer 2 {site}/pkg/__pycache__/__init__.cpython-311.pyc",
        ),
        ("record-modified", "pkg:pkg/__init__.py", "error", f"layer 2 {site}/pkg/__init__.py"),
    }
