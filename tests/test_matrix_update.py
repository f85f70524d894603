"""``reprolock matrix update`` against a loopback index serving torch wheels whose METADATA is
the real one frozen in tests/data/torch-metadata: it regenerates the committed rows of
matrices/requires.toml exactly, and reports what differs."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path
from typing import Any

from tests.conftest import Cli

ROOT = Path(__file__).resolve().parent.parent
FROZEN = Path(__file__).parent / "data" / "torch-metadata"


def _serve(index_server: Any, tmp_path: Path) -> str:
    index = index_server.add_index("frozen", tmp_path / "frozen")
    for path in sorted(FROZEN.glob("torch-*.METADATA")):
        version = path.name.removeprefix("torch-").removesuffix(".METADATA")
        index.wheel(
            "torch",
            version,
            tag="cp311-cp311-manylinux_2_28_x86_64",
            metadata=path.read_bytes(),
        )
    return str(index_server.url("frozen"))


def _rows(text: str) -> dict[tuple[str, str], list[str]]:
    return {
        (r["version"], r["platform"]): r["requires"]
        for r in tomllib.loads(text).get("requires", ())
        if r["package"] == "torch"
    }


def test_update_regenerates_the_committed_torch_rows(
    cli: Cli, tmp_path: Path, index_server: Any
) -> None:
    url = _serve(index_server, tmp_path)
    folder = tmp_path / "matrices"
    shutil.copytree(ROOT / "matrices", folder)
    committed = (folder / "requires.toml").read_text()
    cache = str(tmp_path / "cache")
    run = cli(
        "--cache-dir",
        cache,
        "matrix",
        "update",
        "--package",
        "torch",
        "--index",
        url,
        "--matrices",
        str(folder),
        "--write",
    )
    assert run.code == 0, run.err
    new = _rows((folder / "requires.toml").read_text())
    old = _rows(committed)
    amd64 = {k: v for k, v in new.items() if k[1] == "linux/amd64"}
    assert amd64, "no rows regenerated"
    # Every frozen release's row equals the committed one (read from PyPI).
    assert amd64 == {k: old[k] for k in amd64}

    # Rows of the packages the update did not read are kept as they were.
    def others(text: str) -> list[dict[str, object]]:
        return [r for r in tomllib.loads(text)["requires"] if r["package"] != "torch"]

    assert others((folder / "requires.toml").read_text()) == others(committed)


def test_update_reports_a_disagreement_and_exits_1(
    cli: Cli, tmp_path: Path, index_server: Any
) -> None:
    url = _serve(index_server, tmp_path)
    folder = tmp_path / "matrices"
    shutil.copytree(ROOT / "matrices", folder)
    requires = folder / "requires.toml"
    requires.write_text(
        requires.read_text().replace("nvidia-cudnn-cu12==9.1.0.70", "nvidia-cudnn-cu12==9.0.0.1")
    )
    run = cli(
        "--cache-dir",
        str(tmp_path / "cache"),
        "matrix",
        "update",
        "--package",
        "torch",
        "--index",
        url,
        "--matrices",
        str(folder),
    )
    assert run.code == 1, run.err
    assert "-" in run.out and "nvidia-cudnn-cu12==9.0.0.1" in run.out
    assert "differs from what the index says" in run.err
