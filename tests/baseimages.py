"""Real parts for the interpreter tests, provisioned once and cached in
``~/.cache/reprolock-tests`` (like the debootstrap'd base of `tests.dockerd`):

- ``bookworm-minbase.tar``: ``debootstrap --variant=minbase bookworm`` — a Debian without
  Python — and ``bookworm-python3.11-debs/``: the real ``.deb`` files ``apt-get install
  --no-install-recommends python3.11 python3.11-venv`` downloads into that rootfs (chroot),
  i.e. the interpreter's closure beyond minbase, from Debian's mirror.
- a python-build-standalone-layout ``install_only`` tarball made from the CPython running
  the tests (a from-source build with ``ensurepip``'s bundled wheels, e.g. pyenv's): its
  ``bin``, ``lib/python3.X`` (without site-packages and tests), ``include`` and shared
  libraries, with the non-glibc libraries its extension modules link bundled in ``lib/``
  and every rpath made ``$ORIGIN``-relative with Debian's ``patchelf`` — relocatable, as
  python-build-standalone's builds are.
- ``libcudart.so.12``: NVIDIA's CUDA runtime from Debian trixie's ``libcudart12`` (non-free),
  the same 12.4.127 the PyPI wheel ``nvidia-cuda-runtime-cu12`` carries.
"""

from __future__ import annotations

import hashlib
import io
import lzma
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.dockerd import Dockerd
    from tests.ociregistry import Registry

MIRROR = "http://deb.debian.org/debian"
MINBASE_TAG = "reprolock-test/minbase:bookworm"
STANDALONE_RELEASE = "20260101"
TRIPLE = "x86_64-unknown-linux-gnu"
# libraries glibc itself provides: never bundled (the base has them)
_GLIBC = re.compile(
    r"^(linux-vdso|ld-linux[^ ]*|libc|libm|libpthread|libdl|librt|libutil|libresolv|libanl)"
    r"\.so[.0-9]*$"
)


def cache_dir() -> Path:
    root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "reprolock-tests"
    root.mkdir(parents=True, exist_ok=True)
    return root


# -- the minbase rootfs and python3.11's .debs ------------------------------------------------
def minbase(work: Path) -> tuple[Path, Path]:
    """(the minbase rootfs tarball, the folder of python3.11's .debs beyond it)."""
    cache = cache_dir()
    tarball = cache / "bookworm-minbase.tar"
    debs = cache / "bookworm-python3.11-debs"
    if tarball.exists() and (debs / ".complete").exists():
        return tarball, debs
    rootfs = work / "minbase-rootfs"
    shutil.rmtree(rootfs, ignore_errors=True)
    subprocess.run(
        ["debootstrap", "--variant=minbase", "bookworm", str(rootfs), MIRROR],
        check=True,
        capture_output=True,
    )
    archives = rootfs / "var" / "cache" / "apt" / "archives"
    before = {p.name for p in archives.glob("*.deb")}
    for args in (
        ["apt-get", "update", "-q"],
        [
            "apt-get",
            "install",
            "-y",
            "-q",
            "--download-only",
            "--no-install-recommends",
            "python3.11",
            "python3.11-venv",
        ],
    ):
        subprocess.run(["chroot", str(rootfs), *args], check=True, capture_output=True)
    shutil.rmtree(debs, ignore_errors=True)
    debs.mkdir()
    for deb in sorted(archives.glob("*.deb")):
        if deb.name not in before:
            shutil.copy2(deb, debs / deb.name)
    (debs / ".complete").write_text("")
    # the base as an image would ship it: no package caches or lists
    for leftover in archives.glob("*.deb"):
        leftover.unlink()
    shutil.rmtree(rootfs / "var" / "lib" / "apt" / "lists", ignore_errors=True)
    (rootfs / "var" / "lib" / "apt" / "lists" / "partial").mkdir(parents=True)
    partial = tarball.with_suffix(".partial")
    subprocess.run(
        ["tar", "-C", str(rootfs), "--numeric-owner", "--sort=name", "-cf", str(partial), "."],
        check=True,
    )
    partial.replace(tarball)
    shutil.rmtree(rootfs, ignore_errors=True)
    return tarball, debs


# -- a relocatable CPython in python-build-standalone's install_only layout ------------------
def standalone_name(version: str) -> str:
    return f"cpython-{version}+{STANDALONE_RELEASE}-{TRIPLE}-install_only.tar.gz"


def standalone_python() -> tuple[Path, str] | None:
    """(the install_only tarball, its CPython version); None when the Python running the
    tests cannot be made one (a distribution's, without ensurepip's bundled wheels)."""
    version = platform.python_version()
    feature = f"{sys.version_info[0]}.{sys.version_info[1]}"
    prefix = Path(sys.base_prefix)
    stdlib = prefix / "lib" / f"python{feature}"
    if (
        platform.machine() != "x86_64"
        or not list((stdlib / "ensurepip" / "_bundled").glob("pip-*.whl"))
        or shutil.which("patchelf") is None
    ):
        return None
    out = cache_dir() / standalone_name(version)
    if out.exists():
        return out, version
    stage = cache_dir() / "standalone-stage" / "python"
    shutil.rmtree(stage.parent, ignore_errors=True)
    (stage / "bin").mkdir(parents=True)
    (stage / "lib").mkdir()
    shutil.copy2(prefix / "bin" / f"python{feature}", stage / "bin" / f"python{feature}")
    for link in ("python3", "python"):
        (stage / "bin" / link).symlink_to(f"python{feature}")
    for lib in prefix.joinpath("lib").glob(f"libpython{feature}*.so*"):
        if lib.is_symlink():
            (stage / "lib" / lib.name).symlink_to(os.readlink(lib))
        else:
            shutil.copy2(lib, stage / "lib" / lib.name)
    shutil.copytree(
        stdlib,
        stage / "lib" / f"python{feature}",
        symlinks=True,
        ignore=shutil.ignore_patterns(
            "site-packages",
            "test",
            "tests",
            "idlelib",
            "tkinter",
            "turtledemo",
            "__pycache__",
            "config-*",
            "_tkinter*.so",
        ),
    )
    (stage / "lib" / f"python{feature}" / "site-packages").mkdir()
    shutil.copytree(prefix / "include" / f"python{feature}", stage / "include" / f"python{feature}")
    _bundle_libraries(stage, feature)
    partial = out.with_suffix(".partial")
    _deterministic_tar(stage, partial)
    partial.replace(out)
    shutil.rmtree(stage.parent, ignore_errors=True)
    return out, version


def _needed(elf: Path) -> dict[str, Path]:
    """The shared libraries ``elf`` loads that glibc does not provide (name → host path)."""
    result = subprocess.run(["ldd", str(elf)], capture_output=True, text=True, check=False)
    found: dict[str, Path] = {}
    for line in result.stdout.splitlines():
        name, arrow, rest = line.strip().partition(" => ")
        if arrow and not _GLIBC.match(name) and rest.startswith("/") and "libpython" not in name:
            found[name] = Path(rest.split(" (", 1)[0])
    return found


def _bundle_libraries(stage: Path, feature: str) -> None:
    lib = stage / "lib"
    dynload = lib / f"python{feature}" / "lib-dynload"
    elves = [stage / "bin" / f"python{feature}", *dynload.glob("*.so")]
    elves += [p for p in lib.glob("libpython*.so*") if not p.is_symlink()]
    todo = dict.fromkeys(elves)
    bundled: set[str] = set()
    while todo:
        elf = next(iter(todo))
        del todo[elf]
        for name, path in _needed(elf).items():
            if name in bundled:
                continue
            bundled.add(name)
            copy = lib / name
            shutil.copy2(path.resolve(), copy)
            copy.chmod(0o755)
            todo[copy] = None
    for elf in elves + [lib / name for name in bundled]:
        if elf.parent == dynload:
            rpath = "$ORIGIN/../.."
        elif elf.parent == lib:
            rpath = "$ORIGIN"
        else:
            rpath = "$ORIGIN/../lib"
        subprocess.run(["patchelf", "--set-rpath", rpath, str(elf)], check=True)


def _deterministic_tar(folder: Path, out: Path) -> None:
    """``folder`` as ``<name>/…`` in a .tar.gz that is the same bytes every time."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        paths = sorted(folder.rglob("*"))
        for path in [folder, *paths]:
            info = tar.gettarinfo(str(path), arcname=str(path.relative_to(folder.parent)))
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if info.isfile():
                with path.open("rb") as data:
                    tar.addfile(info, data)
            else:
                tar.addfile(info)
    import gzip

    out.write_bytes(gzip.compress(raw.getvalue(), compresslevel=6, mtime=0))


def serve_standalone(folder: Path, tarball: Path) -> Path:
    """A python-build-standalone release folder: ``<release>/<asset>`` and ``SHA256SUMS``
    (with another platform's asset beside it, as real releases have)."""
    release = folder / STANDALONE_RELEASE
    release.mkdir(parents=True, exist_ok=True)
    shutil.copy2(tarball, release / tarball.name)
    digest = hashlib.sha256(tarball.read_bytes()).hexdigest()
    other = tarball.name.replace(TRIPLE, "aarch64-unknown-linux-gnu")
    (release / "SHA256SUMS").write_text(f"{'0' * 64}  {other}\n{digest}  {tarball.name}\n")
    return folder


# -- NVIDIA's CUDA runtime from Debian ---------------------------------------------------------
def libcudart() -> tuple[Path, str]:
    """(``libcudart.so.12``, its version) from Debian trixie's libcudart12 (non-free)."""
    cache = cache_dir()
    out = cache / "libcudart.so.12"
    version_file = cache / "libcudart.version"
    if out.exists() and version_file.exists():
        return out, version_file.read_text().strip()
    index = f"{MIRROR}/dists/trixie/non-free/binary-amd64/Packages.xz"
    with urllib.request.urlopen(index, timeout=60) as response:
        packages = lzma.decompress(response.read()).decode()
    stanza = next(s for s in packages.split("\n\n") if s.startswith("Package: libcudart12\n"))
    fields = dict(line.split(": ", 1) for line in stanza.splitlines() if ": " in line)
    with urllib.request.urlopen(f"{MIRROR}/{fields['Filename']}", timeout=120) as response:
        deb = response.read()
    assert hashlib.sha256(deb).hexdigest() == fields["SHA256"], "libcudart12 .deb damaged"
    work = cache / "libcudart-stage"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    (work / "libcudart12.deb").write_bytes(deb)
    subprocess.run(
        ["dpkg-deb", "-x", str(work / "libcudart12.deb"), str(work / "root")], check=True
    )
    real = next(p for p in (work / "root").rglob("libcudart.so.12.*") if not p.is_symlink())
    shutil.copy2(real, out.with_suffix(".partial"))
    out.with_suffix(".partial").replace(out)
    version = real.name.removeprefix("libcudart.so.")
    version_file.write_text(version + "\n")
    shutil.rmtree(work, ignore_errors=True)
    return out, version


# -- bases built by dockerd --------------------------------------------------------------------
def push_python_slim(dockerd: Dockerd, registry: Registry, work: Path) -> tuple[str, str]:
    """A ``python:3.11-slim-bookworm`` look-alike — the standalone CPython in ``/usr/local``
    on the minbase, with the official images' ENV — pushed to the loopback registry as
    ``library/python:3.11-slim-bookworm``; (the pushed name, its CPython version)."""
    found = standalone_python()
    assert found is not None, "the standalone CPython could not be made (see standalone_python)"
    tarball, version = found
    context = work / "python-slim"
    context.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tarball) as tar:
        tar.extractall(context, filter="tar")
    (context / "Dockerfile").write_text(
        f"FROM {MINBASE_TAG}\n"
        "COPY python/ /usr/local/\n"
        "ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin \\\n"
        f"    LANG=C.UTF-8 PYTHON_VERSION={version}\n"
        'CMD ["python3"]\n'
    )
    tag = f"{registry.host}/library/python:3.11-slim-bookworm"
    dockerd.buildkit(context, "Dockerfile", tag)
    dockerd.docker("push", tag)
    return tag, version


# NVIDIA's CUDA 12.4.1 runtime libraries as Debian trixie (non-free) ships them: what an
# nvidia/cuda "runtime" image adds to its OS (without NPP and NCCL, which Debian lacks).
CUDA_RUNTIME = (
    "libcudart12",
    "libcublas12",
    "libcublaslt12",
    "libcufft11",
    "libcurand10",
    "libcusolver11",
    "libcusparse12",
    "libnvjitlink12",
    "libnvrtc12",
    "libnvrtc-builtins12.4",
)


def cuda_runtime_debs() -> Path:
    """The CUDA 12.4 runtime .debs from Debian trixie non-free (cached)."""
    folder = cache_dir() / "trixie-cuda-12.4-runtime-debs"
    if (folder / ".complete").exists():
        return folder
    folder.mkdir(exist_ok=True)
    index = f"{MIRROR}/dists/trixie/non-free/binary-amd64/Packages.xz"
    with urllib.request.urlopen(index, timeout=60) as response:
        stanzas = lzma.decompress(response.read()).decode().split("\n\n")
    for name in CUDA_RUNTIME:
        stanza = next(s for s in stanzas if s.startswith(f"Package: {name}\n"))
        fields = dict(line.split(": ", 1) for line in stanza.splitlines() if ": " in line)
        url = f"{MIRROR}/{fields['Filename']}"
        with urllib.request.urlopen(url, timeout=600) as response:
            data = response.read()
        assert hashlib.sha256(data).hexdigest() == fields["SHA256"], f"{name} damaged"
        (folder / fields["Filename"].rsplit("/", 1)[-1]).write_bytes(data)
    (folder / ".complete").write_text("")
    return folder


def push_cuda_like(dockerd: Dockerd, registry: Registry, work: Path, base: str) -> str:
    """``base`` with a system CUDA 12.4.1 runtime (Debian's packages of NVIDIA's libraries,
    ``CUDA_VERSION`` set as nvidia/cuda does): an nvidia/cuda-runtime-like base."""
    context = work / "cuda-like"
    (context / "debs").mkdir(parents=True, exist_ok=True)
    for deb in cuda_runtime_debs().glob("*.deb"):
        shutil.copy2(deb, context / "debs" / deb.name)
    (context / "Dockerfile").write_text(
        f"FROM {base}\n"
        "RUN --mount=type=bind,source=debs,target=/tmp/debs dpkg -i /tmp/debs/*.deb\n"
        "ENV CUDA_VERSION=12.4.1 NVIDIA_VISIBLE_DEVICES=all "
        "NVIDIA_DRIVER_CAPABILITIES=compute,utility\n"
    )
    tag = f"{registry.host}/reprolock/cuda-like:12.4.1-runtime-bookworm"
    dockerd.buildkit(context, "Dockerfile", tag)
    dockerd.docker("push", tag)
    return tag
