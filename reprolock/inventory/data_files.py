"""Data and model files baked into an image: files no package owns that are named like
data (weights, arrays, tables, archives) or are large.  Shared libraries are never data,
however large (a CUDA library copied in by hand is counted with the libraries), nor are
package managers' caches (`cache_of`: apt's, pip's, uv's, conda's), which the size report
counts apart.  A model hub's cache (``~/.cache/huggingface``) holds models: data."""

from __future__ import annotations

import fnmatch
import posixpath
import re
from collections.abc import Mapping

from reprolock.image.view import FilesystemView
from reprolock.inventory.model import DataFile
from reprolock.inventory.owners import Owner
from reprolock.inventory.text import printable

MiB = 1 << 20
PATTERNS = (
    "*.safetensors",
    "*.pt",
    "*.pth",
    "*.ckpt",
    "*.bin",
    "*.onnx",
    "*.gguf",
    "*.parquet",
    "*.npy",
    "*.npz",
    "*.h5",
    "*.tar",
    "*.tar.*",
    "*.tgz",
)
PATTERN_MIN_BYTES = 1 * MiB  # smaller files named like data are not reported (test fixtures)
LARGE_BYTES = 100 * MiB  # any file no package owns from this size on is reported
_LIBRARIES = ("*.so", "*.so.*", "*.a")
CACHES = (
    ("apt", ("var/cache/apt/*", "var/lib/apt/lists/*")),
    ("pip", ("root/.cache/pip/*", "home/*/.cache/pip/*")),
    ("uv", ("root/.cache/uv/*", "home/*/.cache/uv/*")),
    ("conda", ("opt/conda/pkgs/*", "root/.conda/pkgs/*")),
)


_CACHE = re.compile(
    "|".join(
        f"(?P<{name}>{'|'.join(fnmatch.translate(p) for p in patterns)})"
        for name, patterns in CACHES
    )
)


def cache_of(path: str) -> str | None:
    """The package manager whose download cache ``path`` is in (``*`` spans folders)."""
    match = _CACHE.match(path)
    return None if match is None else match.lastgroup


def why_data(path: str, size: int) -> str | None:
    """The pattern a file's name matches, "large", or None when it is not data."""
    name = posixpath.basename(path)
    if any(fnmatch.fnmatchcase(name, p) for p in _LIBRARIES):
        return None
    if size >= PATTERN_MIN_BYTES:
        for pattern in PATTERNS:
            if fnmatch.fnmatchcase(name, pattern):
                return pattern
    return "large" if size >= LARGE_BYTES else None


def catalog_data_files(view: FilesystemView, owned: Mapping[str, Owner]) -> list[DataFile]:
    """Every file of the image no package owns that `why_data` calls data, largest first."""
    found = []
    for node in view.walk():
        entry = node.entry
        if entry.kind != "file" or entry.link is not None or entry.path in owned:
            continue  # a hard link is counted at the file it links to
        if cache_of(entry.path) is not None:
            continue
        why = why_data(entry.path, entry.size)
        if why is not None:
            shown = printable("/" + entry.path)
            found.append(DataFile(path=shown, size=entry.size, layer=node.layer, why=why))
    return sorted(found, key=lambda f: (-f.size, f.path))
