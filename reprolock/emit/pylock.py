"""The Python layer of one target as a PEP 751 ``pylock.toml``."""

from __future__ import annotations

from typing import Any

import tomli_w

from reprolock.errors import InputError
from reprolock.lock import LockedTarget


def environment_marker(target: LockedTarget) -> str:
    feature = ".".join(target.python.split(".")[:2])
    return (
        f'sys_platform == "linux" and platform_machine == "{target.platform.machine}" '
        f'and python_version == "{feature}"'
    )


def pylock_dict(target: LockedTarget) -> dict[str, Any]:
    feature = ".".join(target.python.split(".")[:2])
    packages: list[dict[str, Any]] = []
    for package in sorted(target.packages, key=lambda p: p.name):
        wheels = []
        for wheel in sorted(package.wheels, key=lambda w: w.filename):
            if not wheel.sha256:
                raise InputError(
                    f"{package.name} {package.version} has no sha256 in the lock; pylock.toml "
                    "requires a hash for every file.",
                    hint="Lock it from an index that publishes hashes.",
                )
            entry: dict[str, Any] = {"name": wheel.filename, "url": wheel.url}
            if wheel.size is not None:
                entry["size"] = wheel.size
            entry["hashes"] = {"sha256": wheel.sha256}
            wheels.append(entry)
        item: dict[str, Any] = {
            "name": package.name,
            "version": package.version,
            "index": package.index,
        }
        if package.dependencies:
            item["dependencies"] = [{"name": d} for d in sorted(package.dependencies)]
        if package.sdist is not None:
            sdist: dict[str, Any] = {"name": package.sdist.filename, "url": package.sdist.url}
            if package.sdist.size is not None:
                sdist["size"] = package.sdist.size
            sdist["hashes"] = {"sha256": package.sdist.sha256}
            item["sdist"] = sdist
        if wheels or package.sdist is None:
            item["wheels"] = wheels
        if package.build is not None:
            # PEP 751 has no build environments: reprolock's own table carries the locked one
            item["tool"] = {
                "reprolock": {
                    "build-backend": package.build.backend,
                    "build-requires": list(package.build.requires),
                    "build-where": package.build.where.value,
                    "build-wheels": [
                        {"name": w.filename, "url": w.url, "hashes": {"sha256": w.sha256}}
                        for w in sorted(package.build.wheels, key=lambda w: w.filename)
                    ],
                }
            }
        packages.append(item)
    return {
        "lock-version": "1.0",
        "environments": [environment_marker(target)],
        "requires-python": f"=={feature}.*",
        "extras": [],
        "dependency-groups": [],
        "default-groups": [],
        "created-by": "reprolock",
        "packages": packages,
        "tool": {"reprolock": {"target": target.id}},
    }


def pylock_toml(target: LockedTarget) -> str:
    return tomli_w.dumps(pylock_dict(target))
