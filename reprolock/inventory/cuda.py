"""The CUDA stack in an image: toolkit, cuDNN, NCCL, cuBLAS, from files, dpkg and wheels."""

from __future__ import annotations

import re

from reprolock.image.view import FilesystemView
from reprolock.inventory.model import CudaComponent, DebPackage, PythonEnv
from reprolock.inventory.text import decode, printable
from reprolock.model.oci import load_json

_DEFINE = re.compile(r"^#define\s+(\w+)\s+(\d+)", re.MULTILINE)
# dpkg package name → component (the version is the package's upstream part)
_DEB = (
    (re.compile(r"^libcudnn\d+(-cuda-\d+)?$"), "cudnn"),
    (re.compile(r"^libnccl2$"), "nccl"),
    (re.compile(r"^libcublas-\d+-\d+$"), "cublas"),
    (re.compile(r"^cuda-cudart-\d+-\d+$"), "cuda-runtime"),
)
_WHEEL = (
    (re.compile(r"^nvidia-cudnn-cu\d+$"), "cudnn"),
    (re.compile(r"^nvidia-nccl-cu\d+$"), "nccl"),
    (re.compile(r"^nvidia-cublas-cu\d+$"), "cublas"),
    (re.compile(r"^nvidia-cuda-runtime(-cu\d+)?$"), "cuda-runtime"),
)


def _defines(text: str) -> dict[str, str]:
    return dict(_DEFINE.findall(text))


def _header_version(
    view: FilesystemView,
    path: str,
    names: tuple[str, str, str],
) -> str | None:
    data = view.read(path)
    if data is None:
        return None
    values = _defines(decode(data))
    if all(n in values for n in names):
        return ".".join(values[n] for n in names)
    return None


def _json_version(data: bytes | None) -> str | None:
    """``cuda.version`` of a toolkit's ``version.json``; None when absent or malformed."""
    try:
        value = load_json(data or b"{}", "version.json")
    except ValueError:
        return None
    cuda = value.get("cuda") if isinstance(value, dict) else None
    version = cuda.get("version") if isinstance(cuda, dict) else None
    return printable(version) if isinstance(version, str) else None


def catalog_cuda(
    view: FilesystemView,
    *,
    env: dict[str, str],
    debs: list[DebPackage],
    python_envs: list[PythonEnv],
) -> list[CudaComponent]:
    found: list[CudaComponent] = []
    seen: set[str] = set()

    def real(path: str) -> str | None:
        """The resolved path, once: usr/local/cuda is usually a link to cuda-12.x."""
        resolved = view.resolve(path)
        if resolved is None or resolved in seen:
            return None
        seen.add(resolved)
        return resolved

    for link in view.glob("usr/local/cuda*/version.json"):
        path = real(link)
        if path is None:
            continue
        version = _json_version(view.read(path))
        node = view.node(path)
        if version:
            found.append(
                CudaComponent(
                    name="cuda",
                    version=version,
                    source="version.json",
                    path="/" + printable(path),
                    layer=node.layer if node else -1,
                )
            )
    for link in view.glob("usr/local/cuda*/version.txt"):
        path = real(link)
        if path is None:
            continue
        match = re.search(r"CUDA Version (\S+)", decode(view.read(path) or b""))
        node = view.node(path)
        if match:
            found.append(
                CudaComponent(
                    name="cuda",
                    version=printable(match.group(1)),
                    source="version.txt",
                    path="/" + printable(path),
                    layer=node.layer if node else -1,
                )
            )
    if env.get("CUDA_VERSION"):
        found.append(
            CudaComponent(
                name="cuda",
                version=printable(env["CUDA_VERSION"]),
                source="env",
                path="CUDA_VERSION",
            )
        )
    headers = (
        (
            "cudnn",
            ("CUDNN_MAJOR", "CUDNN_MINOR", "CUDNN_PATCHLEVEL"),
            (
                "usr/include/cudnn_version.h",
                "usr/include/x86_64-linux-gnu/cudnn_version_v*.h",
                "usr/include/aarch64-linux-gnu/cudnn_version_v*.h",
                "usr/local/cuda*/include/cudnn_version.h",
            ),
        ),
        (
            "nccl",
            ("NCCL_MAJOR", "NCCL_MINOR", "NCCL_PATCH"),
            ("usr/include/nccl.h", "usr/local/cuda*/include/nccl.h"),
        ),
    )
    for name, defines, globs in headers:
        for glob in globs:
            for link in view.glob(glob):
                path = real(link)
                if path is None:
                    continue
                version = _header_version(view, path, defines)
                node = view.node(path)
                if version:
                    found.append(
                        CudaComponent(
                            name=name,
                            version=version,
                            source="header",
                            path="/" + printable(path),
                            layer=node.layer if node else -1,
                        )
                    )
    for deb in debs:
        for deb_pattern, component in _DEB:
            if deb_pattern.match(deb.name):
                upstream = deb.version.split(":")[-1].split("-")[0]
                found.append(
                    CudaComponent(
                        name=component,
                        version=upstream,
                        source="dpkg",
                        path=f"dpkg:{deb.name}",
                        layer=deb.layer,
                    )
                )
    for python_env in python_envs:
        for dist in python_env.dists:
            for wheel_pattern, wheel_component in _WHEEL:
                if wheel_pattern.match(dist.name):
                    found.append(
                        CudaComponent(
                            name=wheel_component,
                            version=dist.version,
                            source="wheel",
                            path="/" + dist.metadata_path,
                            layer=dist.layer,
                        )
                    )
    return sorted(found, key=lambda c: (c.name, c.source, c.path))
