"""A realistic lock built from the example spec, for codec and freshness tests."""

from __future__ import annotations

import random
import tomllib
from pathlib import Path
from typing import Any

import tomli_w

from reprolock import api
from reprolock.lock import (
    AptPackage,
    CudaStack,
    ExtensionKernels,
    LockedBase,
    LockedDowngrade,
    LockedTarget,
    Lockfile,
    PythonPackage,
    Wheel,
    dumps,
    inputs_of,
    new_lockfile,
)
from reprolock.lock.freshness import locked_image
from reprolock.model import Platform

EXAMPLE = Path(__file__).parent.parent / "examples" / "train" / "reprolock.toml"


def _h(seed: str) -> str:
    import hashlib

    return hashlib.sha256(seed.encode()).hexdigest()


def example_targets(shuffle: int | None = None) -> tuple[LockedTarget, ...]:
    """Two targets; with ``shuffle`` every list is given in a random order."""
    rng = random.Random(shuffle)

    def mix(items: list[object]) -> list[object]:
        if shuffle is not None:
            rng.shuffle(items)
        return items

    targets = []
    for arch, machine in (("amd64", "x86_64"), ("arm64", "aarch64")):
        packages = [
            PythonPackage(
                name=name,
                version=version,
                index="https://pypi.org/simple",
                dependencies=tuple(mix(list(deps))),  # type: ignore[arg-type]
                wheels=tuple(
                    mix(
                        [  # type: ignore[arg-type]
                            Wheel(
                                filename=f"{name.replace('-', '_')}-{version}-py3-none-any.whl",
                                url=f"https://files.example/{name}-{version}-py3-none-any.whl",
                                sha256=_h(name + version),
                                size=1000 + len(name),
                            ),
                            Wheel(
                                filename=f"{name.replace('-', '_')}-{version}-cp311-cp311-"
                                f"manylinux_2_28_{machine}.whl",
                                url=f"https://files.example/{name}-{version}-{machine}.whl",
                                sha256=_h(name + version + machine),
                                size=2000 + len(name),
                            ),
                        ]
                    )
                ),
            )
            for name, version, deps in (
                ("torch", "2.5.1", ("filelock", "typing-extensions", "sympy")),
                ("filelock", "3.16.1", ()),
                ("typing-extensions", "4.12.2", ()),
                ("sympy", "1.13.1", ("mpmath",)),
                ("mpmath", "1.3.0", ()),
            )
        ]
        downgrades = [
            LockedDowngrade(
                name="sympy",
                version="1.13.1",
                newest="1.13.3",
                reason="needs mpmath<1.4,>=1.1.0, which has only an sdist",
            ),
            LockedDowngrade(
                name="filelock",
                version="3.16.1",
                newest="3.17.0",
                reason="requires Python >=3.12, the target is 3.11.0",
            ),
        ]
        apt = [
            AptPackage(
                name=name,
                version=version,
                architecture=arch,
                sha256=_h(name + arch),
                size=12345,
                url=f"http://archive.example/pool/{name}_{version}_{arch}.deb",
            )
            for name, version in (
                ("git", "1:2.34.1-1ubuntu1.11"),
                ("libgl1", "1.4.0-1"),
                ("git-man", "1:2.34.1-1ubuntu1.11"),
            )
        ]
        targets.append(
            LockedTarget(
                id=f"py3.11-cu124-ubuntu22.04-{arch}",
                platform=Platform.parse(f"linux/{arch}"),
                python="3.11",
                cuda=CudaStack(
                    toolkit="12.4.1",
                    cudnn="9.1.0.70",
                    driver_min="550.54.15",
                    driver_min_compat="525.60.13",
                    arches=tuple(mix(["sm_90", "sm_50", "sm_80", "sm_86", "sm_120"])),  # type: ignore[arg-type]
                    devices=(("H100", "sm_90"), ("A100", "sm_80")),
                    extensions=(
                        ExtensionKernels(
                            name="flash-attn",
                            version="2.7.4.post1",
                            library="flash_attn_2_cuda.cpython-311-x86_64-linux-gnu.so",
                            arches=("sm_90", "sm_80"),
                            ptx=("compute_90",),
                            ptx_isa="8.4",
                            measured="flash_attn-2.7.4.post1-cp311-cp311-linux_x86_64.whl "
                            "sha256:" + _h("flash"),
                            coverage=(("H100", "native sm_90"), ("A100", "native sm_80")),
                        ),
                    ),
                ),
                base=LockedBase(
                    ref="nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04",
                    index_digest="sha256:" + _h("index"),
                    manifest_digest="sha256:" + _h("manifest" + arch),
                    config_digest="sha256:" + _h("config" + arch),
                    diff_ids=tuple("sha256:" + _h(f"layer{i}{arch}") for i in range(3)),
                    env=(("PATH", "/usr/local/cuda/bin:/usr/bin"), ("CUDA_VERSION", "12.4.1")),
                    user="root",
                ),
                apt_snapshot="20250520T000000Z",
                apt=tuple(mix(apt)),  # type: ignore[arg-type]
                packages=tuple(mix(packages)),  # type: ignore[arg-type]
                downgrades=tuple(mix(downgrades)),  # type: ignore[arg-type]
            )
        )
    return tuple(mix(targets))  # type: ignore[arg-type]


def example_lock(shuffle: int | None = None) -> Lockfile:
    spec = api.load_spec(EXAMPLE)
    return new_lockfile(
        inputs_of(spec, api.shipped_matrices().version),
        example_targets(shuffle),
        locked_image(spec),
    )


def sealed(data: dict[str, Any]) -> str:
    """The lock mapping ``data`` as TOML with its integrity digests recomputed: a hostile lock
    that is consistent with itself, so only the field grammars can refuse it."""
    from reprolock.lock.integrity import digests

    data = {k: v for k, v in data.items() if k != "integrity"}
    data["integrity"] = digests(data)
    return tomli_w.dumps(data)


def example_data() -> dict[str, Any]:
    """`example_lock` as the TOML mapping a reader sees."""
    return tomllib.loads(dumps(example_lock()))
