"""Find the data reprolock ships: ``matrices/`` and ``schemas/``.

In an installed wheel they live in ``reprolock/_data/``; in a source checkout
(or an editable install) they are the top-level folders beside the package.
"""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

import reprolock


def data_dir(name: str) -> Traversable:
    """The shipped folder ``name`` (``"matrices"`` or ``"schemas"``)."""
    packaged = resources.files(reprolock) / "_data" / name
    if packaged.is_dir():
        return packaged
    checkout = Path(reprolock.__file__).resolve().parent.parent / name
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(f"reprolock's {name}/ folder is missing from this installation")


def read_text(folder: str, name: str) -> str:
    """The text of ``folder/name`` from the shipped data."""
    return (data_dir(folder) / name).read_text(encoding="utf-8")


def starter(name: str) -> str:
    """A starter spec written by ``reprolock init`` (``cpu.toml`` or ``gpu.toml``)."""
    return (resources.files(reprolock) / "starters" / name).read_text(encoding="utf-8")
