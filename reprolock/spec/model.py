"""The parsed spec: frozen values, one per ``reprolock.toml`` section."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from reprolock.model import ComputeCapability, DriverVersion, ImageRef, Platform, PythonVersion


class UnknownCoverage(StrEnum):
    """What to do with a framework build whose GPU kernels are neither in the tables nor
    measured."""

    REFUSE = "refuse"  # fail closed: such a build is not chosen for a GPU target
    WARN = "warn"  # accept it knowingly, with a warning


class CompatPolicy(StrEnum):
    """How the driver floor is computed for CUDA 11+."""

    MINOR = "minor"  # CUDA minor-version compatibility: the major's floor suffices
    STRICT = "strict"  # the exact toolkit's minimum driver


class PrereleasePolicy(StrEnum):
    """When pre-releases may be picked (the names uv uses)."""

    DISALLOW = "disallow"
    ALLOW = "allow"
    IF_NECESSARY = "if-necessary"
    EXPLICIT = "explicit"
    IF_NECESSARY_OR_EXPLICIT = "if-necessary-or-explicit"


class SdistPolicy(StrEnum):
    """Whether a release published only as a source distribution may be built
    (``[python] sdists``)."""

    BUILD = "build"  # build it (reproducibly: a locked build environment)
    REFUSE = "refuse"  # wheels only, as pip's --only-binary=:all:


class InterpreterPolicy(StrEnum):
    """Where the CPython of the venv comes from (``[python] interpreter``)."""

    AUTO = "auto"  # the base's, else the distribution's package, else a standalone build
    BASE = "base"  # the base image's own interpreter
    APT = "apt"  # python3.X and python3.X-venv from the base distribution's archive
    STANDALONE = "standalone"  # a python-build-standalone install_only tarball


@dataclass(frozen=True, slots=True, kw_only=True)
class StandaloneSpec:
    """Where python-build-standalone builds are fetched from."""

    release: str  # a release tag, "20241016"
    url: str | None = None  # the folder of releases (a mirror); default: the project's own


@dataclass(frozen=True, slots=True, kw_only=True)
class Environment:
    name: str
    python: PythonVersion
    platforms: tuple[Platform, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class GpuDevice:
    """A target GPU as the user wrote it, with what it resolved to."""

    requested: str
    model: str | None  # the product name from the GPU table, None for a bare capability
    capability: ComputeCapability


@dataclass(frozen=True, slots=True, kw_only=True)
class GpuSpec:
    devices: tuple[GpuDevice, ...]
    driver: DriverVersion | None
    cuda: SpecifierSet | None
    cudnn: SpecifierSet | None
    compat: CompatPolicy
    unknown_coverage: UnknownCoverage = UnknownCoverage.REFUSE


@dataclass(frozen=True, slots=True, kw_only=True)
class BaseSpec:
    """Either an explicit ``ref`` or the family the solver chooses a tag from."""

    ref: ImageRef | None = None
    image: str | None = None
    flavor: str | None = None
    os: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class IndexSpec:
    name: str
    url: str
    packages: tuple[str, ...] = ()  # canonical names routed only to this index
    default: bool = False  # replaces PyPI as the index for unrouted packages


@dataclass(frozen=True, slots=True, kw_only=True)
class PythonSpec:
    requirements: tuple[Requirement, ...]
    requirements_files: tuple[str, ...]
    indexes: tuple[IndexSpec, ...]
    venv: str
    exclude_newer: datetime | None
    prerelease: PrereleasePolicy
    allow_unhashed: tuple[str, ...] = ()
    pytorch_index: str | None = None  # where the PyTorch variant indexes live (cu124/, cpu/)
    interpreter: InterpreterPolicy = InterpreterPolicy.AUTO
    interpreter_prerelease: bool = False  # accept a distribution's release candidate
    standalone: StandaloneSpec | None = None
    sdists: SdistPolicy = SdistPolicy.BUILD
    no_build: tuple[str, ...] = ()  # canonical names never built from an sdist
    only_build: tuple[str, ...] = ()  # when set: the only names that may be built

    def may_build(self, name: str) -> bool:
        """Whether project ``name`` (canonical) may be built from its sdist."""
        if name in self.no_build:
            return False
        if self.only_build:
            return name in self.only_build
        return self.sdists is SdistPolicy.BUILD


@dataclass(frozen=True, slots=True, kw_only=True)
class AptSpec:
    packages: tuple[str, ...]
    snapshot: str | None = None
    mirror: str | None = None
    allow_unsigned: bool = False
    keyrings: tuple[str, ...] = ()  # extra archive keys, paths relative to the spec


@dataclass(frozen=True, slots=True, kw_only=True)
class Healthcheck:
    cmd: tuple[str, ...]
    interval: str | None = None
    timeout: str | None = None
    start_period: str | None = None
    retries: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageSpec:
    workdir: str = "/app"
    user: str = "app"
    copy: tuple[tuple[str, str], ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    cmd: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    expose: tuple[str, ...] = ()
    healthcheck: Healthcheck | None = None
    allow_data: tuple[str, ...] = ()  # data files `verify` accepts (path globs, `*` spans /)


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistrySpec:
    mirrors: tuple[tuple[str, str], ...] = ()
    insecure: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Spec:
    """Everything ``reprolock.toml`` says, validated."""

    environment: Environment
    gpu: GpuSpec | None
    base: BaseSpec
    python: PythonSpec | None
    apt: AptSpec | None
    image: ImageSpec
    registry: RegistrySpec = field(default_factory=RegistrySpec)
