"""Every cap reprolock puts on what it reads: one table, documented in docs/security.md.

Indexes, registries, images, apt archives and lock files may be hostile.  Every read
of them is bounded by one of these limits: a byte count (the size a signed or digested
source declares, where there is one; otherwise the cap below), an overall time per
request, a ratio for decompression, or a count of hops.  Exceeding one is an error that
names the limit and how to raise it.

The caps are generous for real inputs (measured: PyPI's largest project pages are about
2 MB, Debian's largest ``Packages`` about 50 MB, manifests a few KB).  They can be
changed in one place: ``REPROLOCK_LIMIT_<NAME>=<value>`` in the environment, read by the
command line (e.g. ``REPROLOCK_LIMIT_PAGE_BYTES=268435456``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from reprolock.errors import InputError, SourceError

KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """The caps; each field's comment is its documentation (docs/security.md repeats it)."""

    # -- network ------------------------------------------------------------------------
    request_seconds: float = 30.0
    """Time for a response's headers to arrive, and the base allowance for its body."""
    min_bytes_per_second: int = 32 * KiB
    """The body's allowance grows by one second per this many bytes received: a download
    slower than this on average (after ``request_seconds``) is cut off."""
    retry_after_seconds: float = 5.0
    """The longest wait reprolock honours from a server's ``Retry-After``."""
    redirects: int = 10
    """Redirects followed per request."""
    page_bytes: int = 64 * MiB
    """One simple-index project page (PEP 503 HTML or PEP 691 JSON)."""
    metadata_bytes: int = 16 * MiB
    """One core metadata file (PEP 658 ``.metadata`` or a wheel's ``METADATA``); four times
    it bounds a wheel's zip directory read to find it, and what range requests fetch for
    that beyond the wheel's tail."""
    wheel_bytes: int = 16 * GiB
    """A wheel downloaded whole when its index lists no size (no range support)."""
    manifest_bytes: int = 4 * MiB
    """An image manifest or index, from a registry or a layout."""
    config_bytes: int = 16 * MiB
    """An image config blob."""
    token_bytes: int = 1 * MiB
    """A registry token-service answer, a tag list or an error body."""
    release_bytes: int = 16 * MiB
    """An apt ``InRelease``/``Release``/``Release.gpg`` file."""
    apt_index_bytes: int = 1 * GiB
    """An apt ``Packages`` index after decompression (when its Release lists no size)."""
    apt_index_floor: int = 64 * MiB
    """An apt index decompressing past this at more than ``decompression_ratio`` times
    its compressed size is a bomb (real ones expand 4 to 10 times)."""
    download_bytes: int = 64 * GiB
    """A file ``fetch`` downloads whose lock entry has no size."""
    # -- archives and images -------------------------------------------------------------
    decompression_ratio: int = 200
    """Output/input ratio beyond which a compressed stream is a bomb (once past the floor)."""
    decompression_floor: int = 256 * MiB
    """Output below this is never called a bomb, whatever the ratio."""
    decoder_memory_bytes: int = 128 * MiB
    """Memory an xz or zstd decoder may take for its window (xz -9 needs 65 MiB)."""
    layer_bytes: int = 256 * GiB
    """One uncompressed image layer."""
    member_bytes: int = 64 * GiB
    """One file in a layer."""
    catalog_file_bytes: int = 32 * MiB
    """One file kept in memory for the catalogers (dpkg status, METADATA, RECORD, …)."""
    catalog_total_bytes: int = 128 * MiB
    """All files kept in memory for the catalogers of one image (a large ML image's dpkg
    status and every dist-info file together are tens of MB)."""
    link_hops: int = 40
    """Symbolic links followed to resolve one path."""
    path_depth: int = 256
    """Components in one path inside an image or archive."""
    # -- project files -------------------------------------------------------------------
    document_bytes: int = 64 * MiB
    """A spec, a lock, or a docker ``config.json``."""
    requirements_file_bytes: int = 4 * MiB
    """One requirements file named by the spec."""
    nesting: int = 64
    """Nesting depth of arrays and tables in a spec, lock or JSON document."""
    tar_header_bytes: int = 1 * MiB
    """One extended tar header (pax, GNU long name) in a layer or an image archive, and a
    tar's global pax headers together."""
    archive_members: int = 100_000
    """Members of the outer tar of a ``docker-archive:`` or ``oci-archive:`` (indexed in
    memory), and of a wheel's zip listed to measure its kernels."""
    image_entries: int = 1_000_000
    """Entries (files, folders, links, whiteouts) one image read keeps, its layers together.
    Each costs a few hundred bytes of memory however small the file (a million: about
    310 MB) and a layer of millions of empty files is a few MB of gzip; real images hold
    tens of thousands (a 6 GB PyTorch image: about 30,000)."""
    # -- source distributions ------------------------------------------------------------
    sdist_bytes: int = 512 * MiB
    """One source distribution downloaded to be built (when its index lists no size)."""
    sdist_unpacked_bytes: int = 2 * GiB
    """A source distribution's files together, unpacked to be built."""
    sdist_members: int = 100_000
    """Files and folders in one source distribution."""
    build_seconds: float = 900.0
    """One build backend hook (preparing metadata, building a wheel) in its subprocess."""
    build_output_bytes: int = 1 * MiB
    """Output a build backend hook may write; what it writes beyond is dropped (its last
    lines are kept for the error message)."""


DEFAULT = Limits()
_current = DEFAULT


def current() -> Limits:
    """The limits in force (the defaults unless the command line changed them)."""
    return _current


def install(limits: Limits) -> None:
    """Set the limits of this process (the command line does, from the environment)."""
    global _current  # noqa: PLW0603 - one process, one set of limits
    _current = limits


ENV_PREFIX = "REPROLOCK_LIMIT_"


def from_environment(environ: Mapping[str, str]) -> Limits:
    """`DEFAULT` with ``REPROLOCK_LIMIT_<FIELD>`` overrides; `InputError` for a bad one."""
    fields = {f.name: f for f in dataclasses.fields(Limits)}
    changes: dict[str, float | int] = {}
    for key, text in sorted(environ.items()):
        if not key.startswith(ENV_PREFIX):
            continue
        name = key.removeprefix(ENV_PREFIX).lower()
        if name not in fields:
            raise InputError(
                f"{key}: reprolock has no limit named {name}.",
                hint="The limits are listed in docs/security.md: "
                + ", ".join(ENV_PREFIX + n.upper() for n in fields)
                + ".",
            )
        kind = float if isinstance(getattr(DEFAULT, name), float) else int
        try:
            value = kind(text)
        except ValueError:
            value = -1
        if value <= 0:
            raise InputError(
                f'{key}="{text}" is not a positive {"number" if kind is float else "integer"}.',
                hint=f"Unset it, or give a value like {getattr(DEFAULT, name)} (the default).",
            )
        changes[name] = value
    return dataclasses.replace(DEFAULT, **changes) if changes else DEFAULT  # type: ignore[arg-type]


def exceeded(what: str, limit_name: str, *, actual: str | None = None) -> SourceError:
    """The error for an input beyond a cap: what, which cap, and how to raise it.

    ``limit_name`` is a field of `Limits`, or a phrase for a size the source itself
    declared (e.g. "the descriptor's size"): exceeding that is damage, not a cap to raise.
    """
    if not hasattr(_current, limit_name):
        got = f" ({actual})" if actual else ""
        return SourceError(
            f"{what} is longer than {limit_name}{got}; refusing it.",
            hint="The source is damaged or hostile; do not use it.",
        )
    value = getattr(_current, limit_name)
    shown = _human(value) if limit_name.endswith("bytes") else str(value)
    got = f" ({actual})" if actual else ""
    return SourceError(
        f"{what} exceeds reprolock's limit of {shown}{got}; refusing it.",
        hint=f"If the input is genuine, raise the limit: {ENV_PREFIX}{limit_name.upper()}"
        "=<value> (see docs/security.md).",
    )


def _human(size: float) -> str:
    for unit, scale in (("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if size >= scale and size % scale == 0:
            return f"{int(size // scale)} {unit}"
    return f"{int(size)} bytes"
