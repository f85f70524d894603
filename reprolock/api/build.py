"""``reprolock build``: the image of a locked target, assembled from the lock without a
Docker daemon (`reprolock.build`), written as an OCI layout, an OCI or docker archive, or
pushed to a registry; its digests recorded beside the lock (`reprolock.build.record`).

Steps, each refusing what it cannot do before the next starts:

1. the lock, the target and everything the image config needs (checked as the
   Dockerfile emitter checks it); the output named;
2. `reprolock fetch` for the target: every wheel, ``.deb`` and standalone interpreter in
   ``.reprolock/<target>/``, sha256-checked (and checked again as each is opened);
3. the ``.deb`` files' maintainer scripts against the rule (exit 3 before any pull);
4. the base by its locked manifest digest from the registry (config and diff_ids
   compared with the lock), its layers cached by digest in ``<cache>/layers`` and reused
   byte for byte; the files the layers above need read from them;
5. the layers: *system* (apt packages, dpkg's database, the image's user), *python*
   (a standalone interpreter, the venv and its wheels), *app* (``WORKDIR`` and ``[image]
   copy``), each skipped when empty;
6. config and manifest; the output; the record.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from reprolock import __version__
from reprolock.api.base_layer import registry_client, spec_registry_options
from reprolock.api.build_base import PulledBase, cache_root, pull_base
from reprolock.api.build_context import fetch
from reprolock.api.build_output import Output, staging, write_output, write_record
from reprolock.api.built_wheels import read_built
from reprolock.api.bytecode import HostCompiler
from reprolock.api.export import locate_lock, pick_target
from reprolock.api.network import NetOptions
from reprolock.api.project import find_spec, load_spec, lock_digest, read_lock
from reprolock.build import apt as apt_build
from reprolock.build import record as records
from reprolock.build.config import (
    Settings,
    canonical,
    image_config,
    layer_media_type,
    manifest,
    parse_time,
)
from reprolock.build.context import copy_into
from reprolock.build.deb import DebFile
from reprolock.build.python import Compiler, feature, python_layer, unpack_standalone
from reprolock.build.tar import Blob, Compression, write_layer
from reprolock.build.tree import Lower, Store, Tree, ViewLower
from reprolock.emit.dockerfile import (
    CONTEXT,
    deb_filename,
    runtime_env,
    runtime_labels,
    standalone_filename,
    standalone_prefix,
    target_id,
    user_plan,
)
from reprolock.emit.quoting import word
from reprolock.errors import InputError, SourceError
from reprolock.image.files import open_regular
from reprolock.image.view import FilesystemView
from reprolock.image.write import (
    BlobDir,
    ImageBlobs,
)
from reprolock.lock import BuildWhere, InterpreterSource, LockedImage, LockedTarget, Lockfile, Wheel
from reprolock.model import Digest, grammar
from reprolock.model.oci import (
    DOCKER_LAYER_GZIP,
    OCI_LAYER_GZIP,
    OCI_LAYER_TAR,
    OCI_LAYER_ZSTD,
    Descriptor,
)
from reprolock.model.paths import UnsafePath, join_under
from reprolock.registry import RegistryOptions

Bytecode = Literal["auto", "yes", "no"]
OUTPUTS = ("oci", "oci-archive", "docker-archive", "registry")
_LAYER_TYPES = frozenset({OCI_LAYER_GZIP, OCI_LAYER_TAR, OCI_LAYER_ZSTD, DOCKER_LAYER_GZIP})
_BITS32 = frozenset({"386", "arm"})


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildOptions:
    target_id: str | None
    output: Output | None  # None: docker-archive:.reprolock/<target>/image.tar
    compression: Compression = "gzip"
    bytecode: Bytecode = "auto"
    context: Path | None = None  # the build context [default: the lock's folder]
    epoch: int | None = None  # instead of the lock's
    host_python: Callable[[str], str | None] = lambda _feature: None
    record: bool = True
    locked: bool = False  # a lock stale for its spec is an error, not a warning


@dataclass(frozen=True, slots=True, kw_only=True)
class LayerInfo:
    what: str  # "base", "system", "python", "app"
    digest: str
    diff_id: str
    size: int
    entries: int = 0
    reused: bool = False


@dataclass(slots=True, kw_only=True)
class BuildResult:
    target: str
    platform: str
    output: str
    manifest_digest: str
    config_digest: str
    epoch: int
    compression: str
    bytecode: str | None
    layers: list[LayerInfo] = field(default_factory=list)
    apt: list[str] = field(default_factory=list)
    python: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    record: Path | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return sum(layer.size for layer in self.layers)


# -- the steps ---------------------------------------------------------------------------------
def _under(root: Path, *names: str) -> Path:
    try:
        return join_under(root, *names)
    except UnsafePath as exc:
        raise InputError(f"refusing to read {exc}.") from None


def _check_target(lock: Lockfile, target: LockedTarget) -> LockedImage:
    tid = target_id(target)
    if target.base is None:
        raise InputError(
            f"{tid}: the lock pins no base image, so there is nothing to build on.",
            hint='Add [base] ref = "python:3.11-slim-bookworm" and run `reprolock lock`.',
        )
    word(target.base.manifest_digest, grammar.sha256_digest, f"{tid}: base manifest-digest")
    if target.packages and target.interpreter is None:
        raise InputError(
            f"{tid}: the lock names no interpreter for the venv (a lock before 1.2).",
            hint="Run `reprolock lock` to record [targets.interpreter].",
        )
    for package in target.packages:
        if package.build is not None and package.build.where is BuildWhere.IMAGE:
            raise InputError(
                f"{package.name} {package.version} is built from its sdist with the base "
                "image's compilers, which `reprolock build` does not run.",
                hint="Build this lock with `reprolock dockerfile` and docker build.",
            )
        if package.sdist is not None:
            continue  # its wheel is the one `reprolock fetch` built (built.json)
        if not any(w.sha256 for w in package.wheels):
            raise InputError(
                f"{package.name} {package.version}: the lock has no sha256 for its wheel; "
                "reprolock build installs nothing unchecked.",
                hint="Lock it from an index that publishes hashes.",
            )
    return lock.image or LockedImage(workdir="/app", user="app")


def _open_checked(path: Path, sha256: str, what: str) -> IO[bytes]:
    """``path`` opened (a regular file, no link at its end), its sha256 checked on the
    open descriptor: what is read afterwards is what was checked."""
    handle = open_regular(path, what, follow=False)
    digest = hashlib.sha256()
    while chunk := handle.read(1 << 20):
        digest.update(chunk)
    if digest.hexdigest() != sha256:
        handle.close()
        raise SourceError(
            f"{path}: its sha256 is {digest.hexdigest()}, the lock says {sha256}.",
            hint="Run `reprolock fetch` again (the file in the build context was changed).",
        )
    handle.seek(0)
    return handle


def _size_of(handle: IO[bytes]) -> int:
    return os.fstat(handle.fileno()).st_size


def _epoch(options: BuildOptions, target: LockedTarget, config: dict[str, Any]) -> int:
    """The build's time: given, else the latest of the base's ``created`` and the apt
    snapshot's date (both fixed by the lock), else 0."""
    if options.epoch is not None:
        return options.epoch
    times = [parse_time(config.get("created")) or 0]
    if target.apt_snapshot:
        snapshot = target.apt_snapshot
        stamp = (
            f"{snapshot[0:4]}-{snapshot[4:6]}-{snapshot[6:8]}T{snapshot[9:11]}:"
            f"{snapshot[11:13]}:{snapshot[13:15]}Z"
        )
        times.append(parse_time(stamp) or 0)
    return max(times)


def _write(
    tree: Tree, staging: BlobDir, compression: Compression, what: str, result: BuildResult
) -> Blob:
    nodes = tree.nodes()
    with staging.writer() as (out, named):
        blob = write_layer(nodes, tree.store, out, compression)
        named.append(Digest.parse(blob.digest))
    result.layers.append(
        LayerInfo(
            what=what, digest=blob.digest, diff_id=blob.diff_id, size=blob.size, entries=len(nodes)
        )
    )
    return blob


def _compiler(options: BuildOptions, target: LockedTarget, result: BuildResult) -> Compiler | None:
    if options.bytecode == "no" or target.interpreter is None:
        return None
    release = feature(target.interpreter.version)
    python = options.host_python(release)
    if python is None:
        if options.bytecode == "yes":
            raise InputError(
                f"--bytecode yes: no CPython {release} on this machine to byte-compile for "
                f"{target.id}.",
                hint=f"Install python{release}, or build with --bytecode no.",
            )
        result.warnings.append(
            f"no CPython {release} here: the image has no .pyc files (Python compiles "
            "in memory at import), and its digest differs from a build where CPython "
            f"{release} byte-compiled. Pass --bytecode yes or no to pin the choice."
        )
        return None
    return HostCompiler(python, release)


def _system_layer(
    tree: Tree,
    target: LockedTarget,
    image: LockedImage,
    debs: list[tuple[Any, DebFile]],
    base: PulledBase,
    result: BuildResult,
) -> None:
    if debs:
        built = apt_build.apt_layer(tree, debs, base.view, target.platform)
        result.notes.extend(built.notes)
        result.apt = [
            f"{p.name} {p.version}" + (f" (replacing {p.upgraded_from})" if p.upgraded_from else "")
            for p in built.packages
        ]
    user = user_plan(image, target)
    home = word(image.workdir, grammar.absolute_path, "image.workdir")
    if user.create_user:
        line = f"{user.name}:x:{user.uid}:{user.gid}::{home}:/usr/sbin/nologin\n"
        _append(tree, base.view, "etc/passwd", line)
    if user.create_group:
        _append(tree, base.view, "etc/group", f"{user.name}:x:{user.gid}:\n")


def _append(tree: Tree, view: FilesystemView, path: str, line: str) -> None:
    """``line`` added to the base's file (as ``echo >> file`` does)."""
    old = view.read(path) or b""
    if old and not old.endswith(b"\n"):
        old += b"\n"
    found = tree.lookup(tree.real(path))
    mode = found.mode & 0o7777 if found is not None and found.mode else 0o644
    tree.data(path, old + line.encode(), mode=mode)


def build(
    spec_path: Path | None,
    lock_path: Path | None,
    *,
    cwd: Path,
    options: BuildOptions,
    net: NetOptions,
    warnings: list[str] | None = None,
) -> BuildResult:
    """Build ``options.target_id``'s image (`reprolock.api.build`'s steps). Warnings (a
    stale lock, no bytecode) are appended to ``warnings`` as soon as they are known, and
    kept in the result."""
    clock = time.monotonic()
    path = locate_lock(spec_path, lock_path, cwd)
    lock, _found = read_lock(path)  # its warnings come with fetch's, below
    target = pick_target(lock, path, options.target_id)
    image = _check_target(lock, target)
    digest = lock_digest(path)
    tid = target_id(target)
    venv = word(image.venv or "/opt/venv", grammar.absolute_path, "image.venv")
    env = runtime_env(target, image, venv)
    labels = runtime_labels(target, image, digest)
    user = user_plan(image, target)
    context = options.context or path.parent
    output = options.output or Output(
        transport="docker-archive", target=str(context / CONTEXT / tid / "image.tar")
    )
    result = BuildResult(
        target=tid,
        platform=str(target.platform),
        output=str(output),
        manifest_digest="",
        config_digest="",
        epoch=0,
        compression=options.compression,
        bytecode=None,
        warnings=warnings if warnings is not None else [],
    )
    # 2. the locked files, fetched and checked
    fetch(
        spec_path,
        path,
        cwd=cwd,
        target_id=tid,
        output=context,
        net=net,
        locked=options.locked,
        warnings=result.warnings,
    )
    here = _under(context, CONTEXT, tid)
    registry = RegistryOptions()
    with contextlib.suppress(InputError, OSError):
        registry = spec_registry_options(load_spec(find_spec(spec_path, path.parent)))
    result.seconds["fetch"] = time.monotonic() - clock
    with contextlib.ExitStack() as stack:
        debs = []
        for package in sorted(target.apt, key=lambda p: p.name):
            name = deb_filename(package)
            handle = stack.enter_context(
                _open_checked(_under(here, "debs", name), package.sha256, name)
            )
            debs.append((package, DebFile(handle, _size_of(handle), name)))
        # 3. maintainer scripts, before anything is pulled
        apt_build.prejudge(debs)
        # 4. the base
        step = time.monotonic()
        client = registry_client(net, registry)
        cache = BlobDir(cache_root(net))
        base = pull_base(target, client, cache, offline=net.config.offline)
        result.layers.extend(
            LayerInfo(what="base", digest=str(d), diff_id=i, size=s, reused=True)
            for (d, s, _), i in zip(base.layers, base.diff_ids, strict=False)
        )
        result.seconds["base"] = time.monotonic() - step
        epoch = _epoch(options, target, base.config)
        result.epoch = epoch
        store = stack.enter_context(contextlib.closing(Store()))
        stage = BlobDir(stack.enter_context(staging(output, cache.root)))
        built: list[tuple[Blob, str]] = []
        lower: Lower = ViewLower(base.view)
        # 5. the layers
        step = time.monotonic()
        system = Tree(lower, store, mtime=epoch, what=f"{tid} system layer")
        _system_layer(system, target, image, debs, base, result)
        if len(system):
            built.append(
                (
                    _write(system, stage, options.compression, "system", result),
                    "reprolock build: apt packages, dpkg's database, the image's user",
                )
            )
            lower = system
        result.seconds["system"] = time.monotonic() - step
        step = time.monotonic()
        if target.packages:
            python = Tree(lower, store, mtime=epoch, what=f"{tid} python layer")
            compiler = _compiler(options, target, result)
            _python(python, target, here, venv, compiler, stack, result)
            result.bytecode = None if compiler is None else compiler.tag
            if isinstance(compiler, HostCompiler) and compiler.version:
                result.notes.append(
                    f"bytecode {compiler.tag} written by CPython {compiler.version} "
                    f"({compiler.python})"
                )
            built.append(
                (
                    _write(python, stage, options.compression, "python", result),
                    f"reprolock build: the venv {venv} and its wheels",
                )
            )
            lower = python
        result.seconds["python"] = time.monotonic() - step
        step = time.monotonic()
        app = Tree(lower, store, mtime=epoch, what=f"{tid} app layer")
        app.dir(image.workdir)
        copied = copy_into(app, context, image.copy, uid=user.uid, gid=user.gid)
        result.notes.extend(
            f"copied {c.source} to {c.destination}: {c.files} files, {c.bytes} bytes"
            for c in copied
        )
        if len(app):
            built.append(
                (
                    _write(app, stage, options.compression, "app", result),
                    f"reprolock build: WORKDIR {image.workdir} and [image] copy",
                )
            )
        result.seconds["app"] = time.monotonic() - step
        # 6. config, manifest, output, record
        settings = Settings(
            env=env,
            labels=labels,
            workdir=image.workdir,
            user=user.ids,
            expose=image.expose,
            healthcheck=image.healthcheck,
            entrypoint=image.entrypoint,
            cmd=image.cmd,
        )
        config = canonical(
            image_config(base.config, settings, built, platform=target.platform, epoch=epoch)
        )
        layers = [_descriptor(d, s, layer_media_type(t)) for d, s, t in base.layers] + [
            _descriptor(Digest.parse(b.digest), b.size, b.media_type) for b, _ in built
        ]
        body = canonical(
            manifest(
                config,
                layers,
                base_name=dict(labels)["org.opencontainers.image.base.name"],
                base_digest=target.base.manifest_digest if target.base else "",
            )
        )
        stage.put(config)
        blobs = ImageBlobs(
            manifest=body,
            config=config,
            layers=[(d, s) for d, s, _ in base.layers]
            + [(Digest.parse(b.digest), b.size) for b, _ in built],
            platform=target.platform,
            stores=(stage, cache),
        )
        step = time.monotonic()
        write_output(output, blobs, base, client, epoch)
        result.seconds["output"] = time.monotonic() - step
        result.manifest_digest = str(blobs.manifest_digest)
        result.config_digest = str(blobs.config_digest)
    if options.record:
        result.record = write_record(
            path,
            digest,
            tid,
            records.Built(
                platform=str(target.platform),
                manifest_digest=result.manifest_digest,
                config_digest=result.config_digest,
                compression=result.compression,
                bytecode=result.bytecode or "none",
                epoch=result.epoch,
                built_by=f"reprolock {__version__}",
            ),
        )
    result.seconds["total"] = time.monotonic() - clock
    return result


def _descriptor(digest: Digest, size: int, media_type: str) -> Descriptor:
    return Descriptor(media_type=media_type, digest=digest, size=size)


def _python(
    tree: Tree,
    target: LockedTarget,
    here: Path,
    venv: str,
    compiler: Compiler | None,
    stack: contextlib.ExitStack,
    result: BuildResult,
) -> None:
    interpreter = target.interpreter
    assert interpreter is not None
    if interpreter.source == InterpreterSource.STANDALONE:
        name = standalone_filename(target)
        prefix = standalone_prefix(target)
        assert name is not None and prefix is not None
        with _open_checked(_under(here, "python", name), interpreter.sha256 or "", name) as raw:
            unpack_standalone(tree, raw, prefix, name)
    wheels = []
    built = read_built(here)
    for package in target.packages:
        folder = "wheels"
        if package.sdist is not None:  # the wheel `reprolock fetch` built from it
            found = built.get(package.name)
            if found is None or found.sdist_sha256 != package.sdist.sha256:
                raise InputError(
                    f"{package.name} {package.version} is built from its sdist, and "
                    f"{here}/built.json records no wheel built from the locked one.",
                    hint="Run `reprolock fetch` first.",
                )
            wheel = Wheel(filename=found.filename, url=package.sdist.url, sha256=found.sha256)
            folder = "built"
        else:
            wheel = sorted(package.wheels, key=lambda w: w.filename)[0]
        filename = word(wheel.filename, grammar.wheel_filename, f"{package.name} wheel")
        handle = stack.enter_context(
            _open_checked(_under(here, folder, filename), wheel.sha256 or "", filename)
        )
        wheels.append((package, wheel, handle))
    layer = python_layer(
        tree,
        venv=venv,
        interpreter=interpreter,
        wheels=wheels,
        compiler=compiler,
        bits64=target.platform.architecture not in _BITS32,
    )
    result.python = [
        f"{p.name} {p.version} ({p.files} files, {p.pycs} pycs)" for p in layer.packages
    ]
