"""The CUDA the solver attributes to each PyPI torch wheel agrees with the wheel itself.

``tests/data/torch-metadata`` holds the real METADATA (name, version, Requires-Python,
Requires-Dist) of the CPython 3.11 manylinux x86_64 wheel of every torch release on PyPI,
read from pypi.org on 2026-11-28 and frozen here.
"""

from __future__ import annotations

import email
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from reprolock import api
from reprolock.lock import PythonPackage
from reprolock.stack.check import components

FROZEN = Path(__file__).parent / "data" / "torch-metadata"
MATRICES = api.shipped_matrices()
LINUX_X86_64 = {
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "python_version": "3.11",
    "python_full_version": "3.11.0",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "os_name": "posix",
    "extra": "",
}


def _requires(path: Path) -> tuple[Version, list[Requirement]]:
    message = email.message_from_string(path.read_text())
    requires = [Requirement(r) for r in message.get_all("Requires-Dist") or []]
    live = [r for r in requires if r.marker is None or r.marker.evaluate(LINUX_X86_64)]
    return Version(message["Version"]), live


def _pinned(requirement: Requirement) -> str:
    (spec,) = list(requirement.specifier)
    assert spec.operator == "==", requirement
    return spec.version


FILES = sorted(FROZEN.glob("torch-*.METADATA"))


def test_every_torch_release_in_the_matrices_is_frozen() -> None:
    frozen = {_requires(f)[0] for f in FILES}
    assert frozen == {r.version for r in MATRICES.torch.releases}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_default_wheel_cuda_agrees_with_its_runtime_pin(path: Path) -> None:
    version, requires = _requires(path)
    release = MATRICES.torch.release(version)
    assert release is not None
    pypi = MATRICES.torch.builds(release, "linux/amd64")[0]
    assert pypi.variant == "pypi"
    runtime = [
        PythonPackage(name=r.name, version=_pinned(r), index="pypi")
        for r in requires
        if r.name.startswith("nvidia-cuda-runtime") or r.name == "cuda-toolkit"
    ]
    # What the lock's driver floor reads from the resolved pins ...
    found = components(runtime, {})
    assert len(found) == 1, found
    # ... is the CUDA the solver judged the wheel by (its major.minor; the pin may name an
    # update release exactly: cuda-toolkit==13.0.2).
    assert pypi.cuda is not None
    assert pypi.cuda.parts[:2] == found[0].cuda.parts[:2]
    cudnn = [r for r in requires if r.name.startswith("nvidia-cudnn")]
    assert pypi.cudnn == _pinned(cudnn[0])
    # And the wheel really exists for every Python the matrices say.
    assert "3.11" in release.python
    assert pypi.version == version
