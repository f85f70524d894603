"""Debian packages' files against dpkg's md5sums and conffiles, as `debsums` checks them:
diversions, merged /usr, path-excludes and slimmed documentation do not alarm; a changed
file fails verify, a changed conffile warns, missing files warn once per package."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reprolock.inventory.dpkg_files import want_md5
from tests.checkfiles import archive, deb, status, write_lock
from tests.conftest import Run
from tests.ociregistry import LayerFiles, Link, layer_tar, sha

Cli = Callable[..., Run]
TOOL = b"\x7fELF tool binary\n"
MODULE = b"def helper():\n    return 42\n"


def _base() -> LayerFiles:
    tool, tool_files = deb(
        "tool",
        "1.0-1",
        {
            "usr/bin/tool": TOOL,
            "usr/lib/python3/dist-packages/toolmod.py": MODULE,
            "usr/share/doc/tool/README": b"docs\n",
            "usr/lib/tool/plugins/extra.so": b"\x7fELF plugin\n",
        },
        conffiles={"etc/tool.conf": b"setting = 1\n"},
    )
    zlib, zlib_files = deb("zlib1g", "1:1.2.13", {"usr/lib/x86_64-linux-gnu/libz.so.1.2.13": b"z"})
    # merged /usr: dpkg lists /bin/dash, the file is at usr/bin/dash
    dash, dash_files = deb("dash", "0.5.12", {"bin/dash": b"\x7fELF dash\n"})
    # a local diversion, as Ubuntu's minimized images divert /usr/bin/man
    man, man_files = deb("man-db", "2.11", {"usr/bin/man": b"\x7fELF man\n"})
    layer: LayerFiles = {**tool_files, **zlib_files, **man_files}
    for path, data in dash_files.items():
        layer[path.replace("bin/dash", "usr/bin/dash") if path == "bin/dash" else path] = data
    layer["bin"] = Link("usr/bin")
    layer["usr/bin/man.distrib"] = layer.pop("usr/bin/man")
    layer["usr/bin/man"] = b"#!/bin/sh\necho 'man pages were removed'\n"
    layer["var/lib/dpkg/diversions"] = b"/usr/bin/man\n/usr/bin/man.distrib\n:\n"
    layer["etc/dpkg/dpkg.cfg.d/excludes"] = b"# slim\npath-exclude=/usr/lib/tool/plugins/*\n"
    del layer["usr/lib/tool/plugins/extra.so"]  # excluded: dpkg never wrote it
    layer["var/lib/dpkg/status"] = status(tool, zlib, dash, man)
    return layer


EDITS: LayerFiles = {
    "usr/bin/tool": TOOL + b"patched\n",
    "usr/lib/python3/dist-packages/toolmod.py": MODULE + b"import os\n",
    "etc/tool.conf": b"setting = 2\n",
    "usr/lib/x86_64-linux-gnu/.wh.libz.so.1.2.13": b"",
    "usr/share/doc/.wh.tool": b"",  # slimming: never an alarm
}


def _issues(cli: Cli, image: str) -> tuple[dict[str, Any], list[tuple[str, str, bool, int]]]:
    run = cli("--format", "json", "inspect", image)
    assert run.code == 0, run.err
    found = json.loads(run.out)["dpkg-integrity"]
    return found, [(i["path"], i["problem"], i["conffile"], i["layer"]) for i in found["issues"]]


def test_a_clean_image_has_no_issues(cli: Cli, tmp_path: Path) -> None:
    found, issues = _issues(cli, archive(tmp_path, "clean", _base()))
    assert issues == []
    assert (found["files"], found["checked"], found["diverted"]) == (8, 7, 1)


def test_edits_are_named_with_their_layer(cli: Cli, tmp_path: Path) -> None:
    _, issues = _issues(cli, archive(tmp_path, "edited", _base(), EDITS))
    assert sorted(issues) == [
        ("/etc/tool.conf", "modified", True, 1),
        ("/usr/bin/tool", "modified", False, 1),
        ("/usr/lib/python3/dist-packages/toolmod.py", "modified", False, 1),
        ("/usr/lib/x86_64-linux-gnu/libz.so.1.2.13", "missing", False, 1),
    ]


def test_a_replaced_diversion_target_and_a_usrmerge_path_are_checked(
    cli: Cli, tmp_path: Path
) -> None:
    edits: LayerFiles = {"usr/bin/man.distrib": b"tampered\n", "usr/bin/dash": b"tampered\n"}
    _, issues = _issues(cli, archive(tmp_path, "div", _base(), edits))
    assert sorted(issues) == [
        ("/bin/dash", "modified", False, 1),
        ("/usr/bin/man.distrib", "modified", False, 1),
    ]


def test_verify_fails_on_files_warns_on_conffiles_and_trusts_the_base(
    cli: Cli, tmp_path: Path
) -> None:
    base = _base()
    base["usr/bin/tool"] = b"already different in the base\n"  # the base as locked
    lock = write_lock(tmp_path, {}, base_diff_ids=(sha(layer_tar(base)),))
    run = cli(
        "--format",
        "json",
        "verify",
        "image",
        archive(tmp_path, "v", base, EDITS),
        "--lock",
        str(lock),
    )
    assert run.code == 1, run.err
    findings = [
        (f["kind"], f["subject"], f["severity"], f["where"])
        for f in json.loads(run.out)["findings"]
    ]
    assert findings == [
        ("dpkg-conffile", "tool:/etc/tool.conf", "warning", "layer 1 /etc/tool.conf"),
        (
            "dpkg-missing",
            "zlib1g",
            "warning",
            "layer 1 /usr/lib/x86_64-linux-gnu/libz.so.1.2.13",
        ),
        ("dpkg-modified", "tool:/usr/bin/tool", "error", "layer 1 /usr/bin/tool"),
        (
            "dpkg-modified",
            "tool:/usr/lib/python3/dist-packages/toolmod.py",
            "error",
            "layer 1 /usr/lib/python3/dist-packages/toolmod.py",
        ),
    ]
    only_conffile = archive(tmp_path, "c", _base(), {"etc/tool.conf": b"setting = 3\n"})
    lock = write_lock(tmp_path, {}, base_diff_ids=(sha(layer_tar(_base())),))
    run = cli("verify", "image", only_conffile, "--lock", str(lock))
    assert run.code == 0, run.out
    assert "warn   dpkg-conffile tool:/etc/tool.conf" in run.out


def test_hostile_dpkg_records_are_data(cli: Cli, tmp_path: Path) -> None:
    """Lines that are not an md5 and a path, paths climbing out, a diversions file cut
    short, a status with broken Conffiles: skipped, never a crash."""
    layer: LayerFiles = {
        "var/lib/dpkg/status": b"Package: odd\nStatus: install ok installed\nVersion: 1\n"
        b"Conffiles:\n /etc/x\n /etc/y nothex\n /../../etc/passwd " + b"0" * 32 + b"\n",
        "var/lib/dpkg/info/odd.md5sums": b"zz  usr/bin/x\n"
        + b"0" * 32
        + b"  ../../etc/passwd\n"
        + b"\xff\xfe\n"
        + b"0" * 32
        + b"\n",
        "var/lib/dpkg/diversions": b"/usr/bin/x\n",
        "etc/dpkg/dpkg.cfg.d/bad": b"path-exclude\n--path-include=\n\xff\n",
    }
    found, issues = _issues(cli, archive(tmp_path, "h", layer))
    assert issues == [] and found["files"] == 0


def test_what_is_hashed_for_the_check() -> None:
    assert want_md5("usr/bin/tool") and want_md5("etc/tool.conf")
    assert want_md5("usr/lib/python3/dist-packages/x.py")
    assert want_md5("usr/local/cuda-12.4/lib64/libcudart.so.12")
    assert not want_md5("usr/local/lib/python3.11/dist-packages/x.py")
    assert not want_md5("opt/venv/lib/python3.11/site-packages/x.py")
    assert not want_md5("models/model.safetensors")
    assert not want_md5("var/lib/dpkg/status")
