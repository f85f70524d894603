"""Target platforms: ``linux/arm64/v8`` ↔ Debian architecture ↔ wheel machine."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class _Arch:
    oci: str
    variant: str | None
    debian: str
    machine: str  # as in wheel platform tags and `uname -m`
    aliases: tuple[str, ...]
    multiarch: str  # Debian's multiarch tuple: the folder of its libraries


_ARCHES: tuple[_Arch, ...] = (
    _Arch("amd64", None, "amd64", "x86_64", ("x86_64", "x86-64", "x64"), "x86_64-linux-gnu"),
    _Arch("arm64", "v8", "arm64", "aarch64", ("aarch64", "arm64/v8"), "aarch64-linux-gnu"),
    _Arch("ppc64le", None, "ppc64el", "ppc64le", ("ppc64el",), "powerpc64le-linux-gnu"),
    _Arch("s390x", None, "s390x", "s390x", (), "s390x-linux-gnu"),
    _Arch("386", None, "i386", "i686", ("i386", "i686", "x86"), "i386-linux-gnu"),
    _Arch("arm", "v7", "armhf", "armv7l", ("arm/v7", "armhf", "armv7l"), "arm-linux-gnueabihf"),
)


@dataclass(frozen=True, slots=True, order=True)
class Platform:
    """An OCI platform for Linux images, e.g. ``linux/amd64`` or ``linux/arm64``."""

    os: str
    architecture: str
    variant: str | None = None

    @classmethod
    def parse(cls, text: str) -> Platform:
        """Parse ``linux/amd64``, ``linux/arm64/v8``, ``amd64`` or ``aarch64``.

        Raises ValueError naming the supported platforms.
        """
        raw = text.strip().lower()
        parts = raw.split("/")
        if parts[0] == "linux":
            parts = parts[1:]
        elif len(parts) > 1:
            raise ValueError(
                f'unsupported operating system "{parts[0]}" in platform "{text}"; '
                f"reprolock builds Linux images ({', '.join(supported_platforms())})"
            )
        name = "/".join(parts)
        for arch in _ARCHES:
            full = f"{arch.oci}/{arch.variant}" if arch.variant else arch.oci
            if name in (arch.oci, full, *arch.aliases):
                return cls("linux", arch.oci, arch.variant)
        raise ValueError(
            f'unknown platform "{text}"; use one of {", ".join(supported_platforms())}'
        )

    @property
    def _arch(self) -> _Arch:
        for arch in _ARCHES:
            if arch.oci == self.architecture:
                return arch
        raise ValueError(f"unknown architecture {self.architecture}")  # pragma: no cover

    @property
    def debian_arch(self) -> str:
        """Debian's name for the architecture (``amd64``, ``arm64``, ``ppc64el``)."""
        return self._arch.debian

    @property
    def multiarch(self) -> str:
        """Debian's multiarch tuple (``x86_64-linux-gnu``): ``/usr/lib/<tuple>``."""
        return self._arch.multiarch

    @property
    def machine(self) -> str:
        """The machine name used in wheel tags (``x86_64``, ``aarch64``)."""
        return self._arch.machine

    @property
    def short(self) -> str:
        """A short, id-friendly name: ``amd64``, ``arm64``, ``armv7``."""
        if self.variant and self.architecture == "arm":
            return f"arm{self.variant}"
        return self.architecture

    def __str__(self) -> str:
        # arm64's v8 is implied, as docker writes it.
        if self.variant and self.architecture != "arm64":
            return f"{self.os}/{self.architecture}/{self.variant}"
        return f"{self.os}/{self.architecture}"


def supported_platforms() -> list[str]:
    """The platforms reprolock can target, as users write them."""
    return [
        f"linux/{a.oci}/{a.variant}" if a.variant and a.oci != "arm64" else f"linux/{a.oci}"
        for a in _ARCHES
    ]
