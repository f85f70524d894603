"""PyTorch, TensorFlow and JAX builds, from ``matrices/{pytorch,tensorflow,jax}.toml``.

A *build* is one installable flavour of a framework release for one platform: the PyPI wheel,
a PyTorch index variant (``+cu124``, ``+cpu``), TensorFlow with or without ``[and-cuda]``, a
JAX CUDA plugin. Each says which CUDA and cuDNN it brings and which GPUs it has kernels for.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from reprolock.compat.arches import ArchList
from reprolock.model import CudaVersion

AMD64 = "linux/amd64"
ARM64 = "linux/arm64"


def series_of(version: Version) -> str:
    return f"{version.major}.{version.minor}"


def _version(text: str) -> Version:
    return Version(text)


def _requirement(text: str | None) -> Requirement | None:
    if not text:
        return None
    try:
        return Requirement(text)
    except InvalidRequirement:
        return None


def _lower_bound(requirement: Requirement | None) -> list[str] | None:
    """The dotted parts of the version a requirement starts at (``>=12.5.82`` → 12,5,82)."""
    if requirement is None:
        return None
    for spec in requirement.specifier:
        if spec.operator in ("==", ">=", "~=", "==="):
            return spec.version.split(".")
    return None


def lowest_cuda(requirement: Requirement | None) -> CudaVersion | None:
    """The CUDA major.minor a runtime requirement starts at (``>=12.5.82`` → 12.5)."""
    parts = _lower_bound(requirement)
    if parts is None or len(parts) < 2:
        return None
    try:
        return CudaVersion.parse(f"{parts[0]}.{parts[1]}")
    except ValueError:
        return None


def cudnn_major(requirement: Requirement | None) -> int | None:
    """The cuDNN major a cuDNN wheel requirement admits (``>=9.3.0.75,<10`` → 9)."""
    parts = _lower_bound(requirement)
    return int(parts[0]) if parts and parts[0].isdigit() else None


@dataclass(frozen=True, slots=True, kw_only=True)
class Build:
    """One installable build of a framework release for one platform."""

    framework: str  # "torch", "tensorflow", "jax"
    version: Version
    variant: str  # "pypi", "cu124", "cpu", "and-cuda", "system-cuda", "cuda12", ...
    cuda: CudaVersion | None  # None: a CPU build
    cudnn: str | None = None  # exact version, or "9" when only the major is known
    arches: ArchList | None = None  # None: not in the matrices
    index: str | None = None  # the PyTorch index variant it must be routed to
    needs_system_cuda: bool = False  # CUDA libraries must come from the base image
    min_capability: str | None = None  # the framework's stated least compute capability
    sources: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        what = {
            "pypi": "PyPI wheel",
            "cpu": "CPU build",
            "and-cuda": "[and-cuda]",
            "system-cuda": "system CUDA",
        }.get(self.variant, self.variant)
        cuda = f", CUDA {self.cuda}" if self.cuda is not None else ""
        return f"{self.framework} {self.version} ({what}{cuda})"

    @property
    def cudnn_major(self) -> int | None:
        if not self.cudnn:
            return None
        with contextlib.suppress(ValueError):
            return int(self.cudnn.split(".")[0])
        return None


# -- PyTorch --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class TorchVariant:
    series: str
    name: str  # "cu124"
    cuda: CudaVersion
    cudnn: str | None
    platforms: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class TorchRelease:
    version: Version
    python: tuple[str, ...]
    cuda: CudaVersion | None  # of the PyPI default wheel (linux/amd64)
    cudnn: str | None
    nccl: str | None
    arm64_cuda: bool
    torchvision: tuple[Version, ...] = ()
    torchaudio: tuple[Version, ...] = ()


COMPANIONS = ("torchvision", "torchaudio")

# Distributions whose CUDA kernels a lock's framework builds (`cuda.arches`) describe.
_FRAMEWORK_DISTS = frozenset({"torch", "tensorflow", "tensorflow-cpu", "jax", "jaxlib"})


def is_framework_dist(name: str) -> bool:
    """torch, TensorFlow, JAX and its CUDA plugins (``jax-cuda12-plugin``,
    ``jax-cuda13-pjrt`` ...), by canonical distribution name."""
    return name in _FRAMEWORK_DISTS or name.startswith("jax-cuda")


@dataclass(frozen=True, slots=True, kw_only=True)
class Companion:
    """A torchvision/torchaudio release whose torch requirement is not an exact pin."""

    name: str
    version: Version
    published: SpecifierSet | None  # its Requires-Dist on torch; None: it declares none
    built_for: Version  # the torch minor its line belongs to
    released_with: Version  # the torch release uploaded with it

    @property
    def torch(self) -> SpecifierSet:
        """The torch releases it is known to work with: from the minor it is built for up to
        the minor of the torch it was released with. A later torch is not known to keep the
        ABI it was compiled against, whatever the published range admits."""
        last = self.released_with.release
        upper = f"{last[0]}.{last[1] + 1 if len(last) > 1 else 1}"
        bound = SpecifierSet(f">={self.built_for},<{upper}")
        return bound & self.published if self.published is not None else bound


@dataclass(frozen=True, slots=True, kw_only=True)
class TorchTable:
    index_url: str
    releases: tuple[TorchRelease, ...]  # oldest first
    series: Mapping[str, tuple[str, ...]]  # "2.5" → ("cu118", ..., "cpu")
    variants: Mapping[tuple[str, str], TorchVariant]
    arches: Mapping[tuple[str, str, str], ArchList]  # (series, variant, platform)
    # measured kernels of the PyPI wheel: (release, platform) → arch list
    pypi_arches: Mapping[tuple[Version, str], ArchList] = field(default_factory=dict)
    companions: tuple[Companion, ...] = ()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TorchTable:
        releases = tuple(
            sorted(
                (
                    TorchRelease(
                        version=_version(r["torch"]),
                        python=tuple(r["python"]),
                        cuda=CudaVersion.parse(r["cuda"]) if r.get("cuda") else None,
                        cudnn=r.get("cudnn"),
                        nccl=r.get("nccl"),
                        arm64_cuda=bool(r["arm64-cuda"]),
                        torchvision=tuple(_version(v) for v in r.get("torchvision", ())),
                        torchaudio=tuple(_version(v) for v in r.get("torchaudio", ())),
                    )
                    for r in data.get("release", ())
                ),
                key=lambda r: r.version,
            )
        )
        variants = {
            (v["torch"], v["variant"]): TorchVariant(
                series=v["torch"],
                name=v["variant"],
                cuda=CudaVersion.parse(v["cuda"]),
                cudnn=v.get("cudnn"),
                platforms=tuple(v["platforms"]),
            )
            for v in data.get("variant", ())
        }
        arches: dict[tuple[str, str, str], ArchList] = {}
        for a in data.get("arches", ()):
            key = (a["torch"], a["variant"], a["platform"])
            # A build script beats a third-party measurement when both exist.
            if key in arches and "moi90" in a["sources"]:
                continue
            arches[key] = ArchList.from_row(a)
        pypi_arches = {
            (_version(a["torch"]), a["platform"]): ArchList.parse(
                a["sass"],
                a["ptx"],
                sources=("measured",),
                ptx_isa=a.get("ptx-isa"),
                measured=a["measured"],
            )
            for a in data.get("pypi-arches", ())
        }
        return cls(
            index_url=str(data.get("index", {}).get("url", "https://download.pytorch.org/whl")),
            releases=releases,
            series={s["torch"]: tuple(s["variants"]) for s in data.get("series", ())},
            variants=variants,
            arches=arches,
            pypi_arches=pypi_arches,
            companions=tuple(
                Companion(
                    name=c["name"],
                    version=_version(c["version"]),
                    published=SpecifierSet(c["torch"]) if c.get("torch") else None,
                    built_for=_version(c["built-for"]),
                    released_with=_version(c["released-with"]),
                )
                for c in data.get("companion", ())
            ),
        )

    def release(self, version: Version) -> TorchRelease | None:
        public = Version(version.public)
        return next((r for r in self.releases if r.version == public), None)

    def builds(self, release: TorchRelease, platform: str) -> list[Build]:
        """Every build of ``release`` for ``platform``: the PyPI wheel first, then the
        index variants, newest CUDA first, then the CPU build."""
        series = series_of(release.version)
        out: list[Build] = []
        pypi_cuda = release.cuda if (platform == AMD64 or release.arm64_cuda) else None
        out.append(
            Build(
                framework="torch",
                version=release.version,
                variant="pypi",
                cuda=pypi_cuda,
                cudnn=release.cudnn if pypi_cuda is not None else None,
                arches=self._pypi_arches(release, series, pypi_cuda, platform),
                sources=("pypi",),
            )
        )
        names = self.series.get(series, ())
        for name in sorted(
            (n for n in names if n != "cpu"),
            key=lambda n: (
                self.variants[(series, n)].cuda
                if (series, n) in self.variants
                else CudaVersion((0, 0))
            ),
            reverse=True,
        ):
            variant = self.variants.get((series, name))
            if variant is None or platform not in variant.platforms:
                continue
            out.append(
                Build(
                    framework="torch",
                    version=release.version,
                    variant=name,
                    cuda=variant.cuda,
                    cudnn=variant.cudnn,
                    arches=self.arches.get((series, name, platform)),
                    index=name,
                    sources=("tinfra",),
                )
            )
        if "cpu" in names:
            out.append(
                Build(
                    framework="torch",
                    version=release.version,
                    variant="cpu",
                    cuda=None,
                    index="cpu",
                    sources=("prev", "tinfra"),
                )
            )
        return out

    def _pypi_arches(
        self, release: TorchRelease, series: str, cuda: CudaVersion | None, platform: str
    ) -> ArchList | None:
        """The PyPI wheel's kernels: measured from the wheel, else (older releases) those of
        the index variant with the same CUDA."""
        if cuda is None:
            return None
        measured = self.pypi_arches.get((release.version, platform))
        if measured is not None:
            return measured
        return self.arches.get((series, f"cu{cuda.major}{cuda.minor}", platform))

    def variant_of(self, version: Version) -> str:
        """``2.5.1+cu124`` → ``cu124``; a version without a local label is the PyPI wheel."""
        local = version.local or ""
        return local if (local.startswith("cu") or local == "cpu") else "pypi"

    def companion_of(self, name: str, version: Version) -> Version | None:
        """The torch release a torchvision/torchaudio release pins exactly, if known."""
        public = Version(version.public)
        for release in self.releases:
            if public in getattr(release, name):
                return release.version
        return None

    def companion_range(self, name: str, version: Version) -> SpecifierSet | None:
        """The torch releases a torchvision/torchaudio release is known to work with: its
        exact pin, or (from torch 2.11 on, where the pins became ranges or vanished) the
        minors from the one its line is built for to that of the torch released with it."""
        pinned = self.companion_of(name, version)
        if pinned is not None:
            return SpecifierSet(f"=={pinned}")
        public = Version(version.public)
        row = next((c for c in self.companions if c.name == name and c.version == public), None)
        return row.torch if row is not None else None

    def with_companion(self, name: str) -> tuple[Version, ...]:
        """Torch releases that have a known ``name`` release to go with them."""
        ranges = [c.torch for c in self.companions if c.name == name]
        return tuple(
            r.version
            for r in self.releases
            if getattr(r, name) or any(r.version in spec for spec in ranges)
        )


# -- TensorFlow -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class TfRelease:
    version: Version
    python: tuple[str, ...]
    arm64_wheels: bool
    tested_cuda: CudaVersion | None
    tested_cudnn: str | None
    and_cuda_runtime: Requirement | None
    and_cuda_cudnn: Requirement | None


@dataclass(frozen=True, slots=True, kw_only=True)
class TensorflowTable:
    releases: tuple[TfRelease, ...]
    arches: Mapping[str, ArchList]  # series → arch list

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TensorflowTable:
        releases = []
        for r in data.get("release", ()):
            try:
                version = _version(r["tensorflow"])
            except InvalidVersion:
                continue
            releases.append(
                TfRelease(
                    version=version,
                    python=tuple(r["python"]),
                    arm64_wheels=bool(r["arm64-wheels"]),
                    tested_cuda=CudaVersion.parse(r["tested-cuda"])
                    if r.get("tested-cuda")
                    else None,
                    tested_cudnn=r.get("tested-cudnn"),
                    and_cuda_runtime=_requirement(r.get("and-cuda-runtime")),
                    and_cuda_cudnn=_requirement(r.get("and-cuda-cudnn")),
                )
            )
        arches = {a["tensorflow"]: ArchList.from_row(a) for a in data.get("arches", ())}
        return cls(releases=tuple(sorted(releases, key=lambda r: r.version)), arches=arches)

    def release(self, version: Version) -> TfRelease | None:
        public = Version(version.public)
        return next((r for r in self.releases if r.version == public), None)

    def build(self, release: TfRelease, *, and_cuda: bool) -> Build:
        arches = self.arches.get(series_of(release.version))
        if and_cuda and release.and_cuda_runtime is not None:
            major = cudnn_major(release.and_cuda_cudnn)
            return Build(
                framework="tensorflow",
                version=release.version,
                variant="and-cuda",
                cuda=lowest_cuda(release.and_cuda_runtime),
                cudnn=str(major) if major is not None else None,
                arches=arches,
                sources=("pypi",),
            )
        return Build(
            framework="tensorflow",
            version=release.version,
            variant="system-cuda",
            cuda=release.tested_cuda,
            cudnn=release.tested_cudnn,
            arches=arches,
            needs_system_cuda=True,
            sources=("tfdocs",),
        )


# -- JAX ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class JaxPlugin:
    major: int
    python: tuple[str, ...]
    arm64: bool
    runtime: Requirement | None
    cudnn: Requirement | None


@dataclass(frozen=True, slots=True, kw_only=True)
class JaxRelease:
    version: Version
    python: tuple[str, ...]
    plugins: Mapping[int, JaxPlugin] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class JaxTable:
    releases: tuple[JaxRelease, ...]
    min_capability: Mapping[int, str]  # CUDA major → least compute capability
    driver: Mapping[int, str]  # CUDA major → least driver the docs state

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JaxTable:
        releases = []
        for r in data.get("release", ()):
            plugins = {}
            for major in (12, 13):
                p = r.get(f"cuda{major}")
                if p:
                    plugins[major] = JaxPlugin(
                        major=major,
                        python=tuple(p["python"]),
                        arm64=bool(p["arm64"]),
                        runtime=_requirement(p.get("runtime")),
                        cudnn=_requirement(p.get("cudnn")),
                    )
            releases.append(
                JaxRelease(version=_version(r["jax"]), python=tuple(r["python"]), plugins=plugins)
            )
        plugin = data.get("plugin", {})
        return cls(
            releases=tuple(sorted(releases, key=lambda r: r.version)),
            min_capability={int(k[4:]): v["min-capability"] for k, v in plugin.items()},
            driver={int(k[4:]): v["driver"] for k, v in plugin.items()},
        )

    def release(self, version: Version) -> JaxRelease | None:
        public = Version(version.public)
        return next((r for r in self.releases if r.version == public), None)

    def build(self, release: JaxRelease, major: int, *, local: bool) -> Build | None:
        plugin = release.plugins.get(major)
        if plugin is None:
            return None
        cudnn = cudnn_major(plugin.cudnn)
        return Build(
            framework="jax",
            version=release.version,
            variant=f"cuda{major}-local" if local else f"cuda{major}",
            cuda=lowest_cuda(plugin.runtime) or CudaVersion((major, 0)),
            cudnn=str(cudnn) if cudnn is not None else None,
            needs_system_cuda=local,
            min_capability=self.min_capability.get(major),
            sources=("pypi", "jaxdoc"),
        )
