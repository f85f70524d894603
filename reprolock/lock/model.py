"""The lockfile as frozen values: what ``reprolock.lock`` pins, per target."""

from __future__ import annotations

from dataclasses import dataclass, field

from reprolock.model import Platform

LOCK_VERSION = "1.1"
INTEGRITY_SINCE = (1, 1)  # locks of this version and newer carry [integrity] digests


@dataclass(frozen=True, slots=True, kw_only=True)
class Wheel:
    filename: str
    url: str
    sha256: str | None  # None only where the spec opts in with python.allow-unhashed
    size: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PythonPackage:
    name: str
    version: str
    index: str
    dependencies: tuple[str, ...] = ()
    wheels: tuple[Wheel, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class AptPackage:
    name: str
    version: str
    architecture: str
    sha256: str
    size: int
    url: str


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


@dataclass(frozen=True, slots=True, kw_only=True)
class LockedTarget:
    id: str
    platform: Platform
    python: str
    cuda: CudaStack | None = None
    base: LockedBase | None = None
    apt_snapshot: str | None = None
    apt: tuple[AptPackage, ...] = ()
    packages: tuple[PythonPackage, ...] = ()


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
