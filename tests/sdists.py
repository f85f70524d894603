"""Real source distributions for the loopback index, and the real build backends' wheels.

`make_sdist` writes an sdist as PyPI serves them (one top folder, PKG-INFO, sources) for a
setuptools project with a ``setup.py`` only (the legacy backend, like ``promise``), a
setuptools project declared in ``pyproject.toml`` (like ``antlr4-python3-runtime``), a
hatchling project, or one with a C extension compiled by the build.

`backend_wheels` gives the wheels of the real build backends and what they need
(setuptools, wheel, hatchling, packaging, ...), packed again from the distributions
installed beside the tests (their files as RECORD lists them): the tests never reach
the internet for them.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import io
import tarfile
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

# What each backend needs in its build environment, as the venv of the tests has them.
SETUPTOOLS = ("setuptools", "wheel", "packaging")
HATCHLING = ("hatchling", "packaging", "pathspec", "pluggy", "tomlkit", "trove-classifiers")


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode()


def installed_wheel(name: str, folder: Path) -> Path:
    """The installed distribution ``name`` packed as a wheel in ``folder`` (its files as
    RECORD lists them, bytecode and scripts left out); skips the test when it is absent."""
    try:
        dist = importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        pytest.skip(f"{name} is not installed beside the tests")
    files: dict[str, bytes] = {}
    info = ""
    for entry in dist.files or ():
        path = str(entry)
        if path.startswith("..") or "__pycache__" in path or path.endswith(".pyc"):
            continue
        if path.endswith(".dist-info/RECORD") or path.endswith(".dist-info/INSTALLER"):
            info = path.rsplit("/", 1)[0]
            continue
        if path.endswith("direct_url.json") or path.endswith("REQUESTED"):
            continue
        located = Path(str(entry.locate()))
        if located.is_file():
            files[path] = located.read_bytes()
    assert info, f"{name}: no RECORD"
    record = "".join(f"{p},{_record_hash(d)},{len(d)}\n" for p, d in sorted(files.items()))
    files[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode()
    stem = info.removesuffix(".dist-info")
    wheel = folder / f"{stem}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for member in sorted(files, key=lambda m: (m.startswith(info), m)):
            archive.writestr(zipfile.ZipInfo(member, (2020, 1, 1, 0, 0, 0)), files[member])
    return wheel


def backend_wheels(folder: Path, names: Sequence[str]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return [installed_wheel(n, folder) for n in names]


def make_sdist(
    folder: Path,
    name: str,
    version: str,
    *,
    backend: str = "setuptools",
    requires: Sequence[str] = (),
    extension: bool = False,
    fail: bool = False,
    files: Mapping[str, str] | None = None,
) -> Path:
    """An sdist of project ``name`` with one module (``<name>_mod`` or the package); with
    ``backend``: "legacy" (setup.py only), "setuptools" (pyproject.toml), "hatchling";
    ``extension`` adds a C extension; ``fail`` makes the build fail loudly."""
    module = name.replace("-", "_").replace(".", "_")
    top = f"{module}-{version}"
    pkg_info = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    tree: dict[str, str] = {
        "PKG-INFO": pkg_info,
        f"{module}/__init__.py": f'__version__ = "{version}"\n',
    }
    deps = ", ".join(repr(r) for r in requires)
    boom = "raise SystemExit('error: this package cannot be built: tests asked it to fail')\n"
    if backend == "legacy":
        ext = ""
        if extension:
            ext = f", ext_modules=[Extension('{module}._speed', ['{module}/_speed.c'])]"
        tree["setup.py"] = (
            (boom if fail else "")
            + "from setuptools import setup, Extension\n"
            + f"setup(name={name!r}, version={version!r}, packages=[{module!r}], "
            + f"install_requires=[{deps}]{ext})\n"
        )
    elif backend == "setuptools":
        tree["pyproject.toml"] = (
            '[build-system]\nrequires = ["setuptools>=61"]\n'
            'build-backend = "setuptools.build_meta"\n\n'
            f'[project]\nname = "{name}"\nversion = "{version}"\ndependencies = [{deps}]\n'
            f'\n[tool.setuptools]\npackages = ["{module}"]\n'
        )
        if extension:
            tree["setup.py"] = (
                "from setuptools import setup, Extension\n"
                f"setup(ext_modules=[Extension('{module}._speed', ['{module}/_speed.c'])])\n"
            )
    elif backend == "hatchling":
        tree["pyproject.toml"] = (
            '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n\n'
            f'[project]\nname = "{name}"\nversion = "{version}"\ndependencies = [{deps}]\n'
            f'\n[tool.hatch.build.targets.wheel]\npackages = ["{module}"]\n'
        )
    else:
        raise ValueError(backend)
    if extension:
        tree[f"{module}/_speed.c"] = _C_EXTENSION.replace("MODULE", "_speed")
    tree.update(files or {})
    path = folder / f"{module}-{version}.tar.gz"
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        for member, text in sorted(tree.items()):
            data = text.encode()
            info = tarfile.TarInfo(f"{top}/{member}")
            info.size = len(data)
            info.mtime = 1_600_000_000
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return path


_C_EXTENSION = """\
#include <Python.h>

static PyObject *answer(PyObject *self, PyObject *args) { return PyLong_FromLong(42); }

static PyMethodDef methods[] = {{"answer", answer, METH_NOARGS, "42"}, {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "MODULE", NULL, -1, methods};

PyMODINIT_FUNC PyInit_MODULE(void) { return PyModule_Create(&module); }
"""
