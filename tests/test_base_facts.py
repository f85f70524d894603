"""Base facts read from root filesystems laid out like real images (never run)."""

from __future__ import annotations

from pathlib import Path

from reprolock.image.read import read_rootfs
from reprolock.inventory.base_facts import base_facts, debian_python_version, want_content
from reprolock.lock import BaseFacts, BasePython

DEBIAN_STATUS = """\
Package: libc6
Status: install ok installed
Architecture: amd64
Version: 2.36-9+deb12u13

Package: python3.11-minimal
Status: install ok installed
Architecture: amd64
Version: 3.11.2-6+deb12u6

Package: python3.11-venv
Status: install ok installed
Architecture: amd64
Version: 3.11.2-6+deb12u6
"""
LIBC_ONLY = DEBIAN_STATUS.split("\n\nPackage: python3.11-minimal", maxsplit=1)[0]
PASSWD = "root:x:0:0:root:/root:/bin/bash\nubuntu:x:1000:1000::/home/ubuntu:/bin/bash\n"
GROUP = "root:x:0:\nubuntu:x:1000:\n"


def _tree(root: Path, files: dict[str, str | bytes | None], links: dict[str, str] = {}) -> Path:  # noqa: B006
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if content is None:
            path.mkdir(exist_ok=True)
        else:
            path.write_bytes(content.encode() if isinstance(content, str) else content)
    for name, target in links.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(target)
    return root


def _facts(root: Path, env: dict[str, str] | None = None) -> BaseFacts:
    read = read_rootfs(root, want_content=want_content, want_hash=lambda _p: False)
    return base_facts(read.view, env or {})


def _debian(root: Path, *, venv: bool = True) -> Path:
    files: dict[str, str | bytes | None] = {
        "etc/os-release": 'ID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n',
        "var/lib/dpkg/status": DEBIAN_STATUS
        if venv
        else DEBIAN_STATUS.split("\n\nPackage: python3.11-venv", maxsplit=1)[0] + "\n",
        "etc/passwd": PASSWD,
        "etc/group": GROUP,
        "usr/bin/python3.11": b"\x7fELF",
        "usr/lib/python3.11/os.py": "",
        "usr/lib/python3.11/venv/__init__.py": "",
    }
    if venv:  # Debian's python3.11-venv brings ensurepip; python3-pip-whl its wheel
        files["usr/lib/python3.11/ensurepip/__init__.py"] = ""
        files["usr/share/python-wheels/pip-23.0.1-py3-none-any.whl"] = b"PK"
    # merged /usr: /bin is /usr/bin, and python3 is a link to python3.11
    return _tree(root, files, {"bin": "usr/bin", "usr/bin/python3": "python3.11"})


def test_debian_with_python3_venv(tmp_path: Path) -> None:
    facts = _facts(_debian(tmp_path))
    assert facts.os_id == "debian" and facts.os_version == "12"
    assert (facts.libc, facts.libc_version) == ("glibc", "2.36")
    # found once, though /usr/bin and /bin (a link) both hold it, and python3 links to it
    assert facts.pythons == (
        BasePython(
            path="/usr/bin/python3.11",
            version="3.11.2",
            venv=True,
            ensurepip=True,
            found_by="dpkg python3.11-minimal 3.11.2-6+deb12u6",
        ),
    )
    assert facts.python("3.11") is not None and facts.python("3.11").usable  # type: ignore[union-attr]
    assert facts.users == (("root", "0:0"), ("ubuntu", "1000:1000"))
    assert facts.groups == (("root", "0"), ("ubuntu", "1000"))
    assert facts.cuda is None


def test_debian_without_python3_venv_has_no_ensurepip(tmp_path: Path) -> None:
    [python] = _facts(_debian(tmp_path, venv=False)).pythons
    assert (python.venv, python.ensurepip, python.usable) == (True, False, False)


def test_official_python_image(tmp_path: Path) -> None:
    """python:3.11-slim: CPython in /usr/local, PATH and PYTHON_VERSION in the config."""
    root = _tree(
        tmp_path,
        {
            "etc/os-release": "ID=debian\nVERSION_ID=12\n",
            "var/lib/dpkg/status": LIBC_ONLY,
            "usr/local/bin/python3.11": b"\x7fELF",
            "usr/local/lib/python3.11/os.py": "",
            "usr/local/lib/python3.11/venv/__init__.py": "",
            "usr/local/lib/python3.11/ensurepip/__init__.py": "",
            "usr/local/lib/python3.11/ensurepip/_bundled/pip-24.0-py3-none-any.whl": b"PK",
        },
        {"usr/local/bin/python3": "python3.11", "usr/local/bin/python": "python3"},
    )
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "PYTHON_VERSION": "3.11.16"}
    [python] = _facts(root, env).pythons
    assert python == BasePython(
        path="/usr/local/bin/python3.11",
        version="3.11.16",
        venv=True,
        ensurepip=True,
        found_by="PYTHON_VERSION",
    )


def test_patchlevel_header_wins_over_the_config_and_a_stray_binary_is_not_usable(
    tmp_path: Path,
) -> None:
    root = _tree(
        tmp_path,
        {
            "opt/py/bin/python3.12": b"\x7fELF",
            "opt/py/lib/python3.12/venv/__init__.py": "",
            "opt/py/include/python3.12/patchlevel.h": '#define PY_VERSION "3.12.7"\n',
            "usr/bin/python3.9": b"\x7fELF",  # no stdlib beside it
        },
    )
    facts = _facts(root, {"PATH": "/opt/py/bin:/usr/bin", "PYTHON_VERSION": "3.12.1"})
    assert [(p.path, p.version, p.found_by, p.usable) for p in facts.pythons] == [
        ("/opt/py/bin/python3.12", "3.12.7", "/opt/py/include/python3.12/patchlevel.h", False),
        ("/usr/bin/python3.9", "3.9", "its file name", False),
    ]
    assert facts.python("3.12") is not None and facts.python("3.10") is None


def test_ubuntu_jammy_python310_and_cuda(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "etc/os-release": 'ID=ubuntu\nVERSION_ID="22.04"\n',
            "var/lib/dpkg/status": "Package: libc6\nStatus: install ok installed\n"
            "Architecture: amd64\nVersion: 2.35-0ubuntu3.8\n\n"
            "Package: python3.10-minimal\nStatus: install ok installed\n"
            "Architecture: amd64\nVersion: 3.10.12-1~22.04.9\n",
            "usr/bin/python3.10": b"\x7fELF",
            "usr/lib/python3.10/venv/__init__.py": "",
        },
    )
    facts = _facts(root, {"CUDA_VERSION": "12.4.1", "PATH": "/usr/local/cuda/bin:/usr/bin"})
    assert (facts.libc, facts.libc_version, facts.cuda) == ("glibc", "2.35", "12.4.1")
    [python] = facts.pythons
    assert (python.version, python.usable) == ("3.10.12", False)


def test_alpine_musl(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "etc/os-release": "ID=alpine\nVERSION_ID=3.20.3\n",
            "lib/ld-musl-x86_64.so.1": b"\x7fELF",
            "lib/apk/db/installed": "P:musl\nV:1.2.5-r0\n\nP:python3\nV:3.12.7-r0\n",
            "usr/bin/python3.12": b"\x7fELF",
        },
    )
    facts = _facts(root)
    assert (facts.os_id, facts.libc, facts.libc_version) == ("alpine", "musl", "1.2.5")
    assert [(p.version, p.found_by) for p in facts.pythons] == [("3.12.7", "apk python3 3.12.7-r0")]


def test_glibc_from_a_library_name_and_a_hostile_passwd(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "lib/x86_64-linux-gnu/libc-2.31.so": b"\x7fELF",
            "etc/passwd": "root:x:0:0::/root:/bin/sh\nbad\nevil$(x):x:5:5::/:/bin/sh\n"
            "app:x:notanumber:1::/:/bin/sh\n",
        },
    )
    facts = _facts(root)
    assert (facts.libc, facts.libc_version) == ("glibc", "2.31")
    assert facts.users == (("root", "0:0"),)  # malformed lines are not accounts
    assert facts.pythons == () and facts.os_id is None


def test_debian_python_versions() -> None:
    assert debian_python_version("3.11.2-6+deb12u6", "3.11") == "3.11.2"
    assert debian_python_version("3.11.0~rc1-1~22.04", "3.11") == "3.11.0rc1"
    assert debian_python_version("3.12.3-1ubuntu0.5", "3.12") == "3.12.3"
    assert debian_python_version("3.12.3-1", "3.11") is None
