"""Hostile lock files, through the real command line: a lock that arrives in a pull request
must not write outside the build context, inject Dockerfile instructions, take memory or
time, end in "internal error", or pass `check --locked` after a hand edit."""

from __future__ import annotations

import hashlib
import os
import shutil
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from tests.hostile.harness import Sandbox
from tests.lockdata import EXAMPLE, example_data, sealed

AMD64 = "py3.11-cu124-ubuntu22.04-amd64"
Mutate = Callable[[dict[str, Any]], None]


def project(sandbox: Sandbox, lock_text: str | bytes | None) -> Path:
    """The example spec (and its requirements file) with ``lock_text`` as its lock."""
    for name in ("reprolock.toml", "requirements.in"):
        shutil.copy(EXAMPLE.parent / name, sandbox.work / name)
    lock = sandbox.work / "reprolock.lock"
    if isinstance(lock_text, str):
        lock.write_text(lock_text, encoding="utf-8")
    elif lock_text is not None:
        lock.write_bytes(lock_text)
    return lock


def changed(mutate: Mutate) -> dict[str, Any]:
    data = example_data()
    mutate(data)
    return data


def _wheel(data: dict[str, Any]) -> dict[str, Any]:
    wheel: dict[str, Any] = data["targets"][0]["packages"][0]["wheels"][0]
    return wheel


def _set(path: str, value: object) -> Mutate:
    """A mutation that sets the value at ``path`` (``targets.0.apt.1.name``)."""
    parts: list[Any] = [int(p) if p.isdigit() else p for p in path.split(".")]

    def mutate(data: dict[str, Any]) -> None:
        node: Any = data
        for part in parts[:-1]:
            node = node[part]
        node[parts[-1]] = value

    return mutate


def _no_dockerfile_written(sandbox: Sandbox) -> None:
    assert not list(sandbox.work.glob("Dockerfile*"))
    assert not (sandbox.work / ".reprolock").exists()


# -- values the grammars refuse, even in a lock consistent with its own digests ----------------
GRAMMAR = [
    ("wheel-traversal", _set("targets.0.packages.0.wheels.0.filename", "../../outside/x.whl"),
     "is not a wheel file name"),
    ("wheel-absolute", _set("targets.0.packages.0.wheels.0.filename", "/tmp/x-1-py3-none-any.whl"),
     "is not a wheel file name"),
    ("target-dotdot", _set("targets.0.id", ".."), "is not a target id"),
    ("target-traversal", _set("targets.0.id", "../../outside"), "is not a target id"),
    ("apt-name-slash", _set("targets.0.apt.0.name", "../../outside/x"),
     "is not a Debian package name"),
    ("apt-version-slash", _set("targets.0.apt.0.version", "1.0/../../../x"),
     "is not a Debian version"),
    ("apt-arch-slash", _set("targets.0.apt.0.architecture", "amd64/../../x"),
     "is not a Debian architecture"),
    ("workdir-newline", _set("image.workdir", "/app\nRUN touch /pwned"), "image.workdir"),
    ("user-newline", _set("image.user", "app\nRUN id"), "image.user"),
    ("env-key-newline", _set("image.env", {"A\nRUN id": "1"}), "environment variable name"),
    ("label-key-newline", _set("image.labels", {"a\nRUN id": "1"}), "is not a label key"),
    ("label-value-newline", _set("image.labels", {"a": "1\nRUN id"}), "control character"),
    ("copy-newline", _set("image.copy", [["src\nRUN id", "/app/src"]]), "build context"),
    ("copy-traversal", _set("image.copy", [["../../outside", "/app/src"]]), "build context"),
    ("expose-newline", _set("image.expose", ["80\nRUN id"]), "is not a port"),
    ("healthcheck-newline", _set("image.healthcheck.interval", "30s\nRUN id"), "duration"),
    ("venv-space", _set("image.venv", "/opt/venv && curl evil"), "absolute path"),
    ("sha256-not-hex", _set("targets.0.packages.0.wheels.0.sha256", "Z" * 64),
     "is not a sha256 hex digest"),
    ("sha256-path", _set("targets.0.apt.0.sha256", "../../outside/evil"),
     "is not a sha256 hex digest"),
    ("base-ref-newline", _set("targets.0.base.ref", "python:3.11\nRUN id"),
     "is not an image reference"),
    ("digest-newline", _set("targets.0.base.manifest-digest", "sha256:" + "0" * 64 + "\nRUN id"),
     "is not a sha256 digest"),
    ("python-code", _set("targets.0.python", "3.11), __import__('os').system('id'"),
     "is not a Python version"),
    ("driver-newline", _set("targets.0.cuda.driver-min", "550\nLABEL x=y"),
     "is not a numeric version"),
    ("created-by-newline", _set("created-by", "reprolock\nRUN id"), "created-by"),
    ("index-option", _set("targets.0.packages.0.index", "https://x.example --trusted-host evil"),
     "is not an index URL"),
    ("url-newline", _set("targets.0.packages.0.wheels.0.url", "https://x.example/a\n--pre"),
     "is not an http(s) URL"),
    ("dependency-option", _set("targets.0.packages.0.dependencies", ["--index-url=x"]),
     "is not a Python project name"),
    ("duplicate-target", _set("targets.1.id", AMD64), "duplicate target id"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "mutate", "says"), GRAMMAR, ids=[c for c, _, _ in GRAMMAR])
def test_a_hostile_value_is_refused_everywhere(
    sandbox: Sandbox, case: str, mutate: Mutate, says: str
) -> None:
    project(sandbox, sealed(changed(mutate)))
    for args in (("check", "--locked"), ("dockerfile",)):
        outcome = sandbox.run(*args)
        sandbox.check(outcome, [2], says=["reprolock.lock", "the lock has", says])
    _no_dockerfile_written(sandbox)


@pytest.mark.parametrize(
    "case", ["wheel-traversal", "wheel-absolute", "target-traversal", "apt-name-slash"]
)
def test_lock_values_never_become_paths_outside_the_context(sandbox: Sandbox, case: str) -> None:
    [(_, mutate, says)] = [c for c in GRAMMAR if c[0] == case]
    project(sandbox, sealed(changed(mutate)))
    for args in (
        ("--offline", "fetch"),
        ("--offline", "fetch", "-o", "context"),
        ("export", "requirements", "--target", "py3.11-cu124-ubuntu22.04-arm64"),
    ):
        sandbox.check(sandbox.run(*args), [2], says=[says])
    _no_dockerfile_written(sandbox)
    assert not (sandbox.work / "context").exists()


def test_the_base_images_path_is_quoted_or_refused(sandbox: Sandbox) -> None:
    """The base image's PATH comes from its config: Docker would expand a ``$`` in it, and a
    newline would start an instruction."""
    project(sandbox, sealed(changed(_set("targets.0.base.env", {"PATH": '/bin:$HOME\\x"y'}))))
    assert sandbox.run("check", "--locked").code == 0
    sandbox.check(sandbox.run("dockerfile", "--target", AMD64), [0])
    text = (sandbox.work / f"Dockerfile.{AMD64}").read_text()
    assert 'PATH="/opt/venv/bin:/bin:\\$HOME\\\\x\\"y"' in text
    project(sandbox, sealed(changed(_set("targets.0.base.env", {"PATH": "/bin\nRUN id"}))))
    outcome = sandbox.run("dockerfile", "--target", AMD64)
    sandbox.check(outcome, [2], says=["ENV PATH", "control character"])


# -- whole documents -------------------------------------------------------------------------
def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _sparse(path: Path) -> None:
    with path.open("wb") as handle:
        handle.truncate(200 << 20)  # 200 MB that need not be read to be refused


DOCUMENTS: list[tuple[str, bytes | Callable[[Path], None], list[str]]] = [
    ("huge-lock-version", b'lock-version = "' + b"9" * 5000 + b'.0"\n',
     ["lock-version is missing or malformed"]),
    ("deep-nesting", b"a = " + b"[" * 10_000 + b"]" * 10_000 + b"\n", ["nested more than"]),
    ("deep-tables", b"a = " + b"{b = " * 10_000 + b"1" + b"}" * 10_000 + b"\n",
     ["nested more than"]),
    ("not-utf8", b'lock-version = "1.1"\n# caf\xe9\n', ["is not UTF-8", "offset 26"]),
    ("fifo", _fifo, ["FIFO", "not a regular file"]),
    ("200MB", _sparse, ["exceeds reprolock's limit", "REPROLOCK_LIMIT_DOCUMENT_BYTES"]),
]  # fmt: skip


@pytest.mark.parametrize(("case", "content", "says"), DOCUMENTS, ids=[c for c, _, _ in DOCUMENTS])
def test_hostile_lock_documents(
    sandbox: Sandbox,
    case: str,
    content: bytes | Callable[[Path], None],
    says: list[str],
) -> None:
    lock = project(sandbox, content if isinstance(content, bytes) else None)
    if not isinstance(content, bytes):
        content(lock)
    for args in (
        ("check", "--locked"),
        ("dockerfile",),
        ("--offline", "fetch"),
        ("export", "requirements"),
    ):
        outcome = sandbox.run(*args, seconds=20)
        sandbox.check(outcome, [2], says=says)
    _no_dockerfile_written(sandbox)


def test_lock_runs_past_an_unreadable_lock(sandbox: Sandbox) -> None:
    """`lock` replaces a hostile lock rather than failing on it (offline: it stops at the
    base image, which it may not pin)."""
    lock = project(sandbox, None)
    _fifo(lock)
    outcome = sandbox.run("--offline", "lock", seconds=20)
    sandbox.check(outcome, [4], says=["--offline"])


# -- hand edits --------------------------------------------------------------------------------
def _swap_url(data: dict[str, Any]) -> None:
    _wheel(data)["url"] = "https://evil.example/torch-2.5.1-py3-none-any.whl"


def _remove_package(data: dict[str, Any]) -> None:
    del data["targets"][0]["packages"][1]


def _change_sha(data: dict[str, Any]) -> None:
    _wheel(data)["sha256"] = "0" * 64


EDITS = [
    ("sha256-changed", _change_sha, f"targets[{AMD64}].packages"),
    ("package-removed", _remove_package, f"targets[{AMD64}].packages"),
    ("url-swapped", _swap_url, f"targets[{AMD64}].packages"),
    ("base-digest", _set("targets.0.base.manifest-digest", "sha256:" + "1" * 64),
     f"targets[{AMD64}].base"),
    ("apt-version", _set("targets.0.apt.0.version", "1:2.34.1-1ubuntu9"), f"targets[{AMD64}].apt"),
    ("image-user", _set("image.user", "root"), "[image]"),
    ("inputs-hash", _set("inputs-hash", "sha256:" + "2" * 64), "top-level fields"),
    ("target-removed", lambda d: d["targets"].pop(), "(removed)"),
    ("integrity-stripped", lambda d: d.pop("integrity"), "[integrity] (removed)"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "mutate", "section"), EDITS, ids=[c for c, _, _ in EDITS])
def test_hand_edits_are_named_and_fail_closed(
    sandbox: Sandbox, case: str, mutate: Mutate, section: str
) -> None:
    project(sandbox, tomli_w.dumps(changed(mutate)))
    outcome = sandbox.run("check", "--locked")
    sandbox.check(outcome, [1], says=[section, "edited by hand", "reprolock lock"])
    for args in (
        ("dockerfile",),
        ("--offline", "fetch"),
        ("export", "requirements", "--target", "py3.11-cu124-ubuntu22.04-arm64"),
    ):
        sandbox.check(sandbox.run(*args), [1], says=[section, "edited by hand"])
    _no_dockerfile_written(sandbox)


def test_lock_is_not_up_to_date_after_a_hand_edit(sandbox: Sandbox) -> None:
    lock = project(sandbox, example_data_text())
    outcome = sandbox.run("--offline", "lock")
    sandbox.check(outcome, [0], says=["is up to date"])
    lock.write_text(tomli_w.dumps(changed(_change_sha)))
    outcome = sandbox.run("--offline", "lock")
    # It resolves again (and offline cannot re-pin the edited target's base).
    sandbox.check(outcome, [4], says=["--offline"])
    assert "up to date" not in outcome.text


def test_an_old_lock_without_digests(sandbox: Sandbox) -> None:
    """A lock-version 1.0 lock (before digests): `check` cannot vouch for it; the emitters
    read it with a warning."""
    data = example_data()
    del data["integrity"]
    data["lock-version"] = "1.0"
    project(sandbox, tomli_w.dumps(data))
    outcome = sandbox.run("check", "--locked")
    sandbox.check(outcome, [1], says=["cannot be verified", "reprolock lock"])
    outcome = sandbox.run("dockerfile")
    sandbox.check(outcome, [0], says=["cannot be checked for hand edits"])


def example_data_text() -> str:
    return tomli_w.dumps(example_data())


def test_the_example_lock_is_accepted(sandbox: Sandbox) -> None:
    """The control case: the same commands on the untouched lock succeed."""
    project(sandbox, example_data_text())
    sandbox.check(sandbox.run("check", "--locked"), [0], says=["up to date"])
    sandbox.check(sandbox.run("dockerfile"), [0])
    lock = tomllib.loads((sandbox.work / "reprolock.lock").read_text())
    assert lock["lock-version"] == example_data()["lock-version"] and "integrity" in lock


def test_lock_resolves_a_hand_edited_lock_again(
    lock_cli: Callable[..., Any], tmp_path: Path, index_server: Any
) -> None:
    """Against a real loopback index: an edited lock is not "up to date"; `lock` resolves the
    edited target afresh (its pins are not kept, so the edit is not carried over) and writes
    the index's own hashes."""
    index = index_server.add_index("pypi", tmp_path / "pypi")
    index.wheel("alpha", "1.0")
    index.wheel("alpha", "2.0")
    (tmp_path / "reprolock.toml").write_text(
        '[environment]\npython = "3.11"\n\n[python]\nrequirements = ["alpha"]\n\n'
        f'[[python.index]]\nname = "pypi"\nurl = "{index_server.url("pypi")}"\ndefault = true\n'
    )
    assert lock_cli("lock").code == 0
    path = tmp_path / "reprolock.lock"
    good = path.read_text()
    data = tomllib.loads(good)
    [alpha] = data["targets"][0]["packages"]
    wheel = alpha["wheels"][0]
    # A downgrade by hand, with the older wheel's real hash and URL.
    old = (tmp_path / "pypi" / "alpha-1.0-py3-none-any.whl").read_bytes()
    alpha["version"] = "1.0"
    wheel["filename"] = "alpha-1.0-py3-none-any.whl"
    wheel["url"] = wheel["url"].replace("alpha-2.0", "alpha-1.0")
    wheel["sha256"] = hashlib.sha256(old).hexdigest()
    wheel["size"] = len(old)
    path.write_text(tomli_w.dumps(data))
    run = lock_cli("lock")
    assert run.code == 0, run.err
    assert "up to date" not in run.out
    assert "targets[py3.11-amd64].packages was edited by hand" in run.err
    assert path.read_text() == good
    assert lock_cli("check", "--locked").code == 0
