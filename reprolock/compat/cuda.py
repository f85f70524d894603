"""CUDA toolkit → minimum driver, from ``matrices/cuda.toml``; pure questions over it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from reprolock.model import CudaVersion, DriverVersion

Policy = Literal["strict", "minor"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Toolkit:
    version: CudaVersion
    label: str
    driver: DriverVersion  # supports every feature of this toolkit
    sources: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class DriverNeed:
    """The least driver a toolkit needs under a policy, and why."""

    driver: DriverVersion
    policy: Policy
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CudaTable:
    toolkits: tuple[Toolkit, ...]
    floors: Mapping[int, DriverVersion]  # CUDA major → minor-version-compat floor
    caveats: str

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CudaTable:
        toolkits = tuple(
            sorted(
                (
                    Toolkit(
                        version=CudaVersion.parse(row["version"]),
                        label=row["label"],
                        driver=DriverVersion.parse(row["driver"]),
                        sources=tuple(row["sources"]),
                    )
                    for row in data.get("toolkit", ())
                ),
                key=lambda t: t.version,
            )
        )
        floors = {
            int(major): DriverVersion.parse(family["floor"])
            for major, family in data.get("family", {}).items()
        }
        return cls(
            toolkits=toolkits,
            floors=floors,
            caveats=str(data.get("minor-compat", {}).get("caveats", "")),
        )

    def releases(self, version: CudaVersion) -> list[Toolkit]:
        """The releases ``version`` names: ``12.4`` → every 12.4.x; ``12.4.1`` → that one."""
        n = len(version.parts)
        return [t for t in self.toolkits if t.version.parts[:n] == version.parts]

    def need(self, version: CudaVersion, policy: Policy) -> DriverNeed:
        """The least driver for ``version`` under ``policy``; ValueError for unknown versions."""
        releases = self.releases(version)
        if not releases:
            known = ", ".join(
                sorted(
                    {f"{t.version.major}.{t.version.minor}" for t in self.toolkits},
                    key=CudaVersion.parse,
                )
            )
            raise ValueError(f"CUDA {version} is not in reprolock's table (it knows {known})")
        # A version without its patch level may be any of its releases: the oldest is the
        # one a given driver can always run when it runs any of them.
        release = releases[0] if len(version.parts) < 3 else releases[-1]
        floor = self.floors.get(version.major)
        if policy == "minor" and floor is not None:
            return DriverNeed(
                driver=floor,
                policy="minor",
                reason=f"CUDA {version.major}.x minor-version compatibility needs >= {floor}",
            )
        return DriverNeed(
            driver=release.driver,
            policy="strict",
            reason=f"{release.label} was released with driver {release.driver}",
        )

    def runnable(self, driver: DriverVersion) -> list[tuple[Toolkit, bool, bool]]:
        """Every toolkit with (strict, minor-compat) answers for ``driver``."""
        out = []
        for toolkit in self.toolkits:
            strict = driver >= toolkit.driver
            floor = self.floors.get(toolkit.version.major)
            minor = strict or (floor is not None and driver >= floor)
            out.append((toolkit, strict, minor))
        return out
