"""The sections of `verify` that compare what the lock pins: the base, labels and config,
apt packages, Python packages, copies that shadow them, the CUDA stack."""

from __future__ import annotations

import posixpath
from collections.abc import Iterator

from packaging.version import InvalidVersion, Version

from reprolock.verify.context import (
    LABEL_BASE_DIGEST,
    LABEL_DRIVER,
    LABEL_LOCK_DIGEST,
    LABEL_TARGET,
    Context,
    Finding,
    Section,
    finding,
)


def _public(version: str) -> str:
    try:
        return Version(version).public
    except InvalidVersion:
        return version


def base(ctx: Context) -> Iterator[Finding]:
    locked = ctx.target.base
    if locked is None:
        return
    n = len(locked.diff_ids)
    if ctx.diff_ids[:n] != locked.diff_ids:
        yield finding(
            "base-layers",
            locked.ref,
            ",".join(locked.diff_ids),
            ",".join(ctx.diff_ids[:n]),
            "error",
            f"the image does not start with the layers of {locked.ref} as locked",
        )
    label = ctx.labels.get(LABEL_BASE_DIGEST)
    if label is not None and label not in (locked.manifest_digest, locked.index_digest):
        yield finding(
            "base-label",
            LABEL_BASE_DIGEST,
            locked.manifest_digest,
            label,
            "error",
            "the base-digest label names another base image",
        )


def labels(ctx: Context) -> Iterator[Finding]:
    found = ctx.labels
    if ctx.lock_digest is not None and found.get(LABEL_LOCK_DIGEST, ctx.lock_digest) != (
        ctx.lock_digest
    ):
        yield finding(
            "label-lock-digest",
            LABEL_LOCK_DIGEST,
            ctx.lock_digest,
            found[LABEL_LOCK_DIGEST],
            "error",
            "the image was built from another lock",
        )
    if found.get(LABEL_TARGET, ctx.target.id) != ctx.target.id:
        yield finding(
            "label-target",
            LABEL_TARGET,
            ctx.target.id,
            found[LABEL_TARGET],
            "error",
            "the image was built for another target",
        )


def config(ctx: Context) -> Iterator[Finding]:
    if ctx.image is not None and ctx.inventory.user_name() != ctx.image.user:
        yield finding(
            "config-user",
            "user",
            ctx.image.user,
            ctx.inventory.user or "root",
            "error",
            "the image runs as another user",
        )


def apt(ctx: Context) -> Iterator[Finding]:
    debs = {(d.name, d.architecture): d for d in ctx.inventory.deb_packages}
    locked = {(p.name, p.architecture): p for p in ctx.target.apt}
    for key, deb in sorted(locked.items()):
        have = debs.get(key)
        if have is None:
            yield finding(
                "apt-missing",
                deb.name,
                deb.version,
                None,
                "error",
                "a locked apt deb is not installed",
            )
        elif have.version != deb.version:
            yield finding(
                "apt-version",
                deb.name,
                deb.version,
                have.version,
                "error",
                "installed at another version",
                f"layer {have.layer} {have.path}",
            )
    if ctx.target.base is None:
        return
    base_keys = {(d.name, d.architecture) for d in ctx.base_debs}
    for key, have in sorted(debs.items()):
        if key not in locked and key not in base_keys:
            yield finding(
                "apt-unexpected",
                have.name,
                None,
                have.version,
                ctx.unexpected,
                "installed, but neither in the base image nor in the lock",
                f"layer {have.layer} {have.path}",
            )


def python(ctx: Context) -> Iterator[Finding]:
    installed = {d.name: d for e in ctx.locked_envs() for d in e.dists}
    locked = {p.name: p for p in ctx.target.packages}
    for name, package in sorted(locked.items()):
        dist = installed.get(name)
        if dist is None:
            yield finding(
                "python-missing",
                name,
                package.version,
                None,
                "error",
                "a locked package is not installed",
            )
            continue
        if dist.version == package.version:
            continue
        rebuilt = _public(dist.version) == _public(package.version)
        yield finding(
            "python-rebuilt" if rebuilt else "python-version",
            name,
            package.version,
            dist.version,
            "error",
            "another build of the same version" if rebuilt else "installed at another version",
            f"layer {dist.layer} /{dist.metadata_path}",
        )
    if not ctx.target.packages:
        return
    for name, dist in sorted(installed.items()):
        if name not in locked:
            yield finding(
                "python-unexpected",
                name,
                None,
                dist.version,
                ctx.unexpected,
                "installed, but not in the lock",
                f"layer {dist.layer} /{dist.metadata_path}",
            )


def interpreter(ctx: Context) -> Iterator[Finding]:
    """The venv was made with the locked interpreter: its pyvenv.cfg's version is the lock's
    (another CPython is an error: bytecode, C extensions and the stdlib differ), and its home
    the folder of the lock's interpreter (a warning: the same release may live elsewhere)."""
    locked = ctx.target.interpreter
    if locked is None:
        return
    folder = posixpath.dirname(locked.path)
    for env in ctx.locked_envs():
        if env.kind != "venv":
            continue
        where = f"{env.path.split('/lib/', 1)[0]}/pyvenv.cfg"
        if env.venv_version is None:
            yield finding(
                "interpreter-unknown",
                locked.path,
                locked.version,
                None,
                "warning",
                "the venv's pyvenv.cfg does not say which interpreter made it",
                where,
            )
        elif env.venv_version != locked.version:
            yield finding(
                "interpreter-version",
                locked.path,
                locked.version,
                env.venv_version,
                "error",
                "the venv was made with another CPython than the lock's",
                where,
            )
        if env.venv_home is not None and env.venv_home.rstrip("/") != folder:
            yield finding(
                "interpreter-home",
                locked.path,
                folder,
                env.venv_home,
                "warning",
                "the venv was made with an interpreter from another folder",
                where,
            )


def shadowed(ctx: Context) -> Iterator[Finding]:
    """Locked packages with a copy in a user site, which Python puts before the venv's."""
    locked = {p.name: p for p in ctx.target.packages}
    for env in ctx.inventory.python_envs:
        if env.kind != "user":
            continue
        for dist in env.dists:
            if dist.name in locked:
                yield finding(
                    "python-shadowed",
                    dist.name,
                    locked[dist.name].version,
                    dist.version,
                    "error",
                    f"a user site-packages copy in {env.path} can shadow the venv's",
                    f"layer {dist.layer} /{dist.metadata_path}",
                )


def cuda(ctx: Context) -> Iterator[Finding]:
    stack = ctx.target.cuda
    if stack is None:
        return
    label = ctx.labels.get(LABEL_DRIVER)
    if label is not None and label != stack.driver_min:
        yield finding(
            "label-driver",
            LABEL_DRIVER,
            stack.driver_min,
            label,
            "error",
            "the driver-floor label differs from the lock's",
        )
    seen = {c.name: c for c in reversed(ctx.inventory.cuda)}
    for name, wanted in (("cuda", stack.toolkit), ("cudnn", stack.cudnn), ("nccl", stack.nccl)):
        if wanted is None:
            continue
        have = seen.get(name)
        if have is None and name == "cuda":
            # no toolkit in the image (a python-slim base): its CUDA is the runtime wheel's
            have = seen.get("cuda-runtime")
        if have is None or not have.version.startswith(wanted.rsplit(".", 1)[0]):
            yield finding(
                "cuda-version",
                name,
                wanted,
                None if have is None else have.version,
                "error",
                f"the image's {name} is not the locked one",
            )


SECTIONS: tuple[Section, ...] = (
    base,
    labels,
    config,
    apt,
    interpreter,
    python,
    shadowed,
    cuda,
)
