"""CUDA toolkit → minimum driver, from ``matrices/cuda.toml``; pure questions over it.

Every toolkit release has the driver NVIDIA names for it (release notes Table 3, or the driver
it ships with where Table 3 has no row) and the version of its CUDA Runtime component, which is
what PyPI wheels pin (``nvidia-cuda-runtime-cu12==12.8.90`` is CUDA 12.8 Update 1). Where the
driver of a release is not known — a release newer than the table (12.8.3), or one whose figure
could not be confirmed — the driver of the newest earlier release that has one is stated as a
lower bound (`DriverNeed.exact` is False): drivers never go down from one release to the next.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from reprolock.model import CudaVersion, DriverVersion

Policy = Literal["strict", "minor"]
DriverFrom = Literal["table", "bundled"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Toolkit:
    """One CUDA toolkit release (``12.8.1``)."""

    version: CudaVersion
    label: str
    driver: DriverVersion | None  # supports every feature; None when not confirmed
    driver_from: DriverFrom = "table"  # Table 3, or the driver NVIDIA ships with the release
    cudart: tuple[int, ...] | None = None  # the CUDA Runtime component, (12, 8, 90)
    note: str | None = None
    sources: tuple[str, ...]

    @property
    def cudart_text(self) -> str | None:
        return None if self.cudart is None else ".".join(map(str, self.cudart))


@dataclass(frozen=True, slots=True, kw_only=True)
class DriverNeed:
    """The least driver a toolkit needs under a policy, and why.

    ``exact`` is False when ``driver`` is only a lower bound: the release's own figure is not
    known, and this is the figure of the newest earlier release that has one.
    """

    driver: DriverVersion
    policy: Policy
    reason: str
    exact: bool = True


def _component(text: str) -> tuple[int, ...] | None:
    parts = text.strip().split(".")
    if not all(p.isdigit() for p in parts):
        return None
    return tuple(int(p) for p in parts)


@dataclass(frozen=True, slots=True, kw_only=True)
class CudaTable:
    toolkits: tuple[Toolkit, ...]  # oldest first
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
                        driver=DriverVersion.parse(row["driver"]) if "driver" in row else None,
                        driver_from=row.get("driver-from", "table"),
                        cudart=_component(row["cudart"]) if "cudart" in row else None,
                        note=row.get("note"),
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

    def release(self, version: CudaVersion) -> Toolkit | None:
        """The release ``12.8.1`` exactly; None for a major.minor or an unknown release."""
        if len(version.parts) < 3:
            return None
        return next((t for t in self.toolkits if t.version == version), None)

    def release_for_runtime(self, component: str) -> Toolkit | None:
        """The toolkit release whose CUDA Runtime (cudart) component is exactly ``component``
        (``"12.8.90"`` → CUDA 12.8.1), else None.

        Update releases sometimes keep the previous cudart (12.8.2 ships 12.8.90 too): the
        oldest release that has it is returned, the least driver that runtime needs.
        """
        wanted = _component(component)
        if wanted is None:
            return None
        return next((t for t in self.toolkits if t.cudart == wanted), None)

    def need_for_runtime(self, component: str, policy: Policy) -> DriverNeed:
        """The least driver for the CUDA Runtime component ``component`` (a wheel's pin of
        ``nvidia-cuda-runtime[-cuXX]``) under ``policy``; ValueError for an unknown CUDA minor.

        A cudart the table knows is its release's need, exactly. An unknown one (``12.8.93``)
        is newer than every release of its minor with an older cudart: the newest of those
        gives a lower bound (its oldest release when none is older).
        """
        wanted = _component(component)
        if wanted is None or len(wanted) < 3:
            raise ValueError(
                f'"{component}" is not a CUDA runtime version; write it like "12.8.90"'
            )
        release = self.release_for_runtime(component)
        if release is not None:
            return self.need(release.version, policy)
        minor = CudaVersion(wanted[:2])
        need = self.need(minor, policy)
        if policy == "minor" and need.policy == "minor":
            return need
        older = [t for t in self.releases(minor) if t.cudart is not None and t.cudart < wanted]
        if older:
            need = self.need(older[-1].version, policy)
            base = f"the newest older release, {older[-1].label} (cudart {older[-1].cudart_text})"
        else:
            base = f"the first CUDA {minor} release"
        return DriverNeed(
            driver=need.driver,
            policy=need.policy,
            reason=f"cudart {component} is not a release reprolock knows; it needs at least "
            f"the driver of {base}: {need.reason}",
            exact=False,
        )

    def need(self, version: CudaVersion, policy: Policy) -> DriverNeed:
        """The least driver for ``version`` under ``policy``; ValueError for unknown versions.

        ``12.4`` may be any 12.4 release: its oldest is used (the one every driver that runs
        any of them runs). ``12.8.1`` uses its own row. An update release newer than the table
        knows (``12.8.3``) — of a CUDA minor it knows — gets a lower bound from the newest
        release before it, as does a release whose driver is not confirmed; anything else
        unknown (a minor the table lacks, a release older than its minor's first) fails.
        """
        releases = self.releases(version)
        same_minor = self.releases(CudaVersion(version.parts[:2]))
        newer_update = (
            len(version.parts) == 3 and bool(same_minor) and version > same_minor[0].version
        )
        if not releases and not newer_update:
            raise ValueError(self._unknown(version))
        floor = self.floors.get(version.major)
        if policy == "minor" and floor is not None:
            return DriverNeed(
                driver=floor,
                policy="minor",
                reason=f"CUDA {version.major}.x minor-version compatibility needs >= {floor}",
            )
        if releases:
            release = releases[0] if len(version.parts) < 3 else releases[-1]
            if release.driver is not None:
                reason = (
                    f"{release.label} was released with driver {release.driver}"
                    if release.driver_from == "table"
                    else f"{release.label} ships with driver {release.driver} (the release "
                    "notes' driver table has no row for it)"
                )
                return DriverNeed(driver=release.driver, policy="strict", reason=reason)
            target, why = (
                release.version,
                f"NVIDIA's driver figure for {release.label} is not confirmed",
            )
        else:
            target, why = version, f"CUDA {version} is newer than the releases reprolock knows"
        bound = next(
            (t for t in reversed(self.toolkits) if t.version < target and t.driver is not None),
            None,
        )
        if bound is None or bound.driver is None:
            raise ValueError(self._unknown(version))
        return DriverNeed(
            driver=bound.driver,
            policy="strict",
            reason=f"{why}; it needs at least the driver of {bound.label}, {bound.driver}",
            exact=False,
        )

    def runnable(self, driver: DriverVersion) -> list[tuple[Toolkit, bool, bool]]:
        """Every toolkit with (strict, minor-compat) answers for ``driver``.

        Strict is answered only from a confirmed figure: a release whose driver is not known
        is never strict-runnable (fail closed); minor-version compat needs only the floor.
        """
        out = []
        for toolkit in self.toolkits:
            strict = toolkit.driver is not None and driver >= toolkit.driver
            floor = self.floors.get(toolkit.version.major)
            minor = strict or (floor is not None and driver >= floor)
            out.append((toolkit, strict, minor))
        return out

    def _unknown(self, version: CudaVersion) -> str:
        same_minor = self.releases(CudaVersion(version.parts[:2]))
        if same_minor:
            names = ", ".join(str(t.version) for t in same_minor)
            return (
                f"CUDA {version} is not a release reprolock knows "
                f"(CUDA {version.major}.{version.minor}: {names})"
            )
        known = ", ".join(
            sorted(
                {f"{t.version.major}.{t.version.minor}" for t in self.toolkits},
                key=CudaVersion.parse,
            )
        )
        return f"CUDA {version} is not in reprolock's table (it knows {known})"
