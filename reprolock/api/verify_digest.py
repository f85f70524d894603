"""``verify image`` by digest: is this the image ``reprolock build`` made from this lock?

``reprolock build`` records each target's digests in ``reprolock.build.toml`` beside the
lock (`reprolock.build.record`).  An image whose config digest is the recorded one has
exactly the recorded layers (the config names every layer's content by diff_id) and
config: it is that build, bit for bit, which takes reading a manifest and a config
instead of every layer.  The manifest digest also fixes how the layers are compressed; a
source without a manifest (a ``docker save`` archive, the daemon) is judged by its
config digest alone.  An image made any other way (a Dockerfile build) has no record to
match and gets the full check.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from reprolock.api.build_output import read_record
from reprolock.api.export import locate_lock, pick_target
from reprolock.api.inspect import InspectOptions, open_image, parse_image_arg
from reprolock.api.network import NetOptions
from reprolock.api.project import lock_digest, use_lock
from reprolock.build.record import NAME, Built
from reprolock.errors import InputError
from reprolock.model import Digest, Platform
from reprolock.verify.context import Finding
from reprolock.verify.findings import Report


@dataclass(frozen=True, slots=True, kw_only=True)
class DigestCheck:
    image: str
    target: str
    recorded: Built | None  # this lock's record of the target, if any
    config_digest: str | None = None  # the image's (None until read)
    manifest_digest: str | None = None

    @property
    def matches(self) -> bool:
        return self.recorded is not None and self.config_digest == self.recorded.config_digest

    def note(self) -> str:
        """One line saying what the digests proved."""
        assert self.recorded is not None
        manifest = ""
        if self.manifest_digest is not None:
            same = self.manifest_digest == self.recorded.manifest_digest
            manifest = (
                f", manifest {self.manifest_digest}"
                if same
                else f"; its manifest {self.manifest_digest} stores the layers otherwise than "
                f"the recorded {self.recorded.manifest_digest} ({self.recorded.compression})"
            )
        return (
            f"{self.image}: config {self.config_digest}{manifest}: the image reprolock build "
            f"made from this lock for {self.target} ({NAME}); the layer-by-layer check was "
            "skipped (--full runs it)."
        )

    def report(self) -> Report:
        """A verify report: nothing, or the one finding that the digests differ."""
        if self.matches or self.recorded is None:
            return Report(image=self.image, target=self.target)
        finding = Finding(
            kind="build-digest",
            subject=self.target,
            expected=self.recorded.config_digest,
            actual=self.config_digest,
            severity="error",
            message=f"the image is not the one reprolock build recorded in {NAME}",
        )
        return Report(image=self.image, target=self.target, findings=(finding,))


def recorded_build(
    spec_path: Path | None,
    lock_path: Path | None,
    *,
    cwd: Path,
    target_id: str | None,
    locked: bool = False,
    warnings: list[str] | None = None,
    required: bool = False,
) -> tuple[str, Built | None]:
    """(the target's id, its build recorded for this very lock, if any). Warnings about
    the lock (a stale one: `freshness`; with ``locked`` an error) go to ``warnings``."""
    path = locate_lock(spec_path, lock_path, cwd)
    lock, found = use_lock(path, spec_path, cwd=cwd, locked=locked, warnings=warnings)
    target = pick_target(lock, path, target_id)
    try:
        record = read_record(path)
    except InputError as exc:
        if required:
            raise
        found.append(f"{exc.message} It is ignored: the image is checked layer by layer.")
        if warnings is not None:
            warnings.append(found[-1])
        return target.id, None
    if record is None or record.lock_digest != lock_digest(path):
        return target.id, None
    return target.id, record.targets.get(target.id)


def check_digest(
    image: str,
    *,
    spec_path: Path | None,
    lock_path: Path | None,
    cwd: Path,
    target_id: str | None,
    options: InspectOptions,
    net: NetOptions,
    required: bool,
    locked: bool = False,
    warnings: list[str] | None = None,
) -> DigestCheck:
    """The image's digests against the build record; with ``required``, no record for
    this lock's target is bad input (exit 2), else the check says so (``recorded`` None)
    without reading the image."""
    target, recorded = recorded_build(
        spec_path,
        lock_path,
        cwd=cwd,
        target_id=target_id,
        locked=locked,
        warnings=warnings,
        required=required,
    )
    if recorded is None:
        if required:
            raise InputError(
                f"--digest: {NAME} records no build of {target} from this lock.",
                hint="Build it with `reprolock build`, or verify the image without --digest "
                "(the layer-by-layer check).",
            )
        return DigestCheck(image=image, target=target, recorded=None)
    spec = parse_image_arg(image)
    options = InspectOptions(
        platform=Platform.parse(recorded.platform), docker_host=options.docker_host
    )
    with open_image(spec, options, net) as opened:
        config = Digest.of(opened.config_bytes())
        manifest = opened.manifest_digest()
    return DigestCheck(
        image=opened.description,
        target=target,
        recorded=recorded,
        config_digest=str(config),
        manifest_digest=None if manifest is None else str(manifest),
    )
