"""Which frameworks a target's requirements ask for, and how (extras, version, routing)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

FRAMEWORKS = ("torch", "tensorflow", "jax")
TORCH_FAMILY = ("torch", "torchvision", "torchaudio")
_JAX_CUDA = {
    "cuda": (12, False),
    "cuda12": (12, False),
    "cuda12-pip": (12, False),
    "cuda12-local": (12, True),
    "cuda13": (13, False),
    "cuda13-local": (13, True),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class FrameworkRequest:
    """A framework named by the requirements, with everything they say about it."""

    name: str  # "torch", "tensorflow", "jax"
    specifier: SpecifierSet
    extras: frozenset[str]
    routed_to: str | None = None  # the URL of a user-routed index, when the spec routes it

    @property
    def and_cuda(self) -> bool:
        return "and-cuda" in self.extras

    @property
    def cpu(self) -> bool:
        """Explicitly a CPU build: ``tensorflow-cpu``, ``jax[cpu]``, torch routed to the
        ``cpu`` index. Legal on a GPU target (the GPUs are then not used)."""
        return "cpu" in self.extras or self.routed_variant == "cpu"

    @property
    def jax_plugin(self) -> tuple[int, bool] | None:
        """(CUDA major, local) of the CUDA plugin the extras ask for."""
        found = sorted(_JAX_CUDA[e] for e in self.extras if e in _JAX_CUDA)
        return found[-1] if found else None

    @property
    def routed_variant(self) -> str | None:
        """``…/whl/cu124`` → ``cu124``: the PyTorch variant a routed index serves."""
        if self.routed_to is None:
            return None
        last = self.routed_to.rstrip("/").rsplit("/", 1)[-1]
        return last if (last == "cpu" or (last.startswith("cu") and last[2:].isdigit())) else None


def framework_requests(
    requirements: Iterable[Requirement], routed: Mapping[str, str]
) -> list[FrameworkRequest]:
    """One request per framework the (marker-evaluated) requirements name; several
    requirements on one framework are merged."""
    specs: dict[str, SpecifierSet] = {}
    extras: dict[str, set[str]] = {}
    for requirement in requirements:
        name = str(canonicalize_name(requirement.name))
        cpu_package = name == "tensorflow-cpu"
        if cpu_package:
            name = "tensorflow"
        if name not in FRAMEWORKS:
            continue
        specs[name] = specs.get(name, SpecifierSet()) & requirement.specifier
        extras.setdefault(name, set()).update(canonicalize_name(e) for e in requirement.extras)
        if cpu_package:
            extras[name].add("cpu")
    return [
        FrameworkRequest(
            name=name,
            specifier=specs[name],
            extras=frozenset(extras[name]),
            routed_to=routed.get(name),
        )
        for name in FRAMEWORKS
        if name in specs
    ]
