"""The interpreter and platform a lock is for: its wheel tags and marker environment.

Computed from the target, never from the host that runs reprolock.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

from packaging.tags import Tag, compatible_tags, cpython_tags

from reprolock.model import Platform, PythonVersion

# Legacy manylinux names and the glibc they stand for (PEP 599/571/513).
_LEGACY = {(2, 17): "manylinux2014", (2, 12): "manylinux2010", (2, 5): "manylinux1"}
_LEGACY_MACHINES = {
    "manylinux2014": {"x86_64", "i686", "aarch64", "armv7l", "ppc64", "ppc64le", "s390x"},
    "manylinux2010": {"x86_64", "i686"},
    "manylinux1": {"x86_64", "i686"},
}
DEFAULT_GLIBC = (2, 28)


@dataclass(frozen=True, kw_only=True)  # no slots: cached_property needs __dict__
class PythonTarget:
    """CPython X.Y[.Z] on a Linux platform with a given C library: glibc (manylinux wheels)
    or, when ``musl`` is set, musl (musllinux wheels, never manylinux ones)."""

    python: PythonVersion
    platform: Platform
    glibc: tuple[int, int] = DEFAULT_GLIBC
    musl: tuple[int, int] | None = None

    @property
    def full_version(self) -> str:
        return self.python.full

    def platform_tags(self) -> list[str]:
        """``manylinux_2_28_x86_64`` … ``manylinux1_x86_64`` (``musllinux_1_2_x86_64`` …
        ``musllinux_1_0_x86_64`` on musl), most specific first."""
        machine = self.platform.machine
        if self.musl is not None:
            major, newest = self.musl
            return [f"musllinux_{major}_{minor}_{machine}" for minor in range(newest, -1, -1)]
        major, newest = self.glibc
        out: list[str] = []
        for minor in range(newest, 4, -1):
            out.append(f"manylinux_{major}_{minor}_{machine}")
            legacy = _LEGACY.get((major, minor))
            if legacy and machine in _LEGACY_MACHINES[legacy]:
                out.append(f"{legacy}_{machine}")
        return out

    @cached_property
    def tag_priority(self) -> dict[Tag, int]:
        """Every wheel tag the target accepts, mapped to its rank (0 = best)."""
        version = (self.python.parts[0], self.python.parts[1])
        interpreter = f"cp{version[0]}{version[1]}"
        platforms = self.platform_tags()
        tags = [
            *cpython_tags(version, abis=[interpreter], platforms=platforms),
            *compatible_tags(version, interpreter=interpreter, platforms=platforms),
        ]
        priority: dict[Tag, int] = {}
        for rank, tag in enumerate(tags):
            priority.setdefault(tag, rank)
        return priority

    @cached_property
    def tag_ranks(self) -> dict[tuple[str, str, str], int]:
        """`tag_priority` keyed by plain strings, for matching wheel filenames quickly."""
        return {(t.interpreter, t.abi, t.platform): rank for t, rank in self.tag_priority.items()}

    @cached_property
    def selection_key(self) -> str:
        """Names what choosing wheels depends on: the tags in rank order and the interpreter
        version.  Targets with the same key get the same releases (`select.select_core`)."""
        text = "\n".join([self.full_version, *("-".join(t) for t in self.tag_ranks)])
        return hashlib.sha256(text.encode()).hexdigest()

    def marker_environment(self) -> dict[str, str]:
        """PEP 508 marker values for the target interpreter."""
        return {
            "implementation_name": "cpython",
            "implementation_version": self.full_version,
            "os_name": "posix",
            "platform_machine": self.platform.machine,
            "platform_python_implementation": "CPython",
            "platform_release": "",
            "platform_system": "Linux",
            "platform_version": "",
            "python_full_version": self.full_version,
            "python_version": self.python.feature,
            "sys_platform": "linux",
        }

    def __str__(self) -> str:
        libc = ("musl", self.musl) if self.musl is not None else ("glibc", self.glibc)
        return (
            f"CPython {self.full_version} on {self.platform} ({libc[0]} {libc[1][0]}.{libc[1][1]})"
        )


def libc_of(libc: str | None, version: str | None) -> dict[str, tuple[int, int]]:
    """`PythonTarget` keyword arguments for a base's C library (``"glibc", "2.36"``); none
    (the defaults) when it is unknown."""
    parts = (version or "").split(".")
    if len(parts) < 2 or not all(p.isdigit() for p in parts[:2]):
        return {}
    pair = (int(parts[0]), int(parts[1]))
    if libc == "glibc":
        return {"glibc": pair}
    if libc == "musl":
        return {"musl": pair}
    return {}


class WheelFilter:
    """A filename test: could any of ``targets`` install this wheel?

    Used to skip, while parsing index pages, the many wheels built for other
    interpreters and platforms (torch's page lists thousands).  Most files are for other
    platforms, which the last part of the name shows; decisions are remembered per
    platform part and per tag triple, which many files of a project share.  ``key`` names
    the targets' tag sets, for caches of what the filter kept.
    """

    def __init__(self, targets: Iterable[PythonTarget]) -> None:
        self._setup([frozenset(target.tag_ranks) for target in targets])

    @classmethod
    def of_tag_sets(cls, each: Iterable[frozenset[tuple[str, str, str]]]) -> WheelFilter:
        """The filter of targets with these tag sets (`tag_sets` gives them back)."""
        made = cls.__new__(cls)
        made._setup(list(each))
        return made

    @property
    def tag_sets(self) -> tuple[frozenset[tuple[str, str, str]], ...]:
        """Each target's (python, abi, platform) triples."""
        return self._each

    def _setup(self, each: list[frozenset[tuple[str, str, str]]]) -> None:
        tags: set[tuple[str, str, str]] = set()
        for one in each:
            tags.update(one)
        self.tags = frozenset(tags)
        self._each = tuple(each)
        self._everywhere: dict[str, bool] = {}
        self._platforms = frozenset(plat for _py, _abi, plat in tags)
        # Each target's tags, not only their union: which sdists a page keeps depends on
        # what every target can install (`select.without_dominated_sdists`).
        per_target = sorted({" ".join(sorted("-".join(t) for t in one)) for one in each})
        self.key = hashlib.sha256("\n".join(per_target).encode()).hexdigest()
        self._by_platform: dict[str, bool] = {}
        self._decisions: dict[str, bool] = {}

    def __call__(self, filename: str) -> bool:
        platform = filename[filename.rfind("-") + 1 : -4]
        possible = self._by_platform.get(platform)
        if possible is None:
            possible = any(p in self._platforms for p in platform.split("."))
            self._by_platform[platform] = possible
        if not possible:  # no target's platform; unless not a well-formed wheel name at all
            return filename.count("-") not in (4, 5)
        stem = filename[:-4]
        if stem.count("-") not in (4, 5):
            return True  # not a well-formed wheel name: let selection judge it
        head = stem.rsplit("-", 3)[0]
        triple = stem[len(head) + 1 :]
        found = self._decisions.get(triple)
        if found is None:
            py, abi, plat = triple.split("-")
            found = any(
                (p, a, q) in self.tags
                for p in py.split(".")
                for a in abi.split(".")
                for q in plat.split(".")
            )
            self._decisions[triple] = found
        return found

    def everywhere(self, triple: str) -> bool:
        """Whether a wheel tagged ``triple`` (``py3-none-any``, compressed tag sets allowed)
        fits every one of the targets (there is at least one)."""
        found = self._everywhere.get(triple)
        if found is None:
            parts = triple.split("-")
            found = (
                len(parts) == 3
                and bool(self._each)
                and all(
                    any(
                        (p, a, q) in tags
                        for p in parts[0].split(".")
                        for a in parts[1].split(".")
                        for q in parts[2].split(".")
                    )
                    for tags in self._each
                )
            )
            self._everywhere[triple] = found
        return found


def wheel_filter(targets: Iterable[PythonTarget]) -> WheelFilter:
    """The `WheelFilter` of ``targets``."""
    return WheelFilter(targets)
