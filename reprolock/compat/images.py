"""Base images (``matrices/images.toml``) and cuDNN support (``matrices/cudnn.toml``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reprolock.model import CudaVersion, DriverVersion

NVIDIA_CUDA = "nvidia/cuda"


@dataclass(frozen=True, slots=True, kw_only=True)
class CudaImage:
    """One ``nvidia/cuda`` release: the OS tags it is built for and its cuDNN variant."""

    cuda: CudaVersion
    os: tuple[str, ...]
    cudnn: str | None = None
    cudnn_tag: str | None = None  # "cudnn8", "cudnn9" or "cudnn"
    cudnn_os: tuple[str, ...] | None = None  # where the cudnn variant exists, if not every OS
    branches: tuple[int, ...] = ()
    end_of_life: bool = False  # no longer built; its tags leave Docker Hub six months later

    def tag(self, flavor: str, os: str, *, cudnn: bool) -> str:
        word = f"{self.cudnn_tag}-" if cudnn and self.cudnn_tag else ""
        return f"{self.cuda}-{word}{flavor}-{os}"

    def has_cudnn(self, os: str) -> bool:
        return self.cudnn_tag is not None and os in (self.cudnn_os or self.os)


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageCatalog:
    cuda: tuple[CudaImage, ...]  # oldest first
    flavors: tuple[str, ...]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ImageCatalog:
        rows = tuple(
            sorted(
                (
                    CudaImage(
                        cuda=CudaVersion.parse(r["cuda"]),
                        os=tuple(r["os"]),
                        cudnn=r.get("cudnn"),
                        cudnn_tag=r.get("cudnn-tag"),
                        cudnn_os=tuple(r["cudnn-os"]) if "cudnn-os" in r else None,
                        branches=tuple(r.get("require-branches", ())),
                        end_of_life=bool(r.get("end-of-life", False)),
                    )
                    for r in data.get("cuda", ())
                ),
                key=lambda r: r.cuda,
            )
        )
        family = data.get("family", {}).get(NVIDIA_CUDA, {})
        return cls(cuda=rows, flavors=tuple(family.get("flavors", ("base", "runtime", "devel"))))


@dataclass(frozen=True, slots=True, kw_only=True)
class CudnnSupport:
    cudnn: str  # "9.10.2", "8.9.5, 8.9.6"
    package: str
    cuda: tuple[CudaVersion, ...]
    driver: DriverVersion | None
    capabilities: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class CudnnTable:
    support: tuple[CudnnSupport, ...]
    wheels: Mapping[str, tuple[str, ...]]  # package → versions

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CudnnTable:
        support = tuple(
            CudnnSupport(
                cudnn=r["cudnn"],
                package=r["package"],
                cuda=tuple(CudaVersion.parse(c) for c in r["cuda"]),
                driver=DriverVersion.parse(r["driver"]) if r.get("driver") else None,
                capabilities=tuple(r.get("capabilities", ())),
            )
            for r in data.get("support", ())
        )
        wheels = {w["package"]: tuple(w["versions"]) for w in data.get("wheels", ())}
        return cls(support=support, wheels=wheels)
