"""Property-based tests (hypothesis, derandomized in tests/conftest.py) of the project files'
parsers and grammars: any input gives a value or a `ReprolockError`, never another
exception; valid locks survive a write and a read; Dockerfile quoting round-trips."""

from __future__ import annotations

import contextlib
import string
import tomllib
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from hypothesis import given, settings
from hypothesis import strategies as st

from reprolock import api
from reprolock.emit.quoting import quoted
from reprolock.errors import ReprolockError
from reprolock.lock import (
    AptPackage,
    CudaStack,
    LockedBase,
    LockedImage,
    LockedTarget,
    Lockfile,
    PythonPackage,
    Wheel,
    dumps,
    from_dict,
    loads,
    to_dict,
)
from reprolock.model import Platform, grammar
from reprolock.model.paths import UnsafePath, join_under
from reprolock.spec import parse_spec
from tests.lockdata import example_lock

FAST = settings(max_examples=60)

# -- any input -----------------------------------------------------------------------
SPEC_KEYS = {
    "environment": ["name", "python", "platforms"],
    "gpu": ["devices", "driver", "cuda", "cudnn", "compat"],
    "base": ["ref", "image", "flavor", "os"],
    "python": ["requirements", "requirements-files", "index", "venv", "allow-unhashed"],
    "apt": ["packages", "snapshot", "mirror", "keyrings", "allow-unsigned"],
    "image": ["workdir", "user", "copy", "env", "labels", "cmd", "expose", "healthcheck"],
    "registry": ["mirrors", "insecure"],
}
KEYS = sorted({k for keys in SPEC_KEYS.values() for k in keys} | set(SPEC_KEYS))
# Characters that matter to the grammars: separators, quotes, $, controls, non-ASCII.
TRICKY = st.text(
    alphabet=st.sampled_from([*"ab09./-_:@$\"'\\ \n\r\t\x00\x7f*?=,~é", "\u2028", "\u202e"]),
    max_size=12,
)
SCALARS = (
    st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False)
    | TRICKY
    | st.sampled_from(["3.11", "/app", "app", "linux/amd64", "numpy", "8000", "30s", "sha256:"])
    | st.datetimes(timezones=st.just(UTC) | st.none())
)
VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | TRICKY, children, max_size=4)
    ),
    max_leaves=20,
)
DOCUMENTS = st.dictionaries(
    st.sampled_from(list(SPEC_KEYS)),
    st.dictionaries(st.sampled_from(KEYS) | TRICKY, VALUES, max_size=6) | VALUES,
    max_size=7,
)


def _parse(text: str) -> None:
    parse_spec(
        text,
        file="reprolock.toml",
        matrices=api.shipped_matrices(),
        read_file=lambda name: "numpy\n" + name,
    )


def _toml(document: dict[str, Any]) -> str | None:
    try:
        return tomli_w.dumps(document)
    except (TypeError, ValueError):  # not representable (e.g. a non-dict top level)
        return None


@FAST
@given(st.text(max_size=200))
def test_spec_parser_on_any_text(text: str) -> None:
    with contextlib.suppress(ReprolockError):
        _parse(text)


@FAST
@given(DOCUMENTS)
def test_spec_parser_on_any_toml(document: dict[str, Any]) -> None:
    text = _toml(document)
    if text is None:
        return
    with contextlib.suppress(ReprolockError):
        _parse(text)
    with contextlib.suppress(ReprolockError):  # the same as [tool.reprolock] of pyproject.toml
        parse_spec(
            _toml({"tool": {"reprolock": document}}) or "",
            file="pyproject.toml",
            matrices=api.shipped_matrices(),
            read_file=lambda name: "",
            pyproject=True,
        )


@FAST
@given(st.text(max_size=200))
def test_lock_reader_on_any_text(text: str) -> None:
    with contextlib.suppress(ReprolockError):
        loads(text, file="reprolock.lock")


LOCK = tomllib.loads(dumps(example_lock()))


def _paths(value: object, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out.extend(_paths(v, (*prefix, k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.extend(_paths(v, (*prefix, i)))
    return out


LOCK_PATHS = _paths(LOCK)[1:]


@FAST
@given(st.lists(st.tuples(st.sampled_from(LOCK_PATHS), VALUES), min_size=1, max_size=3))
def test_lock_reader_on_a_lock_with_any_values(changes: list[tuple[Any, object]]) -> None:
    data = tomllib.loads(dumps(example_lock()))
    for path, value in changes:
        node: Any = data
        try:
            for part in path[:-1]:
                node = node[part]
            node[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue
    try:
        decoded = from_dict(data, file="reprolock.lock")
    except ReprolockError:
        return
    # A lock whose meaning changed is named as edited.
    if to_dict(decoded.lock) != to_dict(example_lock()):
        assert not decoded.integrity.verified
        assert decoded.integrity.edited


# -- valid locks survive a write and a read -----------------------------------------------
NAMES = st.from_regex(r"[a-z][a-z0-9]{0,6}(-[a-z0-9]{1,4}){0,2}", fullmatch=True)
VERSIONS = st.from_regex(r"[0-9]{1,3}(\.[0-9]{1,3}){0,2}", fullmatch=True)
HEX = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)
DIGESTS = HEX.map(lambda h: "sha256:" + h)
LINE = st.text(
    alphabet=st.characters(exclude_categories=("Cc", "Cs", "Zl", "Zp", "Cf")), max_size=30
)
SEGMENT = st.from_regex(r"[A-Za-z0-9._@%+=,~-]{1,8}", fullmatch=True).filter(
    lambda s: s not in (".", "..")
)
ABSOLUTE = st.lists(SEGMENT, min_size=1, max_size=3).map(lambda p: "/" + "/".join(p))
RELATIVE = (
    st.lists(SEGMENT, min_size=1, max_size=3).map("/".join).filter(lambda p: not p.startswith("-"))
)
WHEELS = st.builds(
    lambda name, version, sha, size: Wheel(
        filename=f"{name.replace('-', '_')}-{version}-py3-none-any.whl",
        url=f"https://files.example/{name}/{version}.whl",
        sha256=sha,
        size=size,
    ),
    NAMES,
    VERSIONS,
    HEX | st.none(),
    st.integers(min_value=0, max_value=2**40) | st.none(),
)
PACKAGES = st.builds(
    lambda name, version, deps, wheels: PythonPackage(
        name=name,
        version=version,
        index="https://pypi.org/simple",
        dependencies=tuple(deps),
        wheels=tuple(wheels),
    ),
    NAMES,
    VERSIONS,
    st.lists(NAMES, max_size=3),
    st.lists(WHEELS, max_size=2),
)
DEB_NAMES = st.from_regex(r"[a-z0-9][a-z0-9+.-]{1,8}", fullmatch=True)
APT = st.builds(
    lambda name, version, sha, size: AptPackage(
        name=name,
        version=version,
        architecture="amd64",
        sha256=sha,
        size=size,
        url=f"http://deb.example/pool/{name}_{version}_amd64.deb",
    ),
    DEB_NAMES,
    st.from_regex(r"([0-9]:)?[0-9]{1,3}(\.[0-9]{1,3}){0,2}(-[0-9a-z.+~]{1,6})?", fullmatch=True),
    HEX,
    st.integers(min_value=0, max_value=2**40),
)
BASES = st.builds(
    lambda digest, ids, env, user: LockedBase(
        ref="python:3.11-slim",
        manifest_digest=digest,
        diff_ids=tuple(ids),
        env=tuple(sorted(env.items())),
        user=user,
    ),
    DIGESTS,
    st.lists(DIGESTS, max_size=3),
    st.dictionaries(st.from_regex(r"[A-Z_][A-Z0-9_]{0,8}", fullmatch=True), LINE, max_size=3),
    st.sampled_from([None, "root", "1000"]),
)
CUDA = st.builds(
    lambda toolkit, driver, arches: CudaStack(
        toolkit=toolkit, driver_min=driver, arches=tuple(arches), devices=(("H100", "sm_90"),)
    ),
    VERSIONS,
    VERSIONS,
    st.lists(st.sampled_from(["sm_80", "sm_90", "sm_90a", "sm_120"]), max_size=3),
)
TARGETS = st.builds(
    lambda tid, platform, python, cuda, base, apt, packages: LockedTarget(
        id=tid,
        platform=Platform.parse(platform),
        python=python,
        cuda=cuda,
        base=base,
        apt=tuple(apt),
        packages=tuple(packages),
    ),
    st.from_regex(r"[a-z0-9][a-z0-9_-]{0,20}", fullmatch=True),
    st.sampled_from(["linux/amd64", "linux/arm64", "linux/arm/v7"]),
    st.sampled_from(["3.11", "3.12.1"]),
    CUDA | st.none(),
    BASES | st.none(),
    st.lists(APT, max_size=2),
    st.lists(PACKAGES, max_size=3),
)
IMAGES = st.builds(
    lambda workdir, copies, env, labels, ports: LockedImage(
        workdir=workdir,
        user="app",
        venv="/opt/venv",
        copy=tuple(copies),
        env=tuple(sorted(env.items())),
        labels=tuple(sorted(labels.items())),
        cmd=("python", "-c", "print('$HOME \"x\"')"),
        expose=tuple(ports),
    ),
    ABSOLUTE,
    st.lists(st.tuples(RELATIVE, ABSOLUTE), max_size=2),
    st.dictionaries(st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True), LINE),
    st.dictionaries(st.from_regex(r"[a-z][a-z0-9./-]{0,12}", fullmatch=True), LINE),
    st.lists(st.integers(min_value=1, max_value=65535).map(str), max_size=2),
)
LOCKS = st.builds(
    lambda image, targets: Lockfile(
        lock_version="1.1",
        created_by="reprolock 0.0.0",
        inputs_hash="sha256:" + "a" * 64,
        matrices_version="2026.11.28",
        inputs=(("python", "sha256:" + "b" * 64),),
        image=image,
        targets=tuple(targets),
    ),
    IMAGES | st.none(),
    st.lists(TARGETS, max_size=2, unique_by=lambda t: t.id),
)


@FAST
@given(LOCKS)
def test_written_locks_read_back_the_same(lock: Lockfile) -> None:
    text = dumps(lock)
    decoded = loads(text, file="reprolock.lock")
    assert decoded.integrity.verified, decoded.integrity
    assert to_dict(decoded.lock) == to_dict(lock)
    assert dumps(decoded.lock) == text


# -- the grammars ---------------------------------------------------------------------------
GRAMMARS = [
    grammar.sha256_digest,
    grammar.sha256_hex,
    grammar.wheel_filename,
    grammar.sdist_filename,
    grammar.project_name,
    grammar.canonical_name,
    grammar.package_version,
    grammar.deb_name,
    grammar.deb_version,
    grammar.deb_architecture,
    grammar.target_id,
    grammar.python_version,
    grammar.dotted_version,
    grammar.http_url,
    grammar.index_url,
    grammar.registry_host,
    grammar.registry_mirror,
    grammar.absolute_path,
    grammar.context_path,
    grammar.relative_file,
    grammar.env_name,
    grammar.label_key,
    grammar.env_value,
    grammar.user,
    grammar.port,
    grammar.duration,
]
# Words the Dockerfile carries unquoted: nothing the lexer or a shell would act on.
UNQUOTED = [
    grammar.sha256_digest,
    grammar.wheel_filename,
    grammar.deb_name,
    grammar.deb_version,
    grammar.deb_architecture,
    grammar.target_id,
    grammar.python_version,
    grammar.dotted_version,
    grammar.absolute_path,
    grammar.context_path,
    grammar.env_name,
    grammar.label_key,
    grammar.user,
    grammar.port,
    grammar.duration,
]
WORDS = st.text(alphabet=string.printable + "é\u2028\x00\x7f", max_size=80) | st.sampled_from(
    ["sha256:" + "0" * 64, "a-1.0-py3-none-any.whl", "/app", "src/*.py", "py3.11-amd64", "80/tcp"]
)


@settings(max_examples=40)
@given(WORDS)
@pytest.mark.parametrize("check", GRAMMARS, ids=lambda g: g.__name__)
def test_a_grammar_returns_its_input_or_says_why(check: grammar.Grammar, text: str) -> None:
    try:
        assert check(text) == text
    except ValueError as exc:
        assert str(exc)
        assert "\n" not in str(exc)


@settings(max_examples=40)
@given(WORDS)
@pytest.mark.parametrize("check", UNQUOTED, ids=lambda g: g.__name__)
def test_unquoted_words_hold_nothing_a_dockerfile_acts_on(
    check: grammar.Grammar, text: str
) -> None:
    try:
        check(text)
    except ValueError:
        return
    assert not set(text) & set(" \t\r\n\x00\"'`$\\#;&|<>()")
    assert text.isascii() and text.isprintable()
    assert ".." not in text.split("/")


def _docker_double_quoted(text: str) -> str:
    """The value of one double-quoted word as BuildKit's lexer reads it (ENV/LABEL):
    ``\\`` escapes only ``"``, ``$`` and ``\\``; an unescaped ``$`` would expand."""
    assert text.startswith('"') and text.endswith('"') and len(text) >= 2
    out, i, body = [], 0, text[1:-1]
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body) and body[i + 1] in '"$\\':
            out.append(body[i + 1])
            i += 2
            continue
        assert c not in '"$', f"unescaped {c!r} in {text!r}"
        out.append(c)
        i += 1
    return "".join(out)


@FAST
@given(LINE | st.sampled_from(['$HOME "x" \\', "${PATH}:$X", "\\", '\\"', "a\\$b"]))
def test_env_values_round_trip_through_dockerfile_quoting(value: str) -> None:
    assert _docker_double_quoted(quoted(value, "ENV X")) == value


@FAST
@given(st.lists(WORDS, min_size=1, max_size=4))
def test_joined_paths_never_leave_their_root(names: list[str]) -> None:
    root = Path("/srv/context")
    try:
        path = join_under(root, *names)
    except UnsafePath:
        return
    assert path.is_relative_to(root) and ".." not in path.parts
