"""The stages of `reprolock build` on their own: deterministic tars, paths resolved like
dpkg and COPY, the maintainer-script rule, .deb files (real ones from dpkg-deb, and
hostile ones), the apt layer's dpkg records, wheels through installer (hostile ones too),
the build context, the image config, the record, the output names, the bytecode."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
import zstandard

from reprolock.api.build_output import parse_output
from reprolock.api.bytecode import HostCompiler
from reprolock.build.apt import apt_layer, prejudge
from reprolock.build.config import Settings, image_config, parse_time
from reprolock.build.context import copy_into
from reprolock.build.deb import DebFile
from reprolock.build.python import install_wheel, python_layer
from reprolock.build.record import BuildRecord, Built, parse, to_text
from reprolock.build.scripts import judge
from reprolock.build.tar import write_layer
from reprolock.build.tree import Nothing, Store, Tree, ViewLower
from reprolock.errors import InputError, SourceError, Unsatisfiable
from reprolock.image.scan import scan_layer
from reprolock.image.view import FilesystemView
from reprolock.inventory.pyc import check as pyc_check
from reprolock.lock import AptPackage, Interpreter, InterpreterSource, PythonPackage, Wheel
from reprolock.model import Platform
from tests.aptrepo import Deb, build_deb, needs_apt_tools
from tests.ociregistry import Link, layer_tar
from tests.pyindex import build_wheel

AMD64 = Platform.parse("linux/amd64")
INTERPRETER = Interpreter(
    source=InterpreterSource.BASE, path="/usr/bin/python3.11", version="3.11.2"
)


def _tree(lower_files: dict[str, object] | None = None) -> Tree:
    store = Store()
    if lower_files is None:
        return Tree(Nothing(), store, mtime=1_700_000_000, what="test layer")
    return Tree(ViewLower(_view(lower_files)), store, mtime=1_700_000_000, what="test layer")


def _view(files: dict[str, object]) -> FilesystemView:
    scan = scan_layer(
        io.BytesIO(layer_tar(files)),  # type: ignore[arg-type]
        0,
        what="base",
        want_content=lambda _: True,
        want_hash=lambda _: False,
    )
    return FilesystemView.merge([scan])


def _layer(tree: Tree, compression: str = "none") -> tuple[bytes, object]:
    out = io.BytesIO()
    blob = write_layer(tree.nodes(), tree.store, out, compression)  # type: ignore[arg-type]
    return out.getvalue(), blob


def _members(data: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return tar.getmembers()


# -- tars -----------------------------------------------------------------------------------------
def _sample(tree: Tree) -> None:
    tree.data("/opt/z/last.txt", b"z")
    tree.data("/opt/a/" + "long-name-" * 12 + "café.py", b"print(1)\n", mode=0o755)
    tree.symlink("/opt/link", "/opt/z/last.txt")
    tree.hardlink("/opt/0-first-in-order", "opt/z/last.txt")  # sorts before its file
    tree.whiteout("etc/gone")
    tree.dir("/var/tmp-like", mode=0o1777)


def test_layers_are_the_same_bytes_and_plain_tars() -> None:
    first, second = _tree(), _tree()
    _sample(first)
    _sample(second)
    data, blob = _layer(first)
    assert data == _layer(second)[0]
    assert blob.digest == blob.diff_id == "sha256:" + hashlib.sha256(data).hexdigest()  # type: ignore[attr-defined]
    members = {m.name: m for m in _members(data)}
    names = list(members)
    assert names == sorted(names, key=lambda n: n.encode())
    assert names.index("opt") < names.index("opt/z") < names.index("opt/z/last.txt")
    # the hard link's group is led by the first path in tar order, which holds the bytes
    assert members["opt/0-first-in-order"].isreg() and members["opt/0-first-in-order"].size == 1
    assert members["opt/z/last.txt"].islnk()
    assert members["opt/z/last.txt"].linkname == "opt/0-first-in-order"
    assert members["etc/.wh.gone"].isreg()
    assert members["var/tmp-like"].mode == 0o1777
    long = next(n for n in names if n.endswith("café.py"))
    assert members[long].mode == 0o755 and members[long].uname == "" and members[long].uid == 0
    assert {m.mtime for m in members.values()} == {1_700_000_000}
    # GNU tar reads it too
    listed = subprocess.run(
        ["tar", "-tvf", "-"], input=data, capture_output=True, check=True
    ).stdout.decode()
    assert "café.py" in listed and "opt/link -> /opt/z/last.txt" in listed


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_compression_has_no_time_or_host_and_hashes_both_forms(compression: str) -> None:
    tree = _tree()
    _sample(tree)
    stored, blob = _layer(tree, compression)
    plain, plain_blob = _layer(tree)
    assert stored == _layer(tree, compression)[0]
    if compression == "gzip":
        assert stored[:10] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
        assert gzip.decompress(stored) == plain
    else:
        assert zstandard.ZstdDecompressor().decompressobj().decompress(stored) == plain
    assert blob.diff_id == plain_blob.diff_id  # type: ignore[attr-defined]
    assert blob.digest == "sha256:" + hashlib.sha256(stored).hexdigest()  # type: ignore[attr-defined]


# -- paths ----------------------------------------------------------------------------------------
MERGED_USR = {
    "lib": Link("usr/lib"),
    "bin": Link("usr/bin"),
    "usr/lib/x86_64-linux-gnu/libc.so.6": b"c",
}


def test_paths_follow_a_merged_usr_as_dpkg_does() -> None:
    tree = _tree(MERGED_USR)
    tree.data("lib/x86_64-linux-gnu/libfoo.so.1", b"foo")
    tree.dir("lib/", mode=0o700)  # a folder where a link to one stands: the link stays
    paths = [n.path for n in tree.nodes()]
    assert "usr/lib/x86_64-linux-gnu/libfoo.so.1" in paths
    assert "lib" not in paths and "lib/x86_64-linux-gnu" not in paths


def test_links_never_lead_out_of_the_image() -> None:
    tree = _tree({"etc/escape": Link("/../../../../tmp"), "etc/up": Link("../../../../..")})
    tree.data("etc/escape/x", b"x")
    tree.data("etc/up/y", b"y")
    assert {n.path for n in tree.nodes() if n.kind == "file"} == {"tmp/x", "y"}
    with pytest.raises(SourceError, match="climbs out of its root"):
        tree.data("opt/../../etc/shadow", b"x")


def test_a_link_loop_and_a_file_used_as_a_folder_are_refused() -> None:
    tree = _tree({"a": Link("b"), "b": Link("a"), "etc/passwd": b"root"})
    with pytest.raises(SourceError, match=r"link_hops|chain of links"):
        tree.data("a/x", b"x")
    with pytest.raises(SourceError, match="is a file, not a folder"):
        tree.data("etc/passwd/x", b"x")


# -- the maintainer-script rule -------------------------------------------------------------------
DH_MAKE = """#!/bin/sh
# postinst script for foo
set -e

case "$1" in
    configure)
    ;;

    abort-upgrade|abort-remove|abort-deconfigure)
    ;;

    *)
        echo "postinst called with unknown argument \\`$1'" >&2
        exit 1
    ;;
esac

#DEBHELPER#

exit 0
"""


def test_the_script_rule() -> None:
    assert judge(DH_MAKE).trivial
    ldconfig = judge('#!/bin/sh\nset -e\nif [ "$1" = "configure" ]; then\n\tldconfig\nfi\n')
    assert ldconfig.trivial and ldconfig.ldconfig
    found = judge("#!/bin/sh\nset -e\nupdate-alternatives --install /usr/bin/x x /usr/bin/y 1\n")
    assert (found.line, found.number) == (
        "update-alternatives --install /usr/bin/x x /usr/bin/y 1",
        3,
    )
    assert judge("#!/bin/sh\nif which py3compile >/dev/null; then py3compile -p x; fi\n").line
    assert judge("exit 1\n").line == "exit 1"  # outside the *) branch, it fails dpkg


# -- .deb files and the apt layer -----------------------------------------------------------------
def _locked(path: Path, name: str, version: str = "1.0", arch: str = "amd64") -> AptPackage:
    data = path.read_bytes()
    return AptPackage(
        name=name,
        version=version,
        architecture=arch,
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        url=f"http://apt.invalid/{path.name}",
    )


def _deb(path: Path) -> DebFile:
    handle = path.open("rb")
    return DebFile(handle, path.stat().st_size, path.name)


BASE_STATUS = (
    "Package: old-tool\nStatus: install ok installed\nArchitecture: amd64\nVersion: 0.9\n"
    "Description: old\n\n"
    "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nMulti-Arch: same\n"
    "Version: 2.36-9\nDescription: libc\n"
)


def _base(extra: dict[str, object] | None = None) -> dict[str, object]:
    return {
        **MERGED_USR,
        "etc/passwd": b"root:x:0:0::/root:/bin/sh\n",
        "etc/group": b"root:x:0:\nstaff:x:50:\n",
        "var/lib/dpkg/status": BASE_STATUS.encode(),
        "var/lib/dpkg/info/old-tool.list": (
            b"/.\n/usr\n/usr/bin\n/usr/bin/old-tool\n/usr/bin/obsolete\n"
        ),
        "var/lib/dpkg/info/old-tool.postrm": b"#!/bin/sh\nset -e\nexit 0\n",
        "usr/bin/old-tool": b"old",
        "usr/bin/obsolete": b"obsolete",
        **(extra or {}),
    }


@needs_apt_tools
def test_the_apt_layer_writes_dpkg_records_as_dpkg(tmp_path: Path) -> None:
    hello = build_deb(
        tmp_path,
        Deb(
            "hello",
            "1.0",
            files=(("lib/x86_64-linux-gnu/libhello.so.1", b"lib"), ("etc/hello.conf", b"x=1\n")),
            control_files=(("triggers", "activate-noawait ldconfig\n"),),
            conffiles=("/etc/hello.conf",),
        ),
    )
    upgrade = build_deb(tmp_path, Deb("old-tool", "1.0", files=(("usr/bin/old-tool", b"new"),)))
    tree = _tree(_base())
    packages = [
        (_locked(hello, "hello"), _deb(hello)),
        (_locked(upgrade, "old-tool"), _deb(upgrade)),
    ]
    result = apt_layer(tree, packages, _view(_base()), AMD64)
    assert [(p.name, p.upgraded_from) for p in result.packages] == [
        ("hello", None),
        ("old-tool", "0.9"),
    ]
    store = tree.store
    files = {n.path: n for n in tree.nodes()}
    assert "usr/lib/x86_64-linux-gnu/libhello.so.1" in files  # through /lib → usr/lib
    assert files["usr/bin/obsolete"].kind == "whiteout"  # the old version had it
    assert files["var/lib/dpkg/info/old-tool.postrm"].kind == "whiteout"
    status = store.read(files["var/lib/dpkg/status"].content).decode()  # type: ignore[arg-type]
    names = [line.split(": ")[1] for line in status.splitlines() if line.startswith("Package:")]
    assert names == ["hello", "libc6", "old-tool"] and status.endswith("\n\n")
    stanza = status.split("Package: hello\n")[1].split("\n\n")[0]
    md5 = hashlib.md5(b"x=1\n", usedforsecurity=False).hexdigest()
    assert stanza.startswith("Status: install ok installed\n")
    assert f"Conffiles:\n /etc/hello.conf {md5}\n" in stanza
    md5sums = store.read(files["var/lib/dpkg/info/hello.md5sums"].content).decode()  # type: ignore[arg-type]
    assert f"{md5}  etc/hello.conf\n" in md5sums  # generated: the package has none
    listed = store.read(files["var/lib/dpkg/info/hello.list"].content).decode()  # type: ignore[arg-type]
    assert listed.startswith("/.\n") and "/lib/x86_64-linux-gnu/libhello.so.1\n" in listed


@needs_apt_tools
def test_packages_whose_scripts_do_things_are_refused_all_at_once(tmp_path: Path) -> None:
    alternatives = build_deb(
        tmp_path,
        Deb(
            "alt",
            "1.0",
            control_files=(("postinst", "#!/bin/sh\nset -e\nupdate-alternatives --auto x\n"),),
        ),
    )
    handler = build_deb(
        tmp_path, Deb("handler", "1.0", control_files=(("triggers", "interest /usr/share/x\n"),))
    )
    packages = [
        (_locked(alternatives, "alt"), _deb(alternatives)),
        (_locked(handler, "handler"), _deb(handler)),
    ]
    with pytest.raises(Unsatisfiable) as caught:
        prejudge(packages)
    text = caught.value.render()
    assert caught.value.exit_code == 3
    assert text.startswith(
        "reprolock build cannot reproduce the installation of 2 apt packages: alt 1.0, handler 1.0."
    )
    assert "its postinst runs `update-alternatives --auto x` (line 3)" in text
    assert "it declares trigger interests (/usr/share/x)" in text
    assert "reprolock dockerfile" in text


@needs_apt_tools
def test_ldconfig_outside_the_loader_folders_and_base_triggers_are_refused(tmp_path: Path) -> None:
    libs = build_deb(
        tmp_path,
        Deb(
            "odd-lib",
            "1.0",
            files=(("opt/odd/lib/libodd.so.1", b"x"),),
            control_files=(("triggers", "activate-noawait ldconfig\n"),),
        ),
    )
    fonts = build_deb(tmp_path, Deb("a-font", "1.0", files=(("usr/share/fonts/x.ttf", b"f"),)))
    base = _base({"var/lib/dpkg/triggers/File": b"/usr/share/fonts fontconfig\n"})
    packages = [(_locked(libs, "odd-lib"), _deb(libs)), (_locked(fonts, "a-font"), _deb(fonts))]
    with pytest.raises(Unsatisfiable) as caught:
        apt_layer(_tree(base), packages, _view(base), AMD64)
    text = caught.value.render()
    assert "it needs ldconfig's cache for /opt/odd/lib/libodd.so.1" in text
    assert "it activates the trigger /usr/share/fonts, whose handler (fontconfig)" in text


def _ar(*members: tuple[str, bytes]) -> bytes:
    out = b"!<arch>\n"
    for name, data in members:
        out += f"{name:<16}{0:<12}{0:<6}{0:<6}{0o100644:<8o}{len(data):<10}`\n".encode() + data
        out += b"\n" if len(data) % 2 else b""
    return out


def _tgz(files: dict[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


CONTROL = _tgz({"./control": b"Package: evil\nVersion: 1.0\nArchitecture: amd64\n"})


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not a deb", "not a Debian package"),
        (
            _ar(("debian-binary", b"2.0\n"), ("data.tar.gz", b"x"), ("control.tar.gz", b"x")),
            "not debian-binary",
        ),
        (
            _ar(("debian-binary", b"2.0\n"), ("control.tar.gz", CONTROL))[:-10],
            "truncated|not a Debian",
        ),
        (
            _ar(("debian-binary", b"2.0\n"), ("control.tar.lz", b"x"), ("data.tar.gz", b"x")),
            "compressed in a way",
        ),
    ],
)
def test_malformed_debs_are_refused(tmp_path: Path, data: bytes, message: str) -> None:
    path = tmp_path / "evil.deb"
    path.write_bytes(data)
    with pytest.raises(SourceError, match=message):
        _deb(path)


def test_a_deb_whose_data_climbs_out_or_holds_a_device_is_refused(tmp_path: Path) -> None:
    for member, expected in (("../../etc/cron.d/evil", "climbs out"), ("dev/evil", "device")):
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w:gz") as tar:
            info = tarfile.TarInfo(member)
            if member.startswith("dev"):
                info.type = tarfile.CHRTYPE
                tar.addfile(info)
            else:
                info.size = 1
                tar.addfile(info, io.BytesIO(b"x"))
        path = tmp_path / "evil.deb"
        path.write_bytes(
            _ar(
                ("debian-binary", b"2.0\n"),
                ("control.tar.gz", CONTROL),
                ("data.tar.gz", raw.getvalue()),
            )
        )
        with pytest.raises((SourceError, Unsatisfiable), match=expected):
            apt_layer(_tree({}), [(_locked(path, "evil"), _deb(path))], _view({}), AMD64)


def test_a_deb_that_is_not_the_locked_package_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.deb"
    path.write_bytes(
        _ar(("debian-binary", b"2.0\n"), ("control.tar.gz", CONTROL), ("data.tar.gz", _tgz({})))
    )
    with pytest.raises(SourceError, match=r"its control file says evil 1\.0 amd64, the lock good"):
        prejudge([(_locked(path, "good"), _deb(path))])


# -- wheels ---------------------------------------------------------------------------------------
def _wheel(tmp_path: Path, name: str, **kwargs: object) -> tuple[PythonPackage, Wheel, Path]:
    path = build_wheel(tmp_path, name, "1.0", **kwargs)  # type: ignore[arg-type]
    package = PythonPackage(name=name, version="1.0", index="https://index.invalid/simple")
    wheel = Wheel(filename=path.name, url=f"https://index.invalid/{path.name}", sha256="0" * 64)
    return package, wheel, path


class _Compiler:
    tag = "cpython-311"

    def compile(self, sources: object) -> list[bytes | None]:
        return [b"pyc of " + path.encode() for path, _ in sources]  # type: ignore[attr-defined]


def test_the_venv_and_a_wheel_as_installer_lays_them_out(tmp_path: Path) -> None:
    package, wheel, path = _wheel(
        tmp_path,
        "tool",
        extra_files={
            "tool-1.0.dist-info/entry_points.txt": b"[console_scripts]\ntool = tool:main\n",
            "tool-1.0.data/scripts/helper": b"#!python\nprint(1)\n",
            "tool-1.0.data/data/share/tool/x.txt": b"x",
        },
    )
    tree = _tree()
    with path.open("rb") as stream:
        layer = python_layer(
            tree,
            venv="/opt/venv",
            interpreter=INTERPRETER,
            wheels=[(package, wheel, stream)],
            compiler=_Compiler(),
            bits64=True,
        )
    assert layer.packages[0].pycs == 1
    nodes = {n.path: n for n in tree.nodes()}

    def read(path: str) -> bytes:
        content = nodes[path].content
        assert content is not None
        return tree.store.read(content)

    site = "opt/venv/lib/python3.11/site-packages"
    assert read("opt/venv/bin/tool").startswith(b"#!/opt/venv/bin/python\n")
    assert read("opt/venv/bin/helper") == b"#!/opt/venv/bin/python\nprint(1)\n"
    assert nodes["opt/venv/bin/helper"].mode == 0o755
    assert read("opt/venv/share/tool/x.txt") == b"x"
    assert read(f"{site}/tool-1.0.dist-info/INSTALLER") == b"reprolock\n"
    record = read(f"{site}/tool-1.0.dist-info/RECORD").decode()
    assert "tool/__pycache__/__init__.cpython-311.pyc,sha256=" in record
    assert "../../../bin/tool,sha256=" in record
    assert nodes["opt/venv/bin/python3.11"].link == "/usr/bin/python3.11"
    assert nodes["opt/venv/bin/python"].link == "python3.11"
    assert nodes["opt/venv/lib64"].link == "lib"
    assert read("opt/venv/pyvenv.cfg").decode().splitlines()[:3] == [
        "home = /usr/bin",
        "include-system-site-packages = false",
        "version = 3.11.2",
    ]


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"../../../../etc/cron.d/evil": b"x"}, "climbs out"),
        ({"tool-1.0.data/data/../../../../etc/evil": b"x"}, "climbs out"),
        (
            {"tool-1.0.dist-info/entry_points.txt": b"[console_scripts]\nx/y = tool:main\n"},
            "entry point",
        ),
    ],
)
def test_hostile_wheels_are_refused(tmp_path: Path, files: dict[str, bytes], message: str) -> None:
    package, wheel, path = _wheel(tmp_path, "tool", extra_files=files)
    with path.open("rb") as stream, pytest.raises(SourceError, match=message):
        install_wheel(
            _tree(), stream, wheel, package, venv="/opt/venv", release="3.11", compiler=None
        )


def test_a_wheel_bomb_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "bomb-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("bomb/zeros.bin", b"\0" * (300 << 20))
    package = PythonPackage(name="bomb", version="1.0", index="https://index.invalid/simple")
    wheel = Wheel(filename=path.name, url="https://index.invalid/x", sha256="0" * 64)
    with path.open("rb") as stream, pytest.raises(SourceError, match="decompression bomb"):
        install_wheel(_tree(), stream, wheel, package, venv="/v", release="3.11", compiler=None)


# -- the build context ----------------------------------------------------------------------------
def test_copies_are_confined_and_normalized(tmp_path: Path) -> None:
    context = tmp_path / "context"
    (context / "src" / "pkg").mkdir(parents=True)
    old = os.umask(0o077)
    try:
        (context / "src" / "pkg" / "mod.py").write_text("x = 1\n")
        (context / "src" / "run.sh").write_text("#!/bin/sh\n")
        (context / "src" / "run.sh").chmod(0o700)
    finally:
        os.umask(old)
    (context / "src" / "inner-link").symlink_to("pkg/mod.py")
    tree = _tree()
    copy_into(tree, context, [("src", "/app/src")], uid=10001, gid=10001)
    nodes = {n.path: n for n in tree.nodes()}
    assert (nodes["app/src/pkg/mod.py"].mode, nodes["app/src/run.sh"].mode) == (0o644, 0o755)
    assert nodes["app/src/pkg"].mode == 0o755 and nodes["app/src"].uid == 10001
    assert nodes["app/src/inner-link"].link == "pkg/mod.py"
    (tmp_path / "secret").write_text("s")
    (context / "outside").symlink_to(tmp_path / "secret")
    with pytest.raises(InputError, match="leads outside the build context"):
        copy_into(_tree(), context, [("outside", "/app/x")], uid=0, gid=0)
    os.mkfifo(context / "src" / "fifo")
    with pytest.raises(InputError, match="FIFO"):
        copy_into(_tree(), context, [("src", "/app/src")], uid=0, gid=0)
    with pytest.raises(InputError, match="must end with /"):
        copy_into(_tree(), context, [("src/*.sh", "/app/x")], uid=0, gid=0)


# -- the image config -----------------------------------------------------------------------------
def test_the_config_is_the_base_s_with_what_the_dockerfile_sets() -> None:
    base = {
        "architecture": "arm64",
        "os": "linux",
        "created": "2024-05-01T12:00:00.5Z",
        "container_config": {"Hostname": "x"},
        "config": {
            "Env": ["PATH=/usr/bin", "LANG=C.UTF-8"],
            "Cmd": ["bash"],
            "Hostname": "build-host",
            "Labels": {"a": "1"},
        },
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "1" * 64]},
        "history": [{"created_by": "base"}],
    }
    from reprolock.build.tar import Blob
    from reprolock.lock import LockedHealthcheck

    blob = Blob(digest="sha256:" + "2" * 64, size=1, diff_id="sha256:" + "3" * 64, media_type="x")
    settings = Settings(
        env=[("PATH", "/opt/venv/bin:/usr/bin"), ("A", "b")],
        labels=[("b", "2")],
        workdir="/app",
        user="10001:10001",
        expose=["8000"],
        healthcheck=LockedHealthcheck(cmd=("true",), interval="1m30s", retries=3),
        entrypoint=["python"],
    )
    config = image_config(
        base, settings, [(blob, "made by")], platform=Platform.parse("arm64"), epoch=86400
    )
    assert config["config"]["Env"] == ["PATH=/opt/venv/bin:/usr/bin", "LANG=C.UTF-8", "A=b"]
    assert "Cmd" not in config["config"] and config["config"]["Entrypoint"] == ["python"]
    assert "Hostname" not in config["config"] and "container_config" not in config
    assert config["config"]["Healthcheck"] == {
        "Test": ["CMD", "true"],
        "Interval": 90 * 10**9,
        "Retries": 3,
    }
    assert config["config"]["ExposedPorts"] == {"8000/tcp": {}}
    assert config["config"]["Labels"] == {"a": "1", "b": "2"}
    assert (config["created"], config["variant"]) == ("1970-01-02T00:00:00Z", "v8")
    assert config["rootfs"]["diff_ids"][-1] == "sha256:" + "3" * 64
    assert config["history"][-1] == {"created": "1970-01-02T00:00:00Z", "created_by": "made by"}
    assert parse_time(base["created"]) == 1714564800
    assert parse_time("2024-05-01T14:00:00+02:00") == 1714564800
    base["config"]["OnBuild"] = ["RUN x"]  # type: ignore[index]
    with pytest.raises(Unsatisfiable, match="ONBUILD"):
        image_config(base, settings, [], platform=AMD64, epoch=0)


# -- the record, the outputs, the bytecode --------------------------------------------------------
def test_the_record_round_trips_and_is_checked() -> None:
    built = Built(
        platform="linux/amd64",
        manifest_digest="sha256:" + "a" * 64,
        config_digest="sha256:" + "b" * 64,
        compression="gzip",
        bytecode="cpython-311",
        epoch=5,
        built_by="reprolock 0.1.0",
    )
    record = BuildRecord(lock_digest="sha256:" + "c" * 64, targets={"py3.11-amd64": built})
    text = to_text(record)
    assert parse(text, "reprolock.build.toml") == record
    with pytest.raises(InputError, match="config-digest"):
        parse(text.replace("b" * 64, "nope"), "reprolock.build.toml")


def test_output_names() -> None:
    assert parse_output("oci:out/layout:v1").tag == "v1"
    archive = parse_output("docker-archive:app.tar:example.com/app:1")
    assert (archive.target, archive.tag) == ("app.tar", "example.com/app:1")
    assert parse_output("registry:127.0.0.1:5000/app:1").target == "127.0.0.1:5000/app:1"
    for bad in ("app.tar", "docker:app", "oci:", "registry:Bad Ref"):
        with pytest.raises(InputError):
            parse_output(bad)


def test_bytecode_is_the_same_bytes_from_fresh_processes() -> None:
    release = f"{sys.version_info[0]}.{sys.version_info[1]}"
    compiler = HostCompiler(sys.executable, release)
    sources = [
        ("/opt/venv/lib/python3.11/site-packages/m.py", b"X = {'a', 'b', 'c'}\nimport json\n"),
        ("/opt/venv/lib/python3.11/site-packages/bad.py", b"def (:\n"),
    ]
    first = compiler.compile(sources)
    assert first == compiler.compile(sources)
    assert first[1] is None
    pyc = first[0]
    assert pyc is not None and pyc[4:8] == (1).to_bytes(4, "little")  # unchecked hash-based
    # reprolock's own reader judges it the bytecode of its source
    files = {"opt/venv/lib/python3.11/site-packages/m.py": sources[0][1]}
    files["opt/venv/lib/python3.11/site-packages/__pycache__/m.cpython-311.pyc"] = pyc
    from reprolock.inventory import want_head, want_source

    scan = scan_layer(
        io.BytesIO(layer_tar(files)),
        0,
        what="t",
        want_content=lambda _: False,
        want_hash=lambda _: False,
        want_head=want_head,
        want_source=want_source,
    )
    view = FilesystemView.merge([scan])
    path = "opt/venv/lib/python3.11/site-packages/__pycache__/m.cpython-311.pyc"
    node = view.node(path)
    assert node is not None
    if release == "3.11":
        assert pyc_check(view, path, node).verdict == "matches"
    assert json.loads("[]") == []


def _install_only(members: dict[str, bytes | str]) -> bytes:
    """A tar.gz in python-build-standalone's layout: bytes are files, str are links."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for name, value in members.items():
            info = tarfile.TarInfo(name)
            info.mode = 0o755
            if isinstance(value, str):
                info.type, info.linkname = tarfile.SYMTYPE, value
                tar.addfile(info)
            else:
                info.size = len(value)
                tar.addfile(info, io.BytesIO(value))
    return raw.getvalue()


def test_a_standalone_interpreter_is_unpacked_under_its_prefix() -> None:
    from reprolock.build.python import unpack_standalone

    tree = _tree()
    tarball = _install_only(
        {"python/bin/python3.11": b"\x7fELF", "python/bin/python3": "python3.11"}
    )
    count = unpack_standalone(tree, io.BytesIO(tarball), "/opt/python", "cpython.tar.gz")
    nodes = {n.path: n for n in tree.nodes()}
    assert count == 2 and nodes["opt/python/bin/python3"].link == "python3.11"
    assert nodes["opt/python/bin/python3.11"].mode == 0o755
    evil = _install_only({"python/bin/x": b"x", "etc/cron.d/evil": b"x"})
    with pytest.raises(SourceError, match="lies outside its python/ folder"):
        unpack_standalone(_tree(), io.BytesIO(evil), "/opt/python", "cpython.tar.gz")


def test_a_push_is_never_sent_to_another_host() -> None:
    """A registry whose upload Location names another host gets no blob (nor a login)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from reprolock.model import Digest, ImageRef
    from reprolock.net.config import NetConfig
    from reprolock.net.session import new_session
    from reprolock.registry import RegistryClient

    seen: list[tuple[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def _answer(self, status: int, headers: dict[str, str]) -> None:
            seen.append((self.command, self.path))
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_HEAD(self) -> None:
            self._answer(404, {})

        def do_POST(self) -> None:
            self._answer(202, {"Location": "http://collector.invalid/upload"})

        def do_PUT(self) -> None:
            self._answer(201, {})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = RegistryClient(new_session(NetConfig.from_environment({}, offline=False)))
        ref = ImageRef.parse(f"127.0.0.1:{server.server_address[1]}/team/app:1")
        with pytest.raises(SourceError, match="sends the upload to another host"):
            client.push_blob(ref, Digest.of(b"x"), 1, lambda: io.BytesIO(b"x"))
    finally:
        server.shutdown()
        server.server_close()
    assert [m for m, _ in seen] == ["HEAD", "POST"]
