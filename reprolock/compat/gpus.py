"""GPU names → compute capability, from ``matrices/gpus.toml``."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reprolock.model import ComputeCapability

_NOISE = re.compile(r"\b(nvidia|geforce|tesla)\b", re.IGNORECASE)
_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def _key(name: str) -> str:
    """Matching key for a GPU name: case, vendor words and punctuation ignored."""
    return _NON_ALNUM.sub("", _NOISE.sub("", name.lower()))


@dataclass(frozen=True, slots=True, kw_only=True)
class GpuModel:
    """One GPU product row."""

    name: str
    aliases: tuple[str, ...]
    capability: ComputeCapability
    architecture: str
    sources: tuple[str, ...]


class UnknownGpu(ValueError):
    """A GPU name that is not in the table; carries close names."""

    def __init__(self, name: str, suggestions: Sequence[str]) -> None:
        self.name = name
        self.suggestions = tuple(suggestions)
        super().__init__(f'unknown GPU "{name}"')


@dataclass(frozen=True, slots=True)
class GpuTable:
    """The GPU products reprolock knows, looked up by forgiving name match."""

    models: tuple[GpuModel, ...]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GpuTable:
        models = tuple(
            GpuModel(
                name=row["name"],
                aliases=tuple(row.get("aliases", ())),
                capability=ComputeCapability.parse(row["cc"]),
                architecture=row["arch"],
                sources=tuple(row["sources"]),
            )
            for row in data.get("gpu", ())
        )
        return cls(models)

    def _index(self) -> dict[str, GpuModel]:
        index: dict[str, GpuModel] = {}
        for model in self.models:
            for name in (model.name, *model.aliases):
                index.setdefault(_key(name), model)
        return index

    def lookup(self, name: str) -> GpuModel:
        """The product called ``name`` ("A100", "NVIDIA H100", "rtx 4090").

        Raises `UnknownGpu` with up to three close names.
        """
        index = self._index()
        key = _key(name)
        if key in index:
            return index[key]
        close = difflib.get_close_matches(key, list(index), n=3, cutoff=0.6)
        if not close:
            close = [k for k in index if key and (key in k or k in key)][:3]
        suggestions = sorted({_display(index[k]) for k in close})
        raise UnknownGpu(name, suggestions)


def _display(model: GpuModel) -> str:
    """The shortest name users would write for a product."""
    stripped = _NOISE.sub("", model.name).strip()
    return " ".join(stripped.split())
