from __future__ import annotations

import re

import pytest

from reprolock.model import (
    ComputeCapability,
    CudaVersion,
    Digest,
    DriverVersion,
    ImageRef,
    Platform,
    PythonVersion,
)


@pytest.mark.parametrize(
    ("text", "canonical", "debian", "machine"),
    [
        ("linux/amd64", "linux/amd64", "amd64", "x86_64"),
        ("amd64", "linux/amd64", "amd64", "x86_64"),
        ("x86_64", "linux/amd64", "amd64", "x86_64"),
        ("linux/arm64", "linux/arm64", "arm64", "aarch64"),
        ("linux/arm64/v8", "linux/arm64", "arm64", "aarch64"),
        ("aarch64", "linux/arm64", "arm64", "aarch64"),
        ("linux/ppc64le", "linux/ppc64le", "ppc64el", "ppc64le"),
        ("linux/arm/v7", "linux/arm/v7", "armhf", "armv7l"),
    ],
)
def test_platform_parse(text: str, canonical: str, debian: str, machine: str) -> None:
    platform = Platform.parse(text)
    assert str(platform) == canonical
    assert platform.debian_arch == debian
    assert platform.machine == machine
    assert Platform.parse(str(platform)) == platform


def test_platform_rejects_unknown() -> None:
    with pytest.raises(ValueError, match='unknown platform "linux/mips"'):
        Platform.parse("linux/mips")
    with pytest.raises(ValueError, match='unsupported operating system "windows"'):
        Platform.parse("windows/amd64")


def test_driver_version_orders_numerically() -> None:
    assert DriverVersion.parse("535.104.05") < DriverVersion.parse("535.104.12")
    assert DriverVersion.parse("535.104.05") < DriverVersion.parse("550.54.15")
    assert DriverVersion.parse("99.1") < DriverVersion.parse("450.80.02")
    assert str(DriverVersion.parse("535.104.05")) == "535.104.05"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("-535.104.05", 'driver version "-535.104.05" is negative'),
        ("abc", '"abc" is not a driver version'),
        ("535.104.05.1", '"535.104.05.1" is not a driver version'),
        ("", '"" is not a driver version'),
    ],
)
def test_driver_version_rejects(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        DriverVersion.parse(text)


def test_cuda_and_python_versions() -> None:
    assert CudaVersion.parse("12.4.1") > CudaVersion.parse("12.4")
    assert CudaVersion.parse("12.10") > CudaVersion.parse("12.9")
    with pytest.raises(ValueError, match=r"write major\.minor"):
        CudaVersion.parse("12")
    assert PythonVersion.parse("3.11").full == "3.11.0"
    assert PythonVersion.parse("3.11.2").feature == "3.11"
    with pytest.raises(ValueError, match=r'Python "2\.7" is not supported'):
        PythonVersion.parse("2.7")


@pytest.mark.parametrize(
    ("text", "sm"),
    [
        ("8.0", "sm_80"),
        ("sm_90", "sm_90"),
        ("sm_90a", "sm_90a"),
        ("12.0", "sm_120"),
        ("compute_86", "sm_86"),
        ("SM_75", "sm_75"),
    ],
)
def test_compute_capability(text: str, sm: str) -> None:
    assert ComputeCapability.parse(text).sm == sm
    assert ComputeCapability.looks_like(text)


def test_compute_capability_orders() -> None:
    assert ComputeCapability.parse("9.0") < ComputeCapability.parse("12.0")
    assert not ComputeCapability.looks_like("A100")


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "familiar"),
    [
        ("python", "docker.io", "library/python", "latest", "python:latest"),
        ("python:3.11-slim", "docker.io", "library/python", "3.11-slim", "python:3.11-slim"),
        (
            "nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04",
            "docker.io",
            "nvidia/cuda",
            "12.4.1-cudnn-runtime-ubuntu22.04",
            "nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04",
        ),
        (
            "nvcr.io/nvidia/pytorch:24.05-py3",
            "nvcr.io",
            "nvidia/pytorch",
            "24.05-py3",
            "nvcr.io/nvidia/pytorch:24.05-py3",
        ),
        ("localhost:5000/base:1", "localhost:5000", "base", "1", "localhost:5000/base:1"),
        (
            "index.docker.io/library/ubuntu:22.04",
            "docker.io",
            "library/ubuntu",
            "22.04",
            "ubuntu:22.04",
        ),
    ],
)
def test_image_ref(text: str, registry: str, repository: str, tag: str, familiar: str) -> None:
    ref = ImageRef.parse(text)
    assert (ref.registry, ref.repository, ref.tag) == (registry, repository, tag)
    assert ref.familiar == familiar


def test_image_ref_with_digest() -> None:
    digest = "sha256:" + "a" * 64
    ref = ImageRef.parse(f"ubuntu:22.04@{digest}")
    assert str(ref.digest) == digest
    assert str(ref) == f"docker.io/library/ubuntu:22.04@{digest}"
    assert ImageRef.parse(f"ubuntu@{digest}").tag is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Ubuntu:22.04", "invalid repository name"),
        ("ubuntu:bad tag", "not an image reference"),
        ("ubuntu@sha256:abc", "not a valid sha256 digest"),
        ("", "not an image reference"),
    ],
)
def test_image_ref_rejects(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ImageRef.parse(text)


def test_digest() -> None:
    digest = Digest.of(b"hello")
    assert str(digest) == "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    assert Digest.parse(str(digest)) == digest
    with pytest.raises(ValueError, match="unsupported digest algorithm"):
        Digest.parse("md5:abcd")
