"""Several indexes, with explicit per-package routing (dependency-confusion safe)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from packaging.utils import NormalizedName

from reprolock.resolve.python.index import DistFile, PythonIndex


@dataclass(frozen=True, slots=True)
class RoutedIndex:
    name: str
    url: str  # without credentials
    index: PythonIndex
    packages: frozenset[NormalizedName] = frozenset()


class IndexRouter:
    """A `PythonIndex` over several.

    A package routed to an index (``packages = [...]``) is looked up there and
    nowhere else.  Any other package is looked up in the unrouted extra indexes
    in spec order, then the default index, and taken from the first index that
    has the project at all (uv's "first-index" strategy): a name registered on
    a later index can never shadow it.
    """

    def __init__(self, default: RoutedIndex, extras: Sequence[RoutedIndex] = ()) -> None:
        self.default = default
        self.extras = tuple(extras)
        self.by_url = {i.url: i for i in (*self.extras, default)}

    def candidates_for(self, name: NormalizedName) -> tuple[RoutedIndex, ...]:
        for routed in self.extras:
            if name in routed.packages:
                return (routed,)
        return (*(r for r in self.extras if not r.packages), self.default)

    def project_files(self, name: NormalizedName) -> Sequence[DistFile]:
        return self._first(name)[1]

    def _first(self, name: NormalizedName) -> tuple[RoutedIndex | None, Sequence[DistFile]]:
        for routed in self.candidates_for(name):
            files = routed.index.project_files(name)
            if files or routed.index.other_files(name):
                return routed, files
        return None, ()

    def other_files(self, name: NormalizedName) -> Sequence[str]:
        routed = self._first(name)[0]
        return () if routed is None else routed.index.other_files(name)

    def metadata(self, file: DistFile) -> bytes:
        return self.by_url[file.index].index.metadata(file)

    def describe(self, name: NormalizedName) -> str:
        """Where ``name`` is looked up, for messages."""
        names = [r.name for r in self.candidates_for(name)]
        if len(names) == 1 and name in self.candidates_for(name)[0].packages:
            return f'index "{names[0]}" only (routed)'
        noun = "index" if len(names) == 1 else "indexes, first with the project wins:"
        return f"{noun} " + ", ".join(f'"{n}"' for n in names)
