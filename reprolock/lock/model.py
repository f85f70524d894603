"""The lockfile as frozen values: what ``reprolock.lock`` pins, per target."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from reprolock.model import Platform

LOCK_VERSION = "1.4"  # the newest this reprolock reads and writes
# A lock without 1.4's tables (a package's sdist and build environment, [[targets.downgrades]])
# is written as 1.3, so that reprolock releases that read 1.3 keep reading it; one with them
# is 1.4, which they read leniently only after warning.
PLAIN_VERSION = "1.3"
INTEGRITY_SINCE = (1, 1)  # locks of this version and newer carry [integrity] digests


@dataclass(frozen=True, slots=True, kw_only=True)
class Wheel:
    filename: str
    url: str
    sha256: str | None  # None only where the spec opts in with python.allow-unhashed
    size: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Sdist:
    """A source distribution the lock builds a wheel from (lock-version 1.4)."""

    filename: str
    url: str
    sha256: str
    size: int | None = None


class BuildWhere(StrEnum):
    FETCH = "fetch"  # `reprolock fetch` builds the wheel on its host (a pure-Python wheel)
    IMAGE = "image"  # the Dockerfile's build stage builds it for the target (C extensions)


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildEnv:
    """How a locked sdist is built: the PEP 517 backend and every wheel of its isolated
    build environment, pinned with its sha256 (resolved for the target)."""

    backend: str  # "setuptools.build_meta:__legacy__", "hatchling.build"
    backend_path: tuple[str, ...] = ()  # in-tree backend folders (PEP 517 backend-path)
    requires: tuple[str, ...] = ()  # build-system.requires and the backend's extra asks
    wheels: tuple[Wheel, ...] = ()
    where: BuildWhere = BuildWhere.FETCH
    why: str = ""  # why it is built there: "pure Python (...)", "setup.py compiles ..."


@dataclass(frozen=True, slots=True, kw_only=True)
class PythonPackage:
    name: str
    version: str
    index: str
    dependencies: tuple[str, ...] = ()
    wheels: tuple[Wheel, ...] = ()
    sdist: Sdist | None = None  # built from this, when no wheel fits the target
    build: BuildEnv | None = None  # with this (present exactly when sdist is)


@dataclass(frozen=True, slots=True, kw_only=True)
class LockedDowngrade:
    """A locked Python package below the newest version its requirements allow, because
    the newer ones have no file the target can use (lock-version 1.4)."""

    name: str
    version: str  # the locked one
    newest: str  # the newest its requirements allow
    reason: str  # what keeps ``newest`` out: "needs antlr4-python3-runtime==4.9.*, which …"


@dataclass(frozen=True, slots=True, kw_only=True)
class AptPackage:
    name: str
    version: str
    architecture: str
    sha256: str
    size: int
    url: str


@dataclass(frozen=True, slots=True, kw_only=True)
class BasePython:
    """A CPython interpreter found in the base image's filesystem (never run)."""

    path: str  # "/usr/bin/python3.11", as found on the PATH or in a standard folder
    version: str  # "3.11.2"; "3.11" when nothing in the image tells the micro version
    venv: bool  # the stdlib has ``venv``
    ensurepip: bool  # ``ensurepip`` and a pip wheel for it: ``python -m venv`` seeds pip
    found_by: str  # where the version came from: "dpkg python3.11-minimal 3.11.2-6", …

    @property
    def usable(self) -> bool:
        """``python -m venv`` works and gives the venv pip (what the Dockerfile needs)."""
        return self.venv and self.ensurepip


@dataclass(frozen=True, slots=True, kw_only=True)
class BaseFacts:
    """What the lock relies on from the base image's contents, read at lock time."""

    os_id: str | None = None  # "debian", "ubuntu", "alpine" (os-release ID)
    os_version: str | None = None  # "12", "22.04" (VERSION_ID)
    libc: str | None = None  # "glibc" or "musl"; None when neither was found
    libc_version: str | None = None  # "2.36" (glibc), "1.2.5" (musl)
    cuda: str | None = None  # the CUDA toolkit in the base (CUDA_VERSION, version.json, dpkg)
    pythons: tuple[BasePython, ...] = ()
    users: tuple[tuple[str, str], ...] = ()  # (name, "uid:gid") from /etc/passwd
    groups: tuple[tuple[str, str], ...] = ()  # (name, "gid") from /etc/group

    def python(self, feature: str) -> BasePython | None:
        """The interpreter of feature release ``feature`` ("3.11"), usable ones first."""
        found = [p for p in self.pythons if p.version.split(".")[:2] == feature.split(".")]
        return next((p for p in found if p.usable), found[0] if found else None)


@dataclass(frozen=True, slots=True, kw_only=True)
class BaseChoice:
    """Why the base is this image, when reprolock chose it (``[base] image``)."""

    image: str  # what the spec asked for: "auto", "python", "nvidia/cuda"
    why: str  # one line: "every CUDA library comes from wheels (…)"
    instead_of: str | None = None  # the image the other choice would have been
    instead_of_bytes: int | None = None  # its compressed layer bytes beyond its OS layer
    cuda_wheel_bytes: int | None = None  # the CUDA libraries the wheels bring (sizes)


@dataclass(frozen=True, slots=True, kw_only=True)
class LockedBase:
    """The base image pinned by digest, with the config facts later stages need."""

    ref: str
    manifest_digest: str
    index_digest: str | None = None
    config_digest: str | None = None
    diff_ids: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    user: str | None = None
    labels: tuple[tuple[str, str], ...] = ()
    size: int | None = None  # compressed bytes of its layers (the manifest's sizes)
    facts: BaseFacts | None = None  # read from its filesystem (lock-version 1.2)
    choice: BaseChoice | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ExtensionKernels:
    """The CUDA kernels a locked wheel other than the framework carries (flash-attn,
    bitsandbytes, torchvision ...), measured from the wheel by ``lock --measure-kernels``."""

    name: str
    version: str
    library: str  # the shared object measured, as named in the wheel
    arches: tuple[str, ...] = ()  # native kernels: sm_80, sm_90a, ...
    ptx: tuple[str, ...] = ()  # PTX for JIT: compute_90, ...
    ptx_isa: str | None = None  # the highest PTX ISA in it ("8.5")
    measured: str = ""  # "<wheel filename> sha256:<hex>"
    coverage: tuple[tuple[str, str], ...] = ()  # (device, "native sm_80" / "no kernels" ...)


@dataclass(frozen=True, slots=True, kw_only=True)
class CudaStack:
    toolkit: str
    driver_min: str
    cudnn: str | None = None
    nccl: str | None = None
    driver_min_compat: str | None = None
    compat: str = "minor"
    arches: tuple[str, ...] = ()  # native kernels of the framework build: sm_80, ...
    ptx: tuple[str, ...] = ()  # PTX it carries for JIT: compute_90, ...
    devices: tuple[tuple[str, str], ...] = ()  # (device as requested, sm arch)
    coverage: tuple[tuple[str, str], ...] = ()  # (device, "native sm_80" / "PTX ..." / ...)
    frameworks: tuple[str, ...] = ()  # "torch 2.5.1 (cu124, CUDA 12.4)"
    conflicts: tuple[str, ...] = ()  # disagreeing copies of CUDA libraries
    extensions: tuple[ExtensionKernels, ...] = ()  # measured CUDA extensions, by name


@dataclass(frozen=True, slots=True, kw_only=True)
class LockedHealthcheck:
    cmd: tuple[str, ...]
    interval: str | None = None
    timeout: str | None = None
    start_period: str | None = None
    retries: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LockedImage:
    """How the image is assembled: what the Dockerfile emitter and `verify` need, so that
    neither reads the spec."""

    workdir: str
    user: str
    venv: str | None = None  # where the Python packages are installed
    copy: tuple[tuple[str, str], ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    cmd: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    expose: tuple[str, ...] = ()
    healthcheck: LockedHealthcheck | None = None
    allow_data: tuple[str, ...] = ()  # data files `verify` accepts (path globs, `*` spans /)


class InterpreterSource(StrEnum):
    BASE = "base"  # the base image's own interpreter
    APT = "apt"  # the distribution's python3.X and python3.X-venv, in the apt closure
    STANDALONE = "standalone"  # a python-build-standalone install_only tarball


@dataclass(frozen=True, slots=True, kw_only=True)
class Interpreter:
    """The CPython the venv is created with, and where it comes from."""

    source: InterpreterSource
    path: str  # the interpreter the build runs: "/usr/bin/python3.11"
    version: str  # its exact version: "3.11.2"
    packages: tuple[str, ...] = ()  # apt: the packages that bring it
    url: str | None = None  # standalone: the tarball
    sha256: str | None = None
    size: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LockedTarget:
    id: str
    platform: Platform
    python: str
    interpreter: Interpreter | None = None  # absent: no venv, or a lock before 1.2
    cuda: CudaStack | None = None
    base: LockedBase | None = None
    apt_snapshot: str | None = None
    apt: tuple[AptPackage, ...] = ()
    packages: tuple[PythonPackage, ...] = ()
    downgrades: tuple[LockedDowngrade, ...] = ()  # silent downgrades said out loud, by name


@dataclass(frozen=True, slots=True, kw_only=True)
class Lockfile:
    lock_version: str
    created_by: str
    inputs_hash: str
    matrices_version: str
    inputs: tuple[tuple[str, str], ...] = ()  # per spec section: its hash
    image: LockedImage | None = None
    targets: tuple[LockedTarget, ...] = field(default=())

    def target(self, target_id: str) -> LockedTarget | None:
        return next((t for t in self.targets if t.id == target_id), None)
