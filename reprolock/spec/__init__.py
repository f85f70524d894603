"""``reprolock.toml`` (or ``[tool.reprolock]`` in pyproject.toml) → a frozen `Spec`."""

from reprolock.spec.model import (
    AptSpec,
    BaseSpec,
    CompatPolicy,
    Environment,
    GpuDevice,
    GpuSpec,
    Healthcheck,
    ImageSpec,
    IndexSpec,
    InterpreterPolicy,
    PrereleasePolicy,
    PythonSpec,
    RegistrySpec,
    SdistPolicy,
    Spec,
    StandaloneSpec,
    UnknownCoverage,
)
from reprolock.spec.normalize import content_hash, normalized_sections
from reprolock.spec.parse import parse_spec

__all__ = [
    "AptSpec",
    "BaseSpec",
    "CompatPolicy",
    "Environment",
    "GpuDevice",
    "GpuSpec",
    "Healthcheck",
    "ImageSpec",
    "IndexSpec",
    "InterpreterPolicy",
    "PrereleasePolicy",
    "PythonSpec",
    "RegistrySpec",
    "SdistPolicy",
    "Spec",
    "StandaloneSpec",
    "UnknownCoverage",
    "content_hash",
    "normalized_sections",
    "parse_spec",
]
