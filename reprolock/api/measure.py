"""``reprolock matrix measure``: the CUDA kernels a wheel on an index really carries.

The wheel is chosen for a target (platform and Python), its zip directory read with range
requests, then the whole file streamed once: hashed (the measurement is of exactly the file
the index lists, sha256 checked) while every shared object is inflated into a fatbin
scanner. Results are cached by the wheel's sha256, so `lock --measure-kernels` and a second
`matrix measure` of the same file cost nothing.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import (
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_wheel_filename,
)
from packaging.version import Version

from reprolock import limits
from reprolock.api.network import NetOptions
from reprolock.compat.fatbin import Kernels, Ptx
from reprolock.compat.wheel_kernels import Member, WheelKernels, primary
from reprolock.errors import InputError, SourceError
from reprolock.model import ComputeCapability, Platform, PythonVersion
from reprolock.net import http
from reprolock.net.cache import Cache
from reprolock.net.session import new_session, redact
from reprolock.resolve.python.http_index import HttpIndex
from reprolock.resolve.python.index import DistFile
from reprolock.resolve.python.metadata import check_identity, parse_metadata
from reprolock.resolve.python.target import PythonTarget

PYPI = "https://pypi.org/simple"
_RUNTIMES = {
    "nvidia-cuda-runtime",
    "nvidia-cuda-runtime-cu11",
    "nvidia-cuda-runtime-cu12",
    "nvidia-cuda-runtime-cu13",
    "cuda-toolkit",
}
_CACHE_VERSION = "3"


@dataclass(frozen=True, slots=True, kw_only=True)
class Measurement:
    """What one wheel carries: kernels per shared object, and the CUDA it pins."""

    filename: str
    url: str
    sha256: str
    size: int
    libraries: dict[str, Kernels]
    cuda: str | None  # the CUDA runtime or toolkit version its metadata pins, if any

    @property
    def primary(self) -> tuple[str, Kernels] | None:
        name = parse_wheel_filename(self.filename)[0]
        return primary(self.libraries, name)

    @property
    def citation(self) -> str:
        """How a table row cites this measurement."""
        return f"{self.filename} sha256:{self.sha256}"


def parse_pin(text: str) -> tuple[NormalizedName, Version]:
    """``torch==2.5.1`` → (``torch``, 2.5.1); `InputError` for anything else."""
    try:
        requirement = Requirement(text)
    except InvalidRequirement as exc:
        raise InputError(
            f'"{text}" is not a requirement ({exc}).', hint="Write it like torch==2.5.1."
        ) from None
    pins = [s for s in requirement.specifier if s.operator in ("==", "===")]
    if len(pins) != 1 or "*" in pins[0].version or requirement.extras or requirement.marker:
        raise InputError(
            f'"{text}" does not name one version.',
            hint="Write the exact release to measure, like torch==2.5.1.",
        )
    return canonicalize_name(requirement.name), Version(pins[0].version)


def choose_wheel(
    files: list[DistFile], name: NormalizedName, version: Version, target: PythonTarget
) -> DistFile:
    """The best wheel of ``name==version`` for ``target`` (its platform and Python)."""
    ranks = target.tag_ranks
    best: tuple[int, str, DistFile] | None = None
    seen: list[str] = []
    for file in files:
        try:
            wheel_name, wheel_version, _build, tags = parse_wheel_filename(file.filename)
        except InvalidWheelFilename:
            continue
        if wheel_name != name or wheel_version != version:
            continue
        seen.append(file.filename)
        rank = min(
            (
                ranks[(t.interpreter, t.abi, t.platform)]
                for t in tags
                if (t.interpreter, t.abi, t.platform) in ranks
            ),
            default=None,
        )
        if rank is not None and (best is None or (rank, file.filename) < best[:2]):
            best = (rank, file.filename, file)
    if best is None:
        listed = ", ".join(sorted(seen)[:12]) or "none"
        raise InputError(
            f"{name} {version} has no wheel for {target}; its wheels: {listed}.",
            hint="Pass --platform and --python for a build that exists.",
        )
    return best[2]


def runtime_pin(metadata: bytes, target: PythonTarget) -> str | None:
    """The CUDA runtime (or toolkit) version the wheel's metadata pins for ``target``."""
    core = parse_metadata(metadata)
    env = target.marker_environment()
    for requirement in core.requires_dist:
        if canonicalize_name(requirement.name) not in _RUNTIMES:
            continue
        if requirement.marker is not None and not requirement.marker.evaluate({**env, "extra": ""}):
            continue
        pins = [s.version for s in requirement.specifier if s.operator == "=="]
        if pins:
            return pins[0]
    return None


def measure(
    pin: str,
    *,
    platform: Platform,
    python: PythonVersion,
    net: NetOptions,
    index: str = PYPI,
) -> Measurement:
    """Measure the wheel of ``pin`` (``name==version``) for the platform and Python."""
    name, version = parse_pin(pin)
    target = PythonTarget(python=python, platform=platform, glibc=(2, 99))
    with Measurer(index, net) as measurer:
        files = list(measurer.source.project_files(name))
        return measurer.measure(choose_wheel(files, name, version, target), target)


class Measurer:
    """Measures wheels listed on one index, through one session and the shared cache."""

    def __init__(self, index: str, net: NetOptions) -> None:
        self.index = index
        self.offline = net.config.offline
        self.cache = Cache(net.cache_dir)
        self.session = new_session(net.config)
        self.source = HttpIndex(index, self.session, self.cache, offline=self.offline)

    def __enter__(self) -> Measurer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.source.close()
        self.session.close()

    def measure(self, file: DistFile, target: PythonTarget) -> Measurement:
        """The kernels of ``file`` (cached by its sha256), and the CUDA its metadata pins
        for ``target``."""
        if not file.sha256:
            raise SourceError(
                f"{redact(self.index)} lists no sha256 for {file.filename}: a measurement must "
                "name the exact file it measured.",
                hint="Measure from an index that publishes hashes (PyPI does).",
            )
        key = f"{_CACHE_VERSION}\n{file.sha256}"
        cached = self.cache.get_ref("kernels", key, cap=1 << 20)
        if cached is not None and (found := _decode(cached, file)) is not None:
            return found
        if self.offline:
            raise SourceError(
                f"{file.filename} has not been measured yet, and --offline forbids downloading it.",
                hint="Run once without --offline.",
            )
        metadata = self.source.metadata(file)
        check_identity(parse_metadata(metadata), file.filename, file.index)
        members = [
            Member(name=m[0], offset=m[1], compressed_size=m[2], size=m[3], method=m[4])
            for m in self.source.zip_members(file)
        ]
        libraries, size = _stream(self.session, file, members)
        measurement = Measurement(
            filename=file.filename,
            url=file.url,
            sha256=file.sha256,
            size=size,
            libraries=libraries,
            cuda=runtime_pin(metadata, target),
        )
        self.cache.put_ref("kernels", key, _encode(measurement))
        return measurement


def _stream(session: Any, file: DistFile, members: list[Member]) -> tuple[dict[str, Kernels], int]:
    scanner = WheelKernels(what=file.filename, members=members)
    digest = hashlib.sha256()
    cap = file.size if file.size is not None else limits.current().wheel_bytes
    with http.stream(
        session, file.url, what=file.filename, cap=cap, limit_name="wheel_bytes"
    ) as response:
        if response.status != 200:
            raise SourceError(
                f"{redact(file.url)} answered {response.status}.",
                hint="Check the index; retry later if it is busy.",
            )
        for chunk in response.chunks():
            digest.update(chunk)
            scanner.feed(chunk)
        size = response.received
    if digest.hexdigest() != file.sha256:
        raise SourceError(
            f"{file.filename} does not match its sha256 from the index.",
            hint="The index may be serving tampered files; report it.",
        )
    return scanner.finish(), size


# -- the cache entry ---------------------------------------------------------------------------
def _encode(m: Measurement) -> bytes:
    return json.dumps(
        {
            "filename": m.filename,
            "size": m.size,
            "cuda": m.cuda,
            "libraries": {
                name: {
                    "sass": [str(c) for c in k.sass],
                    "ptx": [[str(p.arch), p.isa] for p in k.ptx],
                    "containers": k.containers,
                }
                for name, k in m.libraries.items()
            },
        },
        sort_keys=True,
    ).encode()


def _decode(data: bytes, file: DistFile) -> Measurement | None:
    try:
        raw = json.loads(data)
        libraries = {
            str(name): Kernels(
                sass=tuple(ComputeCapability.parse(c) for c in entry["sass"]),
                ptx=tuple(Ptx(ComputeCapability.parse(a), str(isa)) for a, isa in entry["ptx"]),
                containers=int(entry["containers"]),
            )
            for name, entry in raw["libraries"].items()
        }
        if raw["filename"] != file.filename:
            return None
        return Measurement(
            filename=file.filename,
            url=file.url,
            sha256=str(file.sha256),
            size=int(raw["size"]),
            libraries=libraries,
            cuda=raw["cuda"] if isinstance(raw["cuda"], str) else None,
        )
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return None
