"""Companion pins: torchvision/torchaudio releases belong to one torch release.

Most torchvision/torchaudio releases pin their torch exactly; some declare nothing (torchaudio
2.11.0) or only a lower bound (torchvision 0.29.x), so a plain resolver pairs torch 2.5.1
with the newest torchaudio. The matrices know which torch each companion release pins, or,
for the unpinned ones, the minor its line is built for and the torch uploaded with it: it is
held to those minors. A companion release they do not know is kept away from every torch
release that has a known companion of its own.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

from packaging.requirements import Requirement
from packaging.utils import NormalizedName
from packaging.version import Version

from reprolock.compat.frameworks import COMPANIONS, TorchTable
from reprolock.resolve.python.provider import Patches


def companion_patches(torch_table: Callable[[], TorchTable]) -> Patches:
    """The patches of companion releases; the PyTorch table is read when the first
    companion is met (a lock without torchvision or torchaudio never reads it)."""

    @functools.cache
    def known() -> tuple[TorchTable, dict[str, tuple[Version, ...]]]:
        table = torch_table()
        return table, {name: table.with_companion(name) for name in COMPANIONS}

    def patch(name: NormalizedName, version: Version) -> Sequence[Requirement]:
        if name not in COMPANIONS:
            return ()
        table, pinned = known()
        torch = table.companion_range(name, version)
        if torch is not None:
            return (Requirement(f"torch{torch}"),)
        if not pinned[name]:
            return ()
        return (Requirement("torch" + ",".join(f"!={v}" for v in pinned[name])),)

    return patch
