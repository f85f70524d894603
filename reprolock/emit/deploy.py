"""Deployments of a locked target: a Compose service and a Kubernetes Deployment (pure).

Both reserve GPUs for CUDA targets. The Deployment's node affinity uses the labels NVIDIA GPU
Feature Discovery puts on nodes (``nvidia.com/cuda.driver.major|minor|rev``,
``nvidia.com/gpu.compute.major|minor``), so pods land only on nodes whose driver is at least
the lock's floor and whose GPUs the locked build has kernels (or PTX) for.
"""

from __future__ import annotations

import re
from typing import Any

from reprolock.compat.arches import ArchList
from reprolock.emit.dockerfile import LABEL_DRIVER, LABEL_LOCK_DIGEST, LABEL_TARGET, user_plan
from reprolock.lock import LockedImage, LockedTarget
from reprolock.model import ComputeCapability, DriverVersion

DRIVER_MAJOR = "nvidia.com/cuda.driver.major"
DRIVER_MINOR = "nvidia.com/cuda.driver.minor"
DRIVER_REV = "nvidia.com/cuda.driver.rev"
COMPUTE_MAJOR = "nvidia.com/gpu.compute.major"
COMPUTE_MINOR = "nvidia.com/gpu.compute.minor"
GPU_RESOURCE = "nvidia.com/gpu"

Expr = dict[str, Any]


def _name(text: str) -> str:
    """A DNS-1123 label: lowercase alphanumerics and '-'."""
    cleaned = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return cleaned[:63] or "app"


def _port(text: str) -> tuple[int, str]:
    number, _, proto = text.partition("/")
    return int(number), (proto or "tcp")


def _floor(target: LockedTarget) -> DriverVersion | None:
    cuda = target.cuda
    if cuda is None:
        return None
    text = (
        cuda.driver_min_compat
        if cuda.compat == "minor" and cuda.driver_min_compat
        else cuda.driver_min
    )
    return DriverVersion.parse(text)


def _expr(key: str, op: str, *values: int) -> Expr:
    return {"key": key, "operator": op, "values": [str(v) for v in values]}


def driver_terms(floor: DriverVersion) -> list[list[Expr]]:
    """Node selector terms (ORed) for a driver >= ``floor``, on GFD's major/minor/rev."""
    major, minor, rev = (*floor.parts, 0, 0)[:3]
    terms = [[_expr(DRIVER_MAJOR, "Gt", major)]]
    if rev > 0:
        terms.append([_expr(DRIVER_MAJOR, "In", major), _expr(DRIVER_MINOR, "Gt", minor)])
        terms.append(
            [
                _expr(DRIVER_MAJOR, "In", major),
                _expr(DRIVER_MINOR, "In", minor),
                _expr(DRIVER_REV, "Gt", rev - 1),
            ]
        )
    elif minor > 0:
        terms.append([_expr(DRIVER_MAJOR, "In", major), _expr(DRIVER_MINOR, "Gt", minor - 1)])
    else:
        terms.append([_expr(DRIVER_MAJOR, "In", major)])
    return terms


def capability_terms(target: LockedTarget) -> list[list[Expr]]:
    """Node selector terms (ORed) for GPUs the build runs on: for each native ``sm_XY`` the
    same major with minor >= Y; for PTX ``compute_XY`` any capability >= X.Y. Without an arch
    list, the spec's target GPUs exactly."""
    cuda = target.cuda
    if cuda is None:
        return []
    terms: list[list[Expr]] = []
    if cuda.arches:
        arches = ArchList.parse(cuda.arches, [p.replace("compute_", "sm_") for p in cuda.ptx])
        # sm_80 already admits every 8.x GPU: later minors of a major add nothing.
        lowest: dict[int, ComputeCapability] = {}
        for cap in arches.sass:
            if cap.suffix == "a" or cap.major not in lowest:
                lowest.setdefault(cap.major, cap)
        kept = [c for c in arches.sass if c.suffix == "a" or lowest.get(c.major) == c]
        for cap in kept:
            if cap.suffix == "a":
                terms.append(
                    [_expr(COMPUTE_MAJOR, "In", cap.major), _expr(COMPUTE_MINOR, "In", cap.minor)]
                )
            elif cap.minor == 0:
                terms.append([_expr(COMPUTE_MAJOR, "In", cap.major)])
            else:
                terms.append(
                    [
                        _expr(COMPUTE_MAJOR, "In", cap.major),
                        _expr(COMPUTE_MINOR, "Gt", cap.minor - 1),
                    ]
                )
        for cap in arches.ptx:
            terms.append([_expr(COMPUTE_MAJOR, "Gt", cap.major)])
            terms.append(
                [_expr(COMPUTE_MAJOR, "In", cap.major), _expr(COMPUTE_MINOR, "Gt", cap.minor - 1)]
                if cap.minor > 0
                else [_expr(COMPUTE_MAJOR, "In", cap.major)]
            )
    else:
        for _requested, sm in cuda.devices:
            cap = ComputeCapability.parse(sm)
            terms.append(
                [_expr(COMPUTE_MAJOR, "In", cap.major), _expr(COMPUTE_MINOR, "In", cap.minor)]
            )
    unique: list[list[Expr]] = []
    for term in terms:
        if term not in unique:
            unique.append(term)
    return unique


def node_affinity(target: LockedTarget) -> Expr | None:
    floor = _floor(target)
    if floor is None:
        return None
    drivers = driver_terms(floor)
    caps = capability_terms(target) or [[]]
    terms = [{"matchExpressions": d + c} for d in drivers for c in caps]
    return {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}


def _health(image: LockedImage) -> Expr | None:
    health = image.healthcheck
    if health is None:
        return None
    out: Expr = {"test": ["CMD", *health.cmd]}
    for key, value in (
        ("interval", health.interval),
        ("timeout", health.timeout),
        ("start_period", health.start_period),
    ):
        if value:
            out[key] = value
    if health.retries is not None:
        out["retries"] = health.retries
    return out


def _labels(target: LockedTarget, lock_digest: str) -> dict[str, str]:
    labels = {LABEL_TARGET: target.id, LABEL_LOCK_DIGEST: lock_digest}
    if target.cuda is not None:
        labels[LABEL_DRIVER] = target.cuda.driver_min
    return labels


def compose(
    target: LockedTarget,
    image: LockedImage | None,
    *,
    image_ref: str,
    service: str,
    lock_digest: str,
    gpus: str = "all",
) -> Expr:
    """A Compose file with one service running ``image_ref``."""
    settings = image or LockedImage(workdir="/app", user="app")
    spec: Expr = {"image": image_ref}
    user = user_plan(settings, target)
    if user.uid != 0:
        spec["user"] = user.ids
    if settings.expose:
        spec["ports"] = [
            f"{n}:{n}/{p}" if p != "tcp" else f"{n}:{n}" for n, p in map(_port, settings.expose)
        ]
    health = _health(settings)
    if health is not None:
        spec["healthcheck"] = health
    spec["labels"] = _labels(target, lock_digest)
    if target.cuda is not None:
        device: Expr = {"driver": "nvidia", "capabilities": ["gpu"]}
        device["count"] = "all" if gpus == "all" else int(gpus)
        spec["deploy"] = {"resources": {"reservations": {"devices": [device]}}}
    return {"services": {_name(service): spec}}


def _probe(image: LockedImage) -> Expr | None:
    health = image.healthcheck
    if health is None:
        return None
    probe: Expr = {"exec": {"command": list(health.cmd)}}
    for key, value in (
        ("periodSeconds", health.interval),
        ("timeoutSeconds", health.timeout),
        ("initialDelaySeconds", health.start_period),
    ):
        seconds = _seconds(value)
        if seconds is not None:
            probe[key] = seconds
    if health.retries is not None:
        probe["failureThreshold"] = health.retries
    return probe


def _seconds(value: str | None) -> int | None:
    if not value:
        return None
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", value):
        total += float(number) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
    return max(1, round(total)) if total else None


def deployment(
    target: LockedTarget,
    image: LockedImage | None,
    *,
    image_ref: str,
    name: str,
    lock_digest: str,
    gpus: int = 1,
    replicas: int = 1,
) -> Expr:
    """A Kubernetes apps/v1 Deployment running ``image_ref``."""
    settings = image or LockedImage(workdir="/app", user="app")
    app = _name(name)
    selector = {"app.kubernetes.io/name": app}
    container: Expr = {"name": app, "image": image_ref}
    if settings.expose:
        container["ports"] = [
            {"containerPort": n, "protocol": p.upper()} for n, p in map(_port, settings.expose)
        ]
    if target.cuda is not None:
        container["resources"] = {"limits": {GPU_RESOURCE: gpus}}
    probe = _probe(settings)
    if probe is not None:
        container["livenessProbe"] = probe
    pod: Expr = {}
    affinity = node_affinity(target)
    if affinity is not None:
        pod["affinity"] = {"nodeAffinity": affinity}
    user = user_plan(settings, target)
    if user.uid != 0:
        pod["securityContext"] = {
            "runAsNonRoot": True,
            "runAsUser": user.uid,
            "runAsGroup": user.gid,
        }
    pod["containers"] = [container]
    annotations = _labels(target, lock_digest)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": app, "labels": dict(selector)},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": dict(selector)},
            "template": {
                "metadata": {"labels": dict(selector), "annotations": annotations},
                "spec": pod,
            },
        },
    }
