"""The image config and manifest of a build: canonical JSON, from the lock and the base's
config alone.

The config is the base's, as ``docker build`` carries it into the image, with what the
Dockerfile path's instructions set (`reprolock.emit.dockerfile`): ``ENV`` (a variable the
base has keeps its place, new ones follow in name order), ``LABEL``, ``WORKDIR``,
``USER uid:gid``, ``EXPOSE``, ``HEALTHCHECK``, ``ENTRYPOINT``/``CMD`` (an entrypoint of the
lock's clears the base's command, as in a Dockerfile).  ``created`` and the history's
times are the build's epoch; the base's history is kept and one entry per layer added.
Docker's container fields (``container_config``, ``docker_version``, ``Image``, ``Hostname``
…) are left out.  JSON is written with sorted keys, no spaces, ASCII (\\u escapes).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from reprolock.build.tar import Blob
from reprolock.emit.dockerfile import LABEL_BASE_DIGEST, LABEL_BASE_NAME
from reprolock.errors import Unsatisfiable
from reprolock.lock import LockedHealthcheck
from reprolock.model import Digest, Platform
from reprolock.model.oci import (
    DOCKER_LAYER_GZIP,
    OCI_CONFIG,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    Descriptor,
)

# Fields of a base's config.config that an image built FROM it keeps.
_KEPT = (
    "Env",
    "Entrypoint",
    "Cmd",
    "Volumes",
    "WorkingDir",
    "Labels",
    "StopSignal",
    "ExposedPorts",
    "User",
    "Healthcheck",
    "Shell",
    "StopTimeout",
)
_UNIT_NS = {"h": 3600 * 10**9, "m": 60 * 10**9, "s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}
_DURATION = re.compile(r"([0-9]+)(h|ms|us|ns|m|s)")


def canonical(value: object) -> bytes:
    """JSON with sorted keys and no spaces, ASCII (non-ASCII and lone surrogates a base
    config may hold written as \\u escapes): the same value, the same bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def timestamp(epoch: int) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: object) -> int | None:
    """Seconds since the epoch of an RFC 3339 time (``2024-05-01T12:00:00.123Z``)."""
    if not isinstance(text, str):
        return None
    match = re.fullmatch(
        r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?"
        r"(Z|[+-][0-9]{2}:[0-9]{2})",
        text.strip(),
    )
    if match is None:
        return None
    try:
        zone = match.group(8)
        offset = dt.timedelta(0)
        if zone != "Z":
            sign = 1 if zone[0] == "+" else -1
            offset = sign * dt.timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
        year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
        moment = dt.datetime(year, month, day, hour, minute, second, tzinfo=dt.UTC)
    except ValueError:
        return None
    return max(int((moment - offset).timestamp()), 0)


def duration_ns(text: str) -> int:
    """``1m30s`` → nanoseconds (the lock's grammar guarantees the shape)."""
    return sum(int(n) * _UNIT_NS[unit] for n, unit in _DURATION.findall(text))


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """What the build sets in the config (the lock's ``[image]``, checked by the emitter)."""

    env: Sequence[tuple[str, str]]
    labels: Sequence[tuple[str, str]]
    workdir: str
    user: str  # "uid:gid"
    expose: Sequence[str] = ()
    healthcheck: LockedHealthcheck | None = None
    entrypoint: Sequence[str] | None = None
    cmd: Sequence[str] | None = None


def _port(port: str) -> str:
    return port if "/" in port else f"{port}/tcp"


def image_config(
    base: dict[str, Any],
    settings: Settings,
    layers: Sequence[tuple[Blob, str]],
    *,
    platform: Platform,
    epoch: int,
) -> dict[str, Any]:
    """The config of the base (its parsed JSON, validated by `parse_config` before) with
    ``layers`` ((blob, what made it)) on top."""
    old = base.get("config") if isinstance(base.get("config"), dict) else {}
    assert isinstance(old, dict)
    if old.get("OnBuild"):
        raise Unsatisfiable(
            "the base image has ONBUILD instructions, which only a Dockerfile build runs.",
            hint="Build this target with `reprolock dockerfile` and `docker build`.",
        )
    config: dict[str, Any] = {k: old[k] for k in _KEPT if old.get(k) is not None}
    env = [e for e in config.get("Env") or [] if isinstance(e, str)]
    names = [e.partition("=")[0] for e in env]
    for name, value in settings.env:
        if name in names:
            env[names.index(name)] = f"{name}={value}"
        else:
            env.append(f"{name}={value}")
            names.append(name)
    config["Env"] = env
    labels = dict(config.get("Labels") or {})
    labels.update(dict(settings.labels))
    config["Labels"] = labels
    config["WorkingDir"] = settings.workdir
    config["User"] = settings.user
    if settings.expose:
        ports = dict(config.get("ExposedPorts") or {})
        ports.update({_port(p): {} for p in settings.expose})
        config["ExposedPorts"] = ports
    health = settings.healthcheck
    if health is not None:
        check: dict[str, Any] = {"Test": ["CMD", *health.cmd]}
        for key, text in (
            ("Interval", health.interval),
            ("Timeout", health.timeout),
            ("StartPeriod", health.start_period),
        ):
            if text:
                check[key] = duration_ns(text)
        if health.retries is not None:
            check["Retries"] = int(health.retries)
        config["Healthcheck"] = check
    if settings.entrypoint is not None:
        config["Entrypoint"] = list(settings.entrypoint)
        config.pop("Cmd", None)
    if settings.cmd is not None:
        config["Cmd"] = list(settings.cmd)
    created = timestamp(epoch)
    history = [h for h in base.get("history") or [] if isinstance(h, dict)]
    history += [{"created": created, "created_by": what} for _, what in layers]
    diff_ids = list((base.get("rootfs") or {}).get("diff_ids") or [])
    out: dict[str, Any] = {
        "architecture": platform.architecture,
        "os": platform.os,
        "config": config,
        "created": created,
        "history": history,
        "rootfs": {"type": "layers", "diff_ids": diff_ids + [b.diff_id for b, _ in layers]},
    }
    if platform.variant:
        out["variant"] = platform.variant
    for key in ("os.version", "os.features"):
        if base.get(key) is not None:
            out[key] = base[key]
    return out


def layer_media_type(media_type: str) -> str:
    """A base layer's media type in an OCI manifest (Docker's gzip type is the same
    bytes)."""
    return OCI_LAYER_GZIP if media_type == DOCKER_LAYER_GZIP else media_type


def descriptor_json(descriptor: Descriptor) -> dict[str, Any]:
    return {
        "mediaType": descriptor.media_type,
        "digest": str(descriptor.digest),
        "size": descriptor.size,
    }


def manifest(
    config: bytes,
    layers: Sequence[Descriptor],
    *,
    base_name: str,
    base_digest: str,
) -> dict[str, Any]:
    """The OCI image manifest (annotated with the base, as OCI's keys name it)."""
    return {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": OCI_CONFIG,
            "digest": str(Digest.of(config)),
            "size": len(config),
        },
        "layers": [descriptor_json(d) for d in layers],
        "annotations": {LABEL_BASE_NAME: base_name, LABEL_BASE_DIGEST: base_digest},
    }
