"""`reprolock diff`: lock vs lock, image vs image, lock vs image."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema

from reprolock.verify.diff import diff
from reprolock.verify.snapshot import Snapshot
from tests.conftest import Run
from tests.imagefiles import write_docker_archive
from tests.ociregistry import Image, LayerFiles
from tests.pyindex import IndexServer

Cli = Callable[..., Run]
SP = "opt/venv/lib/python3.11/site-packages"


SCHEMA = json.loads((Path(__file__).parent.parent / "schemas" / "diff.schema.json").read_text())


def _changes(run: Run) -> list[tuple[str, str, str, str | None, str | None]]:
    assert run.code == 0, run.err
    data: dict[str, Any] = json.loads(run.out)
    jsonschema.validate(data, SCHEMA)
    return [
        (c["section"], c["subject"], c["kind"], c["before"], c["after"]) for c in data["changes"]
    ]


def test_classification() -> None:
    venv = "/opt/venv (venv)"
    a = Snapshot(
        label="a",
        python={
            (venv, "torch"): ("2.5.1+cu121", "x"),
            (venv, "numpy"): ("1.26.4", "h1"),
            (venv, "old"): ("1.0", None),
            (venv, "same"): ("1.0", "h"),
            (venv, "wheel"): ("3.0", "h1"),
        },
        cuda={"driver-floor": "525.60.13"},
    )
    b = Snapshot(
        label="b",
        python={
            (venv, "torch"): ("2.5.1+cu124", "y"),
            (venv, "numpy"): ("2.1.0", "h2"),
            (venv, "new"): ("0.1", None),
            (venv, "same"): ("1.0", "h"),
            (venv, "wheel"): ("3.0", "h2"),
        },
        cuda={"driver-floor": "570.26"},
    )
    changes = {c.subject: c for c in diff(a, b)}
    assert changes["torch"].kind == "rebuilt"
    assert changes["torch"].note == "another build of 2.5.1 (cu121 → cu124)"
    assert (changes["numpy"].kind, changes["numpy"].level) == ("upgraded", "major")
    assert changes["old"].kind == "removed" and changes["new"].kind == "added"
    assert changes["wheel"].kind == "rebuilt"
    assert changes["wheel"].where == venv
    assert "same" not in changes
    assert changes["driver-floor"].note == (
        "driver floor moves from 525.60.13 to 570.26: hosts older than 570.26 can no longer run it"
    )
    assert [c.subject for c in diff(a, b, only=frozenset({"cuda"}))] == ["driver-floor"]


def _lock(cli: Cli, folder: Path, server: IndexServer, requirements: str) -> Path:
    folder.mkdir(exist_ok=True)
    (folder / "reprolock.toml").write_text(
        f'[environment]\npython = "3.11"\n[python]\nrequirements = {requirements}\n'
        f'[[python.index]]\nname = "local"\nurl = "{server.url("local")}"\ndefault = true\n'
    )
    run = cli("--cache-dir", str(folder / "cache"), "lock", "--spec", str(folder))
    assert run.code == 0, run.err
    return folder / "reprolock.lock"


def test_lock_against_lock(cli: Cli, tmp_path: Path, index_server: IndexServer) -> None:
    idx = index_server.add_index("local", tmp_path / "local")
    idx.wheel("alpha", "1.0")
    idx.wheel("beta", "1.0")
    first = _lock(cli, tmp_path / "one", index_server, '["alpha", "beta"]')
    idx.wheel("alpha", "1.1")
    idx.wheel("gamma", "0.1")
    second = _lock(cli, tmp_path / "two", index_server, '["alpha", "gamma"]')
    assert _changes(cli("--format", "json", "diff", str(first), str(second))) == [
        ("python", "alpha", "upgraded", "1.0", "1.1"),
        ("python", "beta", "removed", "1.0", None),
        ("python", "gamma", "added", None, "0.1"),
    ]
    run = cli("diff", str(first), str(first))
    assert run.out.endswith("no differences\n")
    run = cli("diff", str(first), str(second))
    assert "  ↑ alpha  upgraded 1.0 → 1.1 (minor)" in run.out
    run = cli("diff", str(first), str(second), "--report", "markdown")
    assert "| python | `alpha` | upgraded (minor) | 1.0 | 1.1 |  | /opt/venv (venv) |" in run.out
    run = cli("diff", str(first), str(second), "--report", "github")
    assert run.out.splitlines()[0] == (
        "::notice title=reprolock diff python::python alpha: upgraded 1.0 → 1.1 (minor) "
        "[/opt/venv (venv)]"
    )
    run = cli("diff", str(first), str(second), "--report", "junit")
    import xml.etree.ElementTree as ET

    assert ET.fromstring(run.out).get("failures") == "3"


def _image(packages: dict[str, str]) -> Image:
    layer: LayerFiles = {"etc/os-release": b"ID=debian\n", "opt/venv/pyvenv.cfg": b""}
    for name, version in packages.items():
        layer[f"{SP}/{name}-{version}.dist-info/METADATA"] = (
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\n".encode()
        )
    return Image(layers=[{"etc/hostname": b"base\n"}, layer])


def test_image_against_image_and_lock(cli: Cli, tmp_path: Path, index_server: IndexServer) -> None:
    write_docker_archive(tmp_path / "a.tar", _image({"alpha": "1.0", "beta": "1.0"}))
    write_docker_archive(tmp_path / "b.tar", _image({"alpha": "1.0+local", "beta": "2.0"}))
    assert _changes(
        cli(
            "--format",
            "json",
            "diff",
            f"docker-archive:{tmp_path / 'a.tar'}",
            f"docker-archive:{tmp_path / 'b.tar'}",
            "--only",
            "python",
        )
    ) == [
        ("python", "alpha", "rebuilt", "1.0", "1.0+local"),
        ("python", "beta", "upgraded", "1.0", "2.0"),
    ]
    idx = index_server.add_index("local", tmp_path / "local")
    idx.wheel("alpha", "1.0")
    idx.wheel("beta", "1.0")
    lock = _lock(cli, tmp_path / "proj", index_server, '["alpha", "beta"]')
    shutil.copy(lock, tmp_path / "copy.lock")
    assert (
        _changes(cli("--format", "json", "diff", str(lock), f"docker-archive:{tmp_path / 'a.tar'}"))
        == []
    )
    assert _changes(
        cli(
            "--format",
            "json",
            "diff",
            f"docker-archive:{tmp_path / 'b.tar'}",
            str(tmp_path / "copy.lock"),
        )
    ) == [
        ("python", "alpha", "rebuilt", "1.0+local", "1.0"),
        ("python", "beta", "downgraded", "2.0", "1.0"),
    ]
