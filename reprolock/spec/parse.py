"""``reprolock.toml`` text → a validated, frozen `Spec`, or one error listing every problem."""

from __future__ import annotations

import datetime as dt
import posixpath
import re
import tomllib
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name

from reprolock.compat import Matrices
from reprolock.document import toml
from reprolock.document.checker import Checker, toml_type
from reprolock.document.checker import show as show_value
from reprolock.document.locate import KeyPath
from reprolock.errors import InputError, Problem, problems_error
from reprolock.model import (
    ComputeCapability,
    DriverVersion,
    ImageRef,
    Platform,
    PythonVersion,
    grammar,
)
from reprolock.model.grammar import show
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

ReadFile = Callable[[str], str]
"""Returns the text of a file named relative to the spec; raises OSError if it cannot be
read, ValueError if it is refused (outside the project, not a regular file, too large)."""

CheckFile = Callable[[str], None]
"""Checks that a file named relative to the spec may be used (as `ReadFile` refuses)."""

DEFAULT_PLATFORM = "linux/amd64"
DEFAULT_VENV = "/opt/venv"

_SECTIONS = ("environment", "gpu", "base", "python", "apt", "image", "registry")
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,127}", re.ASCII)
_FLAVORS = ("base", "runtime", "devel", "cudnn-runtime", "cudnn-devel", "slim")
_OS = re.compile(r"[a-z]{1,32}[0-9.]{0,16}", re.ASCII)
_RELEASE = re.compile(r"[0-9A-Za-z][0-9A-Za-z._-]{0,63}", re.ASCII)
_VERSIONISH = re.compile(r"\d+(\.\d+)*(\.\*)?", re.ASCII)
ECHOED_LINES = 3  # bad lines of a requirements file repeated in messages; then a count


def parse_spec(
    text: str,
    *,
    file: str,
    matrices: Matrices,
    read_file: ReadFile,
    check_file: CheckFile | None = None,
    pyproject: bool = False,
) -> Spec:
    """Parse and validate a spec.

    ``file`` names the spec in messages; ``read_file`` reads requirements files
    named in it, ``check_file`` checks the keyrings it names.  With ``pyproject`` the
    spec is the ``[tool.reprolock]`` table.  Raises `InputError` with every problem
    found, each with key path and line.
    """
    try:
        document = toml.loads(text, file=file)
    except tomllib.TOMLDecodeError as exc:
        raise _syntax_error(exc, file) from None
    prefix: KeyPath = ()
    if pyproject:
        tool = document.get("tool", {})
        if not isinstance(tool, dict) or "reprolock" not in tool:
            raise InputError(
                f"{file}: has no [tool.reprolock] table.",
                hint="Add a [tool.reprolock] table, or keep the spec in reprolock.toml "
                "(`reprolock init` writes one).",
            )
        document, prefix = tool["reprolock"], ("tool", "reprolock")
        if not isinstance(document, dict):
            raise InputError(
                f"{file}: tool.reprolock must be a table, got {toml_type(document)} "
                f"{show_value(document)}.",
                hint="Write the spec under [tool.reprolock.environment], [tool.reprolock.python], "
                "… tables.",
            )
    check = Checker(file=file, text=text, prefix=prefix)
    spec = _SpecReader(check, matrices, read_file, check_file).read(document)
    if check.problems or spec is None:
        raise problems_error(file, check.problems, what="the spec")
    return spec


def _syntax_error(exc: tomllib.TOMLDecodeError, file: str) -> InputError:
    message = str(exc)
    line = column = None
    found = re.search(r"\(at line (\d+), column (\d+)\)", message)
    if found:
        line, column = int(found.group(1)), int(found.group(2))
        message = message[: found.start()].strip()
    elif (found := re.search(r"\(at end of document\)", message)) is not None:
        message = message[: found.start()].strip() + " at the end of the document"
    problem = Problem(
        message=f"invalid TOML: {message}.",
        file=file,
        line=line,
        column=column,
        hint="Fix the syntax there: strings need quotes, tables are written [name], "
        "and each key = value stands on its own line.",
    )
    return InputError(f"{file}: is not valid TOML:", problems=[problem])


class _SpecReader:
    def __init__(
        self,
        check: Checker,
        matrices: Matrices,
        read_file: ReadFile,
        check_file: CheckFile | None,
    ) -> None:
        self.check = check
        self.matrices = matrices
        self.read_file = read_file
        self.check_file = check_file

    def valid(
        self, path: KeyPath, value: str, grammar: Callable[[str], str], hint: str = ""
    ) -> bool:
        """Whether ``grammar`` accepts ``value``; a problem at ``path`` if not."""
        try:
            grammar(value)
        except ValueError as exc:
            self.check.add(path, f"{exc}.", hint or None)
            return False
        return True

    def read(self, document: Mapping[str, Any]) -> Spec | None:
        root = self.check.table(dict(document), (), _SECTIONS)
        if root is None:
            return None
        environment = self.environment(root.get("environment", {}))
        gpu = self.gpu(root["gpu"]) if "gpu" in root else None
        base = self.base(root.get("base", {}))
        python = self.python(root["python"]) if "python" in root else None
        apt = self.apt(root["apt"]) if "apt" in root else None
        image = self.image(root.get("image", {}))
        registry = self.registry(root.get("registry", {}))
        if environment is None or base is None or image is None or registry is None:
            return None
        return Spec(
            environment=environment,
            gpu=gpu,
            base=base,
            python=python,
            apt=apt,
            image=image,
            registry=registry,
        )

    # -- [environment] --------------------------------------------------------
    def environment(self, value: object) -> Environment | None:
        c, path = self.check, ("environment",)
        table = c.table(value, path, ("name", "python", "platforms"))
        if table is None:
            return None
        name = c.string(table, path, "name") or "default"
        if "name" in table and not _NAME.fullmatch(name):
            c.add(
                (*path, "name"),
                f"{show(name)} is not a valid environment name.",
                "Use lowercase letters, digits, '.', '_' and '-', starting with a letter or digit.",
            )
        python: PythonVersion | None = None
        raw = table.get("python")
        if raw is None:
            c.add(
                (*path, "python"),
                "is required: the target CPython version.",
                'Add python = "3.11" under [environment].',
            )
        elif isinstance(raw, float | int) and not isinstance(raw, bool):
            c.wrong_type(
                (*path, "python"),
                raw,
                "a string",
                f'Quote the version: python = "{raw}" (3.10 as a number is 3.1).',
            )
        elif (text := c.string(table, path, "python")) is not None:
            try:
                python = PythonVersion.parse(text)
            except ValueError as exc:
                c.add((*path, "python"), f"{exc}.")
        platforms: list[Platform] = []
        items = c.strings(table, path, "platforms")
        if items is None and "platforms" not in table:
            items = [(0, DEFAULT_PLATFORM)]
        if items == [] and "platforms" in table:
            c.add(
                (*path, "platforms"),
                "must list at least one platform.",
                f'Write platforms = ["{DEFAULT_PLATFORM}"].',
            )
        for i, item in items or ():
            try:
                platform = Platform.parse(item)
            except ValueError as exc:
                c.add((*path, "platforms", i), f"{exc}.")
                continue
            if platform in platforms:
                c.add(
                    (*path, "platforms", i), f"duplicate platform {show(item)}.", "List each once."
                )
            else:
                platforms.append(platform)
        if python is None:
            return None
        return Environment(name=name, python=python, platforms=tuple(sorted(platforms)))

    # -- [gpu] ---------------------------------------------------------------------
    def gpu(self, value: object) -> GpuSpec | None:
        c, path = self.check, ("gpu",)
        table = c.table(
            value, path, ("devices", "driver", "cuda", "cudnn", "compat", "unknown-coverage")
        )
        if table is None:
            return None
        devices: list[GpuDevice] = []
        for i, item in c.strings(table, path, "devices") or ():
            device = self.device((*path, "devices", i), item)
            if device is not None:
                devices.append(device)
        driver = None
        if "driver" in table and not isinstance(table["driver"], str):
            raw = table["driver"]
            hint = (
                "A driver version cannot be negative. "
                if isinstance(raw, int | float) and not isinstance(raw, bool) and raw < 0
                else ""
            )
            c.wrong_type(
                (*path, "driver"),
                raw,
                "a string",
                f'{hint}Write the version as nvidia-smi prints it: driver = "535.104.05".',
            )
        elif (text := c.string(table, path, "driver")) is not None:
            try:
                driver = DriverVersion.parse(text)
            except ValueError as exc:
                c.add(
                    (*path, "driver"),
                    f"{exc}.",
                    "Use the oldest driver in your fleet, as `nvidia-smi` prints it.",
                )
        cuda = self.constraint(table, path, "cuda", '">=12.1" or "12.4"')
        cudnn = self.constraint(table, path, "cudnn", '"9.*" or ">=9.1"')
        compat = CompatPolicy.MINOR
        if (text := c.string(table, path, "compat")) is not None:
            try:
                compat = CompatPolicy(text)
            except ValueError:
                c.add(
                    (*path, "compat"),
                    f"{show(text)} is not a compat policy.",
                    'Use "minor" (CUDA minor-version compatibility) or "strict".',
                )
        unknown = UnknownCoverage.REFUSE
        if (text := c.string(table, path, "unknown-coverage")) is not None:
            try:
                unknown = UnknownCoverage(text)
            except ValueError:
                c.add(
                    (*path, "unknown-coverage"),
                    f"{show(text)} is not a coverage policy.",
                    'Use "refuse" (the default: builds whose kernels are unknown are not '
                    'chosen) or "warn" (accept them knowingly).',
                )
        return GpuSpec(
            devices=tuple(devices),
            driver=driver,
            cuda=cuda,
            cudnn=cudnn,
            compat=compat,
            unknown_coverage=unknown,
        )

    def device(self, path: KeyPath, text: str) -> GpuDevice | None:
        # the GPU table's module on first use: an up-to-date lock reads no table
        from reprolock.compat.gpus import UnknownGpu  # noqa: PLC0415

        if ComputeCapability.looks_like(text):
            return GpuDevice(requested=text, model=None, capability=ComputeCapability.parse(text))
        try:
            model = self.matrices.gpus.lookup(text)
        except UnknownGpu as exc:
            quoted = " or ".join(f'"{s}"' for s in exc.suggestions)
            hint = f"Did you mean {quoted}? " if quoted else ""
            self.check.add(
                path,
                f"unknown GPU {show(text)}.",
                f"{hint}Name a GPU from `reprolock matrix gpus`, or give its "
                'compute capability, e.g. "8.0" or "sm_90".',
            )
            return None
        return GpuDevice(requested=text, model=model.name, capability=model.capability)

    def constraint(
        self, table: Mapping[str, Any], path: KeyPath, key: str, example: str
    ) -> SpecifierSet | None:
        text = self.check.string(table, path, key)
        if text is None:
            return None
        return self.specifier((*path, key), text, example)

    def specifier(self, path: KeyPath, text: str, example: str) -> SpecifierSet | None:
        raw = text.strip()
        if _VERSIONISH.fullmatch(raw):  # "12.4" means 12.4.x; "9.*" means 9.x
            raw = f"=={raw}" if raw.endswith(".*") else f"=={raw}.*"
        try:
            return SpecifierSet(raw)
        except InvalidSpecifier:
            self.check.add(
                path,
                f"{show(text)} is not a valid version specifier.",
                f"Write a version or a PEP 440 specifier such as {example}.",
            )
            return None

    # -- [base] ----------------------------------------------------------------------
    def base(self, value: object) -> BaseSpec | None:
        c, path = self.check, ("base",)
        table = c.table(value, path, ("ref", "image", "flavor", "os"))
        if table is None:
            return None
        ref = None
        if (text := c.string(table, path, "ref")) is not None:
            try:
                ref = ImageRef.parse(text)
            except ValueError as exc:
                c.add(
                    (*path, "ref"),
                    f"{exc}.",
                    'Write it like "nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04".',
                )
        image = c.string(table, path, "image")
        flavor = c.string(table, path, "flavor")
        os_name = c.string(table, path, "os")
        if "ref" in table and any(k in table for k in ("image", "flavor", "os")):
            c.add(
                (*path, "ref"),
                "ref cannot be combined with image, flavor or os.",
                "Give either an explicit ref, or image/flavor/os for the solver to choose a tag.",
            )
        if image is not None:
            try:
                ImageRef.parse(image)
            except ValueError as exc:
                c.add((*path, "image"), f"{exc}.", 'Write a repository such as "nvidia/cuda".')
        if flavor is not None and flavor not in _FLAVORS:
            c.add(
                (*path, "flavor"),
                f"unknown flavor {show(flavor)}.",
                f"Use one of {', '.join(_FLAVORS)}.",
            )
        if os_name is not None and not _OS.fullmatch(os_name):
            c.add(
                (*path, "os"),
                f"{show(os_name)} is not an OS name.",
                'Write it as in image tags, e.g. "ubuntu22.04" or "debian12".',
            )
        return BaseSpec(ref=ref, image=image, flavor=flavor, os=os_name)

    # -- [python] --------------------------------------------------------------------
    def python(self, value: object) -> PythonSpec | None:
        c, path = self.check, ("python",)
        keys = (
            "requirements",
            "requirements-files",
            "index",
            "venv",
            "exclude-newer",
            "prerelease",
            "allow-unhashed",
            "pytorch-index",
            "interpreter",
            "interpreter-prerelease",
            "standalone",
            "sdists",
            "no-build",
            "only-build",
        )
        table = c.table(value, path, keys)
        if table is None:
            return None
        requirements: list[Requirement] = []
        inline = c.strings(table, path, "requirements")
        for i, text in inline or ():
            req = self.requirement((*path, "requirements", i), text)
            if req is not None:
                requirements.append(req)
        files = c.strings(table, path, "requirements-files") or []
        for i, name in files:
            where = (*path, "requirements-files", i)
            if self.valid(where, name, grammar.relative_file):
                requirements.extend(self.requirements_file(where, name, ()))
        if (
            not inline
            and not files
            and not any(p.key and "requirements" in p.key for p in c.problems)
        ):
            c.add(
                (*path, "requirements"),
                "is empty: there is nothing to install.",
                'List at least one requirement, e.g. requirements = ["numpy"], '
                "or remove the [python] table.",
            )
        indexes = self.indexes(table.get("index"), (*path, "index")) if "index" in table else ()
        venv = c.string(table, path, "venv") or DEFAULT_VENV
        if not self.valid(
            (*path, "venv"), venv, grammar.absolute_path, 'Write it like "/opt/venv".'
        ):
            venv = DEFAULT_VENV
        exclude_newer = self.timestamp(table, path, "exclude-newer")
        prerelease = PrereleasePolicy.IF_NECESSARY_OR_EXPLICIT
        if (policy := c.string(table, path, "prerelease")) is not None:
            try:
                prerelease = PrereleasePolicy(policy)
            except ValueError:
                c.add(
                    (*path, "prerelease"),
                    f"{show(policy)} is not a prerelease policy.",
                    f"Use one of {', '.join(p.value for p in PrereleasePolicy)}.",
                )
        unhashed = [
            (i, n)
            for i, n in c.strings(table, path, "allow-unhashed") or []
            if self.valid((*path, "allow-unhashed", i), n, grammar.project_name)
        ]
        pytorch_index = c.string(table, path, "pytorch-index")
        if pytorch_index is not None and not self.url(
            (*path, "pytorch-index"),
            pytorch_index,
            grammar.http_url,
            'Write the folder that holds the variant indexes, like "https://download.pytorch.org/whl".',
        ):
            pytorch_index = None
        interpreter = InterpreterPolicy.AUTO
        if (policy := c.string(table, path, "interpreter")) is not None:
            try:
                interpreter = InterpreterPolicy(policy)
            except ValueError:
                c.add(
                    (*path, "interpreter"),
                    f"{show(policy)} is not an interpreter policy.",
                    f"Use one of {', '.join(p.value for p in InterpreterPolicy)}.",
                )
        standalone = (
            self.standalone(table["standalone"], (*path, "standalone"))
            if "standalone" in table
            else None
        )
        if interpreter == InterpreterPolicy.STANDALONE and "standalone" not in table:
            c.add(
                (*path, "interpreter"),
                'is "standalone", but no [python.standalone] says where builds come from.',
                'Add [python.standalone] release = "20241016" (a python-build-standalone '
                "release; url = for a mirror).",
            )
        sdists, no_build, only_build = self.sdist_policy(table, path)
        return PythonSpec(
            requirements=tuple(requirements),
            requirements_files=tuple(name for _, name in files),
            indexes=indexes,
            venv=venv.rstrip("/") or "/",
            exclude_newer=exclude_newer,
            prerelease=prerelease,
            allow_unhashed=tuple(sorted({canonicalize_name(n) for _, n in unhashed})),
            pytorch_index=pytorch_index.rstrip("/") if pytorch_index else None,
            interpreter=interpreter,
            interpreter_prerelease=c.boolean(table, path, "interpreter-prerelease") or False,
            standalone=standalone,
            sdists=sdists,
            no_build=no_build,
            only_build=only_build,
        )

    def sdist_policy(
        self, table: Mapping[str, Any], path: KeyPath
    ) -> tuple[SdistPolicy, tuple[str, ...], tuple[str, ...]]:
        """``sdists``, ``no-build`` and ``only-build``: the policy and two lists of names."""
        c = self.check
        sdists = SdistPolicy.BUILD
        if (policy := c.string(table, path, "sdists")) is not None:
            try:
                sdists = SdistPolicy(policy)
            except ValueError:
                c.add(
                    (*path, "sdists"),
                    f"{show(policy)} is not an sdist policy.",
                    f"Use one of {', '.join(p.value for p in SdistPolicy)}.",
                )
        lists: dict[str, tuple[str, ...]] = {}
        for key in ("no-build", "only-build"):
            lists[key] = tuple(
                sorted(
                    {
                        canonicalize_name(n)
                        for i, n in c.strings(table, path, key) or []
                        if self.valid((*path, key, i), n, grammar.project_name)
                    }
                )
            )
        both = sorted(set(lists["no-build"]) & set(lists["only-build"]))
        if both:
            c.add(
                (*path, "only-build"),
                f"names {', '.join(both)}, which no-build also names.",
                "A package is either built from its sdist or never built: keep it in one list.",
            )
        return sdists, lists["no-build"], lists["only-build"]

    def standalone(self, value: object, path: KeyPath) -> StandaloneSpec | None:
        c = self.check
        table = c.table(value, path, ("release", "url"))
        if table is None:
            return None
        release = c.string(table, path, "release")
        if release is None:
            if "release" not in table:
                c.add(
                    (*path, "release"),
                    "is missing.",
                    'Name the python-build-standalone release, e.g. release = "20241016".',
                )
        elif not _RELEASE.fullmatch(release):
            c.add(
                (*path, "release"),
                f"{show(release)} is not a release tag.",
                'Write it as the project tags releases, e.g. "20241016".',
            )
            release = None
        url = c.string(table, path, "url")
        if url is not None and not self.url(
            (*path, "url"),
            url,
            grammar.http_url,
            "Give the folder that holds the releases (<url>/<release>/SHA256SUMS), e.g. "
            '"https://github.com/astral-sh/python-build-standalone/releases/download".',
        ):
            url = None
        if release is None:
            return None
        return StandaloneSpec(release=release, url=url.rstrip("/") if url else None)

    def url(self, path: KeyPath, url: str, grammar_of: Callable[[str], str], hint: str) -> bool:
        """Whether ``url`` is a URL of ``grammar_of`` that sends no credentials in clear."""
        try:
            grammar_of(url)
        except ValueError as exc:
            self.check.add(path, f"{str(exc).replace(url, _redact(url))}.", hint)
            return False
        if grammar.cleartext_credentials(url):
            self.check.add(
                path,
                f"{show(_redact(url))} sends credentials over plain http to another machine.",
                "Use the index's https:// URL (credentials go in clear only to a loopback "
                "host), and keep them out of the spec with REPROLOCK_INDEX_<NAME>_USERNAME "
                "and _PASSWORD.",
            )
            return False
        return True

    def requirement(self, path: KeyPath, text: str, where: str = "") -> Requirement | None:
        problem = self.requirement_problem(text)
        if problem is None:
            return Requirement(text)
        head, tail, hint = problem
        self.check.add(path, f"{head}{where}{tail}.", hint)
        return None

    @staticmethod
    def requirement_problem(text: str) -> tuple[str, str, str] | None:
        """What is wrong with the requirement ``text`` — the message before and after its
        place, and the hint — or None."""
        if not text.strip():
            return "empty requirement", "", "Remove it or name a package."
        try:
            Requirement(text)
        except InvalidRequirement as exc:
            detail = str(exc).splitlines()[0]
            return (
                f"invalid requirement {show(text)}",
                f": {detail}",
                'Write a PEP 508 requirement such as "torch==2.5.*".',
            )
        return None

    def requirements_file(
        self, path: KeyPath, name: str, chain: tuple[str, ...]
    ) -> list[Requirement]:
        if name in chain:
            self.check.add(
                path,
                f"requirements file {show(name)} includes itself ({' -> '.join((*chain, name))}).",
                "Remove the cycle.",
            )
            return []
        try:
            text = self.read_file(name)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            self.check.add(
                path,
                f"cannot read requirements file {show(name)}: {reason}.",
                "Paths are relative to the spec's folder.",
            )
            return []
        except ValueError as exc:
            self.check.add(path, f"requirements file refused: {str(exc).removesuffix('.')}.")
            return []
        out: list[Requirement] = []
        bad = 0
        for number, line in _logical_lines(text):
            where = f" ({show(name)[1:-1]}:{number})"
            problem: tuple[str, str, str] | None = None
            if line.startswith(("-r ", "--requirement ", "-r", "--requirement=")):
                included = re.sub(r"^(-r|--requirement)[ =]?", "", line).strip()
                target = posixpath.normpath(posixpath.join(posixpath.dirname(name), included))
                out.extend(self.requirements_file(path, target, (*chain, name)))
            elif line.startswith("-"):
                problem = (
                    f"unsupported option {show(line.split()[0])}",
                    "",
                    "Requirements files hold requirements only; declare indexes in "
                    "[[python.index]] and constraints in the spec.",
                )
            elif (problem := self.requirement_problem(line)) is None:
                out.append(Requirement(line))
            if problem is not None:
                bad += 1
                if bad <= ECHOED_LINES:
                    head, tail, hint = problem
                    self.check.add(path, f"{head}{where}{tail}.", hint)
        if bad > ECHOED_LINES:
            more = bad - ECHOED_LINES
            self.check.add(
                path,
                f"and {more} more line{'s' if more != 1 else ''} of {show(name)} that "
                f"{'are' if more != 1 else 'is'} not requirements: is this a requirements file?",
                "Name a file of PEP 508 requirements, one per line.",
            )
        return out

    def indexes(self, value: object, path: KeyPath) -> tuple[IndexSpec, ...]:
        c = self.check
        if not isinstance(value, list):
            c.wrong_type(path, value, "an array of tables", "Write each index as [[python.index]].")
            return ()
        out: list[IndexSpec] = []
        names: dict[str, int] = {}
        routed: dict[str, str] = {}
        defaults: list[str] = []
        for i, item in enumerate(value):
            ipath = (*path, i)
            table = c.table(item, ipath, ("name", "url", "packages", "default"))
            if table is None:
                continue
            name = c.string(table, ipath, "name")
            url = c.string(table, ipath, "url")
            if name is None and "name" not in table:
                c.add(ipath, "index has no name.", 'Add name = "..." to this [[python.index]].')
            if url is None and "url" not in table:
                c.add(
                    ipath,
                    "index has no url.",
                    'Add url = "https://..." (a PEP 503/691 simple index).',
                )
            if name is not None and not self.valid((*ipath, "name"), name, grammar.label_text):
                name = None
            elif name is not None:
                if name in names:
                    c.add(
                        (*ipath, "name"),
                        f"duplicate index name {show(name)} (also python.index[{names[name]}]).",
                        "Give each index a unique name.",
                    )
                else:
                    names[name] = i
            if url is not None and not self.url(
                (*ipath, "url"),
                url,
                grammar.index_url,
                'Use an http(s) or file URL such as "https://pypi.org/simple".',
            ):
                url = None
            packages: list[str] = []
            for j, pkg in c.strings(table, ipath, "packages") or ():
                if not self.valid((*ipath, "packages", j), pkg, grammar.project_name):
                    continue
                canonical = canonicalize_name(pkg)
                if canonical in routed and name is not None:
                    c.add(
                        (*ipath, "packages", j),
                        f"package {show(pkg)} is already routed to index "
                        f"{show(routed[canonical])}.",
                        "Route each package to one index.",
                    )
                routed.setdefault(canonical, name or "?")
                packages.append(canonical)
            default = c.boolean(table, ipath, "default") or False
            if default:
                defaults.append(name or "?")
                if len(defaults) > 1:
                    c.add(
                        (*ipath, "default"),
                        f"only one index can be the default (also {defaults[0]}).",
                        "Keep default = true on one index.",
                    )
            if name is not None and url is not None:
                out.append(
                    IndexSpec(
                        name=name,
                        url=url.rstrip("/"),
                        packages=tuple(sorted(set(packages))),
                        default=default,
                    )
                )
        return tuple(out)

    def timestamp(self, table: Mapping[str, Any], path: KeyPath, key: str) -> dt.datetime | None:
        if key not in table:
            return None
        value = table[key]
        hint = 'Write an RFC 3339 time with its offset, e.g. "2025-06-01T00:00:00Z".'
        if isinstance(value, str):
            try:
                value = dt.datetime.fromisoformat(value)
            except ValueError:
                self.check.add((*path, key), f"{show(value)} is not a date-time.", hint)
                return None
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            value = dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
        if not isinstance(value, dt.datetime):
            self.check.wrong_type((*path, key), value, "a date-time", hint)
            return None
        if value.tzinfo is None:
            self.check.add((*path, key), "has no time zone offset.", hint)
            return None
        return value.astimezone(dt.UTC)

    # -- [apt] ------------------------------------------------------------------------
    def apt(self, value: object) -> AptSpec | None:
        c, path = self.check, ("apt",)
        table = c.table(
            value, path, ("packages", "snapshot", "mirror", "allow-unsigned", "keyrings")
        )
        if table is None:
            return None
        items = c.strings(table, path, "packages") or []
        hint = 'Names are lowercase letters, digits and + - . such as "libgl1".'
        for i, item in items:
            name, equals, version = item.partition("=")
            if self.valid((*path, "packages", i), name, grammar.deb_name, hint) and equals:
                self.valid(
                    (*path, "packages", i),
                    version,
                    grammar.deb_version,
                    'Pin a version as apt writes it, e.g. "git=1:2.39.5-0+deb12u2".',
                )
        c.duplicates((*path, "packages"), items, "package")
        snapshot = c.string(table, path, "snapshot")
        if snapshot is not None and not self.valid(
            (*path, "snapshot"),
            snapshot,
            grammar.deb_snapshot,
            'Write it as the archives do: "20250520T000000Z".',
        ):
            snapshot = None
        mirror = c.string(table, path, "mirror")
        if mirror is not None and not self.url(
            (*path, "mirror"),
            mirror,
            grammar.index_url,
            'Use a URL such as "http://deb.debian.org/debian".',
        ):
            mirror = None
        keyrings = []
        for i, name in c.strings(table, path, "keyrings") or []:
            if self.project_file((*path, "keyrings", i), name):
                keyrings.append(name)
        return AptSpec(
            packages=tuple(sorted({item for _, item in items})),
            snapshot=snapshot,
            mirror=mirror,
            allow_unsigned=c.boolean(table, path, "allow-unsigned") or False,
            keyrings=tuple(keyrings),
        )

    def project_file(self, path: KeyPath, name: str) -> bool:
        """Whether ``name`` is a usable file relative to the spec (see `CheckFile`)."""
        if not self.valid(path, name, grammar.relative_file):
            return False
        if self.check_file is None:
            return True
        try:
            self.check_file(name)
        except OSError as exc:
            self.check.add(
                path,
                f"cannot read {show(name)}: {exc.strerror or exc}.",
                "Paths are relative to the spec's folder.",
            )
            return False
        except ValueError as exc:
            self.check.add(path, f"{str(exc).removesuffix('.')}.")
            return False
        return True

    # -- [image] ----------------------------------------------------------------------
    def image(self, value: object) -> ImageSpec | None:
        c, path = self.check, ("image",)
        keys = (
            "workdir",
            "user",
            "copy",
            "env",
            "labels",
            "cmd",
            "entrypoint",
            "expose",
            "healthcheck",
            "allow-data",
        )
        table = c.table(value, path, keys)
        if table is None:
            return None
        workdir = c.string(table, path, "workdir") or "/app"
        self.valid((*path, "workdir"), workdir, grammar.absolute_path, 'Write it like "/app".')
        user = c.string(table, path, "user") or "app"
        user_hint = (
            'Use a non-root user name (lowercase, e.g. "app") or a numeric uid other than 0.'
        )
        if self.valid((*path, "user"), user, grammar.user, user_hint) and (
            user == "root" or user.strip("0") == ""
        ):
            c.add((*path, "user"), f"{show(user)} cannot be the image user.", user_hint)
        env = c.string_table(table, path, "env") or {}
        for name, text in env.items():
            where = (*path, "env", name)
            self.valid(
                where,
                name,
                grammar.env_name,
                "Use letters, digits and underscores, not starting with a digit.",
            )
            self.valid(where, text, grammar.env_value, "Keep each value on one line.")
        labels = c.string_table(table, path, "labels") or {}
        for name, text in labels.items():
            where = (*path, "labels", name)
            self.valid(where, name, grammar.label_key)
            self.valid(where, text, grammar.env_value, "Keep each value on one line.")
        return ImageSpec(
            workdir=workdir,
            user=user,
            copy=self.copies(table, path),
            env=tuple(sorted(env.items())),
            labels=tuple(sorted(labels.items())),
            cmd=self.command(table, path, "cmd"),
            entrypoint=self.command(table, path, "entrypoint"),
            expose=self.ports(table, path),
            healthcheck=self.healthcheck(table.get("healthcheck"), (*path, "healthcheck"))
            if "healthcheck" in table
            else None,
            allow_data=self.allow_data(table, path),
        )

    def allow_data(self, table: Mapping[str, Any], path: KeyPath) -> tuple[str, ...]:
        """Data files baked into the image on purpose (`verify` warns about the others)."""
        hint = 'Write absolute path patterns: allow-data = ["/models/*.safetensors"].'
        items = self.check.strings(table, path, "allow-data", hint) or []
        return tuple(
            sorted(
                {
                    text
                    for i, text in items
                    if self.valid((*path, "allow-data", i), text, grammar.path_glob, hint)
                }
            )
        )

    def copies(self, table: Mapping[str, Any], path: KeyPath) -> tuple[tuple[str, str], ...]:
        value = table.get("copy", [])
        hint = 'Write copy = [["src", "/app/src"]]: pairs of a source and an absolute destination.'
        if not isinstance(value, list):
            self.check.wrong_type(
                (*path, "copy"), value, "an array of [source, destination] pairs", hint
            )
            return ()
        out: list[tuple[str, str]] = []
        for i, pair in enumerate(value):
            ok = (
                isinstance(pair, list)
                and len(pair) == 2
                and all(isinstance(p, str) and p.strip() for p in pair)
            )
            if not ok:
                self.check.add(
                    (*path, "copy", i),
                    f"expected a [source, destination] pair, got {show_value(pair)}.",
                    hint,
                )
                continue
            src, dst = pair
            if src.startswith("/") or ".." in src.split("/"):
                self.check.add(
                    (*path, "copy", i, 0),
                    f"source {show(src)} must be inside the build context.",
                    "Use a path relative to the spec's folder.",
                )
            elif not self.valid(
                (*path, "copy", i, 0),
                src,
                grammar.context_path,
                "Rename the file, or copy its folder.",
            ):
                pass
            elif not dst.startswith("/"):
                self.check.add(
                    (*path, "copy", i, 1), f"destination {show(dst)} is not absolute.", hint
                )
            elif self.valid((*path, "copy", i, 1), dst, grammar.absolute_path, hint):
                out.append((src, dst))
        return tuple(out)

    def command(self, table: Mapping[str, Any], path: KeyPath, key: str) -> tuple[str, ...] | None:
        if key not in table:
            return None
        items = self.check.strings(
            table, path, key, hint=f'Use the exec form: {key} = ["python", "-m", "app"].'
        )
        if items is None:
            return None
        if not items:
            self.check.add((*path, key), "must not be empty.", f"Remove {key} or name a program.")
            return None
        for i, item in items:
            self.valid((*path, key, i), item, grammar.argument)
        return tuple(item for _, item in items)

    def ports(self, table: Mapping[str, Any], path: KeyPath) -> tuple[str, ...]:
        value = table.get("expose", [])
        hint = 'Write ports as numbers or "port/protocol": expose = [8000, "9000/udp"].'
        if not isinstance(value, list):
            self.check.wrong_type((*path, "expose"), value, "an array of ports", hint)
            return ()
        out: set[str] = set()
        for i, item in enumerate(value):
            text = str(item) if isinstance(item, int) and not isinstance(item, bool) else item
            if not isinstance(text, str):
                self.check.add((*path, "expose", i), f"{show_value(item)} is not a port.", hint)
            elif self.valid((*path, "expose", i), text, grammar.port, hint):
                out.add(text)
        return tuple(sorted(out, key=lambda p: (int(p.split("/")[0]), p)))

    def healthcheck(self, value: object, path: KeyPath) -> Healthcheck | None:
        c = self.check
        table = c.table(value, path, ("cmd", "interval", "timeout", "start-period", "retries"))
        if table is None:
            return None
        cmd = self.command(table, path, "cmd")
        if cmd is None and "cmd" not in table:
            c.add(path, "healthcheck has no cmd.", 'Add cmd = ["curl", "-f", "http://localhost/"].')
        durations: dict[str, str | None] = {}
        for key in ("interval", "timeout", "start-period"):
            text = c.string(table, path, key)
            if text is not None and not self.valid(
                (*path, key), text, grammar.duration, 'Write it like "30s" or "1m30s".'
            ):
                text = None
            durations[key] = text
        retries = table.get("retries")
        if retries is not None and (
            not isinstance(retries, int) or isinstance(retries, bool) or not 1 <= retries < 1 << 31
        ):
            c.add(
                (*path, "retries"),
                f"{show_value(retries)} is not a positive integer.",
                "Write e.g. retries = 3.",
            )
            retries = None
        if cmd is None:
            return None
        return Healthcheck(
            cmd=cmd,
            interval=durations["interval"],
            timeout=durations["timeout"],
            start_period=durations["start-period"],
            retries=retries,
        )

    # -- [registry] ---------------------------------------------------------------------
    def registry(self, value: object) -> RegistrySpec | None:
        c, path = self.check, ("registry",)
        table = c.table(value, path, ("mirrors", "insecure"))
        if table is None:
            return None
        mirrors = c.string_table(table, path, "mirrors") or {}
        for host, mirror in mirrors.items():
            where = (*path, "mirrors", host)
            self.valid(
                where,
                host,
                grammar.registry_host,
                'Key mirrors by registry host, e.g. "docker.io".',
            )
            self.valid(
                where,
                mirror,
                grammar.registry_mirror,
                'Write a host such as "mirror.example.com" or a URL such as '
                '"https://mirror.example.com/v2-proxy".',
            )
        insecure = c.strings(table, path, "insecure") or []
        for i, host in insecure:
            self.valid((*path, "insecure", i), host, grammar.registry_host)
        return RegistrySpec(
            mirrors=tuple(sorted(mirrors.items())),
            insecure=tuple(sorted({host for _, host in insecure})),
        )


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Requirement lines without comments, continuations joined, with line numbers."""
    out: list[tuple[int, str]] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = re.sub(r"(^|\s)#.*$", "", raw).rstrip()
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = (pending + line).strip()
        pending = ""
        if line:
            out.append((start, line))
    if pending.strip():
        out.append((start, pending.strip()))
    return out


def _redact(url: str) -> str:
    """The URL with any password replaced, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return parts._replace(netloc=netloc).geturl()
