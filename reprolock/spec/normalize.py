"""The spec as a canonical mapping: what a lock's inputs-hash is computed over."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from reprolock.spec.model import (
    InterpreterPolicy,
    PythonSpec,
    SdistPolicy,
    Spec,
    UnknownCoverage,
)


def _requirement_key(text: str) -> str:
    return text.lower()


def normalized_sections(spec: Spec) -> dict[str, Any]:
    """Each spec section as plain, sorted JSON-able data (``None`` when absent).

    Only what changes the lock's outcome is included: requirement files enter by
    their parsed requirements, not by their names or comments.
    """
    env = spec.environment
    gpu = spec.gpu
    py = spec.python
    apt = spec.apt
    image = spec.image
    return {
        "environment": {
            "name": env.name,
            "python": str(env.python),
            "platforms": [str(p) for p in env.platforms],
        },
        "gpu": None
        if gpu is None
        else {
            "devices": sorted({d.capability.sm for d in gpu.devices}),
            "driver": None if gpu.driver is None else str(gpu.driver),
            "cuda": None if gpu.cuda is None else str(gpu.cuda),
            "cudnn": None if gpu.cudnn is None else str(gpu.cudnn),
            "compat": gpu.compat.value,
            # only when not the default, so locks of specs without the key stay fresh
            **(
                {"unknown-coverage": gpu.unknown_coverage.value}
                if gpu.unknown_coverage is not UnknownCoverage.REFUSE
                else {}
            ),
        },
        "base": {
            "ref": None if spec.base.ref is None else str(spec.base.ref),
            "image": spec.base.image,
            "flavor": spec.base.flavor,
            "os": spec.base.os,
        },
        "python": None
        if py is None
        else {
            "requirements": sorted({str(r) for r in py.requirements}, key=_requirement_key),
            "indexes": [
                {"name": i.name, "url": i.url, "packages": list(i.packages), "default": i.default}
                for i in sorted(py.indexes, key=lambda i: i.name)
            ],
            "venv": py.venv,
            "exclude-newer": None if py.exclude_newer is None else py.exclude_newer.isoformat(),
            "prerelease": py.prerelease.value,
            "allow-unhashed": list(py.allow_unhashed),
            "pytorch-index": py.pytorch_index,
            # the interpreter keys enter only when set: locks of specs without them stay fresh
            **_interpreter(py),
        },
        "apt": None
        if apt is None
        else {
            "packages": list(apt.packages),
            "snapshot": apt.snapshot,
            "mirror": apt.mirror,
            "allow-unsigned": apt.allow_unsigned,
            "keyrings": list(apt.keyrings),
        },
        "image": {
            "workdir": image.workdir,
            "user": image.user,
            "copy": [list(p) for p in image.copy],
            "env": dict(image.env),
            "labels": dict(image.labels),
            "cmd": None if image.cmd is None else list(image.cmd),
            "entrypoint": None if image.entrypoint is None else list(image.entrypoint),
            "expose": list(image.expose),
            "healthcheck": None
            if image.healthcheck is None
            else {
                "cmd": list(image.healthcheck.cmd),
                "interval": image.healthcheck.interval,
                "timeout": image.healthcheck.timeout,
                "start-period": image.healthcheck.start_period,
                "retries": image.healthcheck.retries,
            },
        },
        "registry": {
            "mirrors": dict(spec.registry.mirrors),
            "insecure": list(spec.registry.insecure),
        },
    }


def _interpreter(py: PythonSpec) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if py.interpreter != InterpreterPolicy.AUTO:
        out["interpreter"] = py.interpreter.value
    if py.interpreter_prerelease:
        out["interpreter-prerelease"] = True
    if py.standalone is not None:
        out["standalone"] = {"release": py.standalone.release, "url": py.standalone.url}
    # likewise the sdist keys
    if py.sdists != SdistPolicy.BUILD:
        out["sdists"] = py.sdists.value
    if py.no_build:
        out["no-build"] = list(py.no_build)
    if py.only_build:
        out["only-build"] = list(py.only_build)
    return out


def content_hash(value: object) -> str:
    """``sha256:`` of the canonical JSON of ``value``."""
    data = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(data.encode()).hexdigest()
