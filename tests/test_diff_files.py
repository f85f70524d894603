"""`diff` sees what `verify` sees: files changed at the same version (with the layer that
changed them), every Python environment (a system-site or user-site copy is named with
where it is), dpkg files; a lock against an image leaves its base out, in one line;
`--exit-code` exits 1 on differences."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema

from tests.checkfiles import SP, archive, deb, dist, status, write_lock
from tests.conftest import Run
from tests.ociregistry import LayerFiles, layer_tar, sha

Cli = Callable[..., Run]
SCHEMA = json.loads((Path(__file__).parent.parent / "schemas" / "diff.schema.json").read_text())
ADAPTERS = b"class HTTPAdapter:\n    pass\n"
SYSTEM = "usr/local/lib/python3.11/dist-packages"
USER = "root/.local/lib/python3.11/site-packages"


def _base() -> LayerFiles:
    stanzas, layer = [], {}
    for name in ("libc6", "tool", "zlib1g"):
        stanza, files = deb(name, "1.0", {f"usr/bin/{name}": f"\x7fELF {name}\n".encode()})
        stanzas.append(stanza)
        layer.update(files)
    return {"etc/os-release": b"ID=debian\n", **layer, "var/lib/dpkg/status": status(*stanzas)}


def _app() -> LayerFiles:
    return {
        "opt/venv/pyvenv.cfg": b"",
        **dist(
            "requests", "2.32.3", {"requests/__init__.py": b"", "requests/adapters.py": ADAPTERS}
        ),
    }


def _diff(cli: Cli, a: str, b: str, *extra: str) -> tuple[dict[str, Any], list[tuple[Any, ...]]]:
    run = cli("--format", "json", "diff", a, b, *extra)
    assert run.code == 0, run.err
    data: dict[str, Any] = json.loads(run.out)
    jsonschema.validate(data, SCHEMA)
    return data, [
        (c["section"], c["subject"], c["kind"], c["after"], c["where"]) for c in data["changes"]
    ]


def test_a_file_edited_in_place_is_named_with_its_layer(cli: Cli, tmp_path: Path) -> None:
    clean = archive(tmp_path, "clean", _base(), _app())
    edits: LayerFiles = {f"{SP}/requests/adapters.py": ADAPTERS + b"# patched\n"}
    edits["usr/bin/tool"] = b"\x7fELF patched\n"
    tampered = archive(tmp_path, "tampered", _base(), _app(), edits)
    _, changes = _diff(cli, clean, tampered)
    assert changes == [
        (
            "files",
            f"/{SP}/requests/adapters.py",
            "modified",
            f"modified, layer 2 /{SP}/requests/adapters.py",
            "python requests (/opt/venv (venv))",
        ),
        ("files", "/usr/bin/tool", "modified", "modified, layer 2 /usr/bin/tool", "apt tool"),
    ]
    _, back = _diff(cli, tampered, clean)
    assert {c[2] for c in back} == {"restored"}
    run = cli("diff", clean, tampered, "--exit-code")
    assert run.code == 1
    assert "files python requests (/opt/venv (venv)): 1 change" in run.out
    assert cli("diff", clean, clean, "--exit-code").code == 0


def test_system_and_user_site_copies_are_named_with_where_they_are(
    cli: Cli, tmp_path: Path
) -> None:
    clean = archive(tmp_path, "clean", _base(), _app())
    copies: LayerFiles = {
        **dist("requests", "2.31.0", {"requests/__init__.py": b""}, site=SYSTEM),
        **dist("requests", "2.32.3", {"requests/__init__.py": b""}, site=USER),
    }
    with_copies = archive(tmp_path, "copies", _base(), _app(), copies)
    _, changes = _diff(cli, clean, with_copies, "--only", "python")
    assert changes == [
        ("python", "requests", "added", "2.32.3", f"/{USER} (user site)"),
        ("python", "requests", "added", "2.31.0", f"/{SYSTEM} (system site)"),
    ]
    run = cli("diff", clean, with_copies)
    assert f"python /{USER} (user site): 1 change" in run.out
    assert f"python /{SYSTEM} (system site): 1 change" in run.out


def test_a_lock_against_its_image_leaves_the_base_out_in_one_line(cli: Cli, tmp_path: Path) -> None:
    base = _base()
    lock = write_lock(tmp_path, {"requests": "2.32.3"}, base_diff_ids=(sha(layer_tar(base)),))
    image = archive(tmp_path, "image", base, _app())
    data, changes = _diff(cli, str(lock), image)
    assert changes == []
    assert data["left-out"] == (
        "left out, unchanged from the locked base registry.example/base:1: 3 apt packages"
    )
    run = cli("diff", str(lock), image, "--exit-code")
    assert run.code == 0
    assert run.out.splitlines()[2:] == [data["left-out"], "no differences"]
    upgraded = {"usr/bin/zlib1g": b"\x7fELF zlib 1.1\n"}
    zlib, files = deb("zlib1g", "1.1", upgraded)
    later = {
        **files,
        "var/lib/dpkg/status": base["var/lib/dpkg/status"].replace(  # type: ignore[union-attr]
            b"Package: zlib1g\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.0\n",
            zlib,
        ),
    }
    data, changes = _diff(cli, str(lock), archive(tmp_path, "up", base, _app(), later))
    assert changes == [("apt", "zlib1g:amd64", "changed", "1.1", None)]
    assert data["left-out"].endswith(": 2 apt packages")
