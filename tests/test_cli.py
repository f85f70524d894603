from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from reprolock import __version__, api
from reprolock.lock import inputs_of, new_lockfile
from tests.conftest import MINIMAL, Cli, Project
from tests.lockdata import example_targets

ROOT = Path(__file__).parent.parent


def _lock_for(spec_path: Path) -> Path:
    """Write a lock whose inputs match the spec as it is now."""
    spec = api.load_spec(spec_path)
    lock = new_lockfile(inputs_of(spec, api.shipped_matrices().version), example_targets())
    path = api.default_lock_path(spec_path)
    api.write_lock(path, lock)
    return path


def test_version(cli: Cli) -> None:
    run = cli("--version")
    assert run.code == 0
    assert run.out == f"reprolock, version {__version__}\n"


def test_python_dash_m_works() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "reprolock", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0
    assert "Usage: reprolock" in proc.stdout


def test_init_writes_a_valid_starter_and_refuses_to_overwrite(cli: Cli, tmp_path: Path) -> None:
    run = cli("init", cwd=tmp_path)
    assert run.code == 0
    spec = tmp_path / "reprolock.toml"
    assert run.out == "wrote reprolock.toml; edit it, then run `reprolock check`.\n"
    assert "[gpu]" not in spec.read_text()
    assert cli("check", cwd=tmp_path).code == 0

    spec.write_text("# mine\n")
    run = cli("init", "--gpu", cwd=tmp_path)
    assert run.code == 2
    assert run.err == (
        "error: reprolock.toml: already exists; not overwritten.\n"
        "Edit it, or pass --force to replace it with a starter spec.\n"
    )
    assert spec.read_text() == "# mine\n"

    run = cli("init", "--gpu", "--force", cwd=tmp_path)
    assert run.code == 0
    assert "[gpu]" in spec.read_text()
    assert cli("check", cwd=tmp_path).code == 0


def test_init_into_a_folder(cli: Cli, tmp_path: Path) -> None:
    run = cli("init", str(tmp_path))
    assert run.code == 0
    assert (tmp_path / "reprolock.toml").exists()


def test_check_without_lock(cli: Cli, project: Project, tmp_path: Path) -> None:
    (tmp_path / "reprolock.toml").write_text(MINIMAL)
    run = cli("check", cwd=tmp_path)
    assert run.code == 0
    assert run.out == (
        'reprolock.toml: valid: environment "default"; Python 3.11; linux/amd64; CPU only.\n'
        "reprolock.lock: no lock yet.\n"
    )
    run = cli("check", "--locked", cwd=tmp_path)
    assert run.code == 1
    assert run.err == (
        "error: reprolock.lock: no lock file, but --locked requires one.\n"
        "Create it with `reprolock lock` and commit it.\n"
    )


def test_check_detects_a_spec_edited_after_locking(cli: Cli, tmp_path: Path) -> None:
    spec = tmp_path / "reprolock.toml"
    spec.write_text(MINIMAL)
    _lock_for(spec)
    run = cli("check", cwd=tmp_path)
    assert run.code == 0, run
    assert "reprolock.lock: up to date (2 targets).\nreprolock.lock: driver floor " in run.out

    spec.write_text(MINIMAL.replace('["numpy"]', '["numpy", "pandas"]'))
    run = cli("check", cwd=tmp_path)
    assert run.code == 1
    assert run.err == (
        "error: reprolock.lock: is stale; it no longer matches reprolock.toml:\n"
        "  - [python] changed since the lock was written: Python requirements, requirements "
        "files, indexes or resolution options changed.\n"
        "Run `reprolock lock` to update it, then commit both files.\n"
    )


def test_comments_and_order_do_not_make_a_lock_stale(cli: Cli, tmp_path: Path) -> None:
    spec = tmp_path / "reprolock.toml"
    spec.write_text('[python]\nrequirements = ["b", "a"]\n[environment]\npython = "3.11"\n')
    _lock_for(spec)
    spec.write_text(
        '# a comment\n[environment]\npython = "3.11"\n\n[python]\n'
        'requirements = ["a", "b"]  # reordered\n'
    )
    assert cli("check", cwd=tmp_path).code == 0


def test_check_sees_requirements_file_edits(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "requirements.in").write_text("numpy\n")
    spec = tmp_path / "reprolock.toml"
    spec.write_text(
        '[environment]\npython = "3.11"\n[python]\nrequirements-files = ["requirements.in"]\n'
    )
    _lock_for(spec)
    (tmp_path / "requirements.in").write_text("numpy\nscipy\n")
    run = cli("check", cwd=tmp_path)
    assert run.code == 1
    assert "[python] changed" in run.err


def test_check_json(cli: Cli, tmp_path: Path) -> None:
    spec = tmp_path / "reprolock.toml"
    spec.write_text(MINIMAL)
    _lock_for(spec)
    run = cli("--format", "json", "check", cwd=tmp_path)
    assert run.code == 0
    assert json.loads(run.out) == {
        "spec": "reprolock.toml",
        "lock": "reprolock.lock",
        "lock-exists": True,
        "fresh": True,
        "reasons": [],
    }
    spec.write_text(MINIMAL.replace("3.11", "3.12"))
    run = cli("--format", "json", "check", cwd=tmp_path)
    assert run.code == 1
    assert json.loads(run.out)["error"]["category"] == "check-failed"


def test_corrupt_lock_is_bad_input(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "reprolock.toml").write_text(MINIMAL)
    (tmp_path / "reprolock.lock").write_text('lock-version = "1.0"\ninputs-hash = 3\n')
    run = cli("check", cwd=tmp_path)
    assert run.code == 2
    assert run.err.startswith("error: reprolock.lock: the lock has 2 problems:\n")
    assert "  reprolock.lock:2: inputs-hash: expected a string, got integer 3." in run.err


def test_pyproject_spec_is_found(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "demo"\n[tool.reprolock.environment]\npython = "3.12"\n'
    )
    run = cli("check", cwd=tmp_path)
    assert run.code == 0
    assert run.out.startswith('pyproject.toml: valid: environment "default"; Python 3.12')


def test_debug_shows_a_traceback_only_when_asked(tmp_path: Path) -> None:
    (tmp_path / "reprolock.toml").write_text("[environment]\npython = 3\n")
    cmd = [sys.executable, "-m", "reprolock", "check"]
    env_path = {"PYTHONPATH": str(ROOT)}
    import os

    plain = subprocess.run(
        cmd,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **env_path},
    )
    assert plain.returncode == 2
    assert "Traceback" not in plain.stderr
    debug = subprocess.run(
        [*cmd[:3], "--debug", "check"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **env_path},
    )
    assert debug.returncode == 2
    assert "Traceback" in debug.stderr


def test_matrix_gpus(cli: Cli) -> None:
    run = cli("--format", "json", "matrix", "gpus")
    rows = {row["name"]: row for row in json.loads(run.out)}
    assert rows["NVIDIA H100"]["sm"] == "sm_90"
    assert rows["NVIDIA H100"]["sources"] == ["G1", "G3", "G5"]
