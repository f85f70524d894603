"""The inventory of an image: frozen values, each knowing the layer and path it came from."""

from __future__ import annotations

from dataclasses import dataclass, field

from reprolock.compat.fatbin import Kernels


@dataclass(frozen=True, slots=True, kw_only=True)
class OsInfo:
    id: str
    version_id: str | None
    pretty_name: str | None
    codename: str | None
    id_like: tuple[str, ...] = ()
    path: str = ""
    layer: int = -1


@dataclass(frozen=True, slots=True, kw_only=True)
class DebPackage:
    name: str
    version: str
    architecture: str
    source: str | None = None
    path: str = ""  # var/lib/dpkg/status or a status.d file
    layer: int = -1


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordIssue:
    path: str  # as RECORD lists it (relative to the package folder)
    problem: str  # "missing", "modified", "malformed", "pyc-stale" or "pyc-orphan"
    expected: str
    actual: str | None = None
    layer: int | None = None  # the layer that wrote the file (or deleted it); None: unknown
    listed: bool = True  # False: a pyc RECORD does not list, written after install
    used: bool = False  # a pyc Python imports although it matches no source


@dataclass(frozen=True, slots=True, kw_only=True)
class PythonDist:
    name: str  # canonical
    version: str
    metadata_path: str  # the .dist-info or .egg-info path
    layer: int
    installer: str | None = None
    direct_url: str | None = None
    wheel_tags: tuple[str, ...] = ()
    build: str | None = None
    files: int = 0  # files listed in RECORD
    checked: int = 0  # of those, hashed and compared
    bytecode_rewritten: int = 0  # pycs unlike RECORD's that match their source (recompiled)
    deb_package: str | None = None  # the Debian package that installed it (RECORD unchecked)
    record_issues: tuple[RecordIssue, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class PythonEnv:
    """One site-packages (or dist-packages) folder and what is installed in it."""

    path: str
    python: str | None  # "3.11" from lib/python3.11/...
    kind: str  # "venv", "system", "user", "debian" (see `python_dists.env_kind`)
    dists: tuple[PythonDist, ...] = ()
    # A venv's pyvenv.cfg: the interpreter it was made with (``version``, and ``home``, the
    # folder of that interpreter); None when not a venv or not said.
    venv_version: str | None = None
    venv_home: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DpkgIssue:
    """A file of an installed Debian package unlike dpkg's record of it."""

    package: str
    path: str  # "/usr/bin/x", where the file is (a diverted one: where dpkg moved it)
    problem: str  # "modified" or "missing"
    expected: str  # md5, as dpkg recorded it
    actual: str | None = None
    conffile: bool = False
    layer: int | None = None  # the layer that wrote (or deleted) it; None: unknown


@dataclass(frozen=True, slots=True, kw_only=True)
class DpkgIntegrity:
    files: int  # listed in md5sums files and in conffiles
    checked: int  # of those, hashed and compared
    diverted: int = 0  # checked where a diversion moved them
    issues: tuple[DpkgIssue, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class DataFile:
    """A data or model file baked into the image: owned by no package."""

    path: str
    size: int
    layer: int
    why: str  # the pattern it matches ("*.safetensors"), or "large"


@dataclass(frozen=True, slots=True, kw_only=True)
class CudaComponent:
    name: str  # "cuda", "cudnn", "nccl", "cublas", "cuda-runtime"
    version: str
    source: str  # "version.json", "header", "dpkg", "wheel", "env"
    path: str
    layer: int = -1


@dataclass(frozen=True, slots=True, kw_only=True)
class LibraryKernels:
    """The CUDA kernels one shared object carries."""

    path: str  # "/opt/venv/lib/python3.11/site-packages/nvidia/cublas/lib/libcublas.so.12"
    layer: int  # the layer that wrote it
    kernels: Kernels


@dataclass(frozen=True, slots=True, kw_only=True)
class PackageKernels:
    """The CUDA kernels of a package's shared objects, or of one file no package owns."""

    kind: str  # "python", "apt", or "file" (no package owns it; ``name`` is its path)
    name: str
    version: str | None  # None for a file
    env: str | None  # a Python package's environment (its site-packages folder)
    libraries: tuple[LibraryKernels, ...]  # every one that carries kernels, by path
    library: str | None  # the one that runs (`kernels.summarize`); None: cannot be told
    kernels: Kernels  # that library's; else every library's together


@dataclass(frozen=True, slots=True, kw_only=True)
class Inventory:
    os: OsInfo | None
    deb_packages: tuple[DebPackage, ...]
    python_envs: tuple[PythonEnv, ...]
    cuda: tuple[CudaComponent, ...]
    env: tuple[tuple[str, str], ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    user: str | None = None
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    apt_sources: tuple[str, ...] = field(default=())  # files that configure apt
    history: tuple[str, ...] = ()  # the build steps, as the config records them
    users: tuple[tuple[str, str], ...] = ()  # (uid, name) from /etc/passwd
    dpkg_integrity: DpkgIntegrity | None = None  # None: no dpkg database, or not checked
    data_files: tuple[DataFile, ...] = ()
    # packages (and loose files) with CUDA kernels; None: not scanned for (--no-kernel-scan)
    kernels: tuple[PackageKernels, ...] | None = ()

    def user_name(self) -> str:
        """The config's user as a name: ``10001:10001`` → the passwd name of uid 10001."""
        user = self.user or "root"
        uid = user.split(":", 1)[0]
        if uid.isdigit():
            return next((name for u, name in self.users if u == uid), user)
        return uid
