"""The CI integrations run the commands the tests run: the GitHub Action's steps (action.yml)
executed by bash as a runner would, the pre-commit hook's entry, the GitLab job's script."""

from __future__ import annotations

import os
import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import yaml

from tests.ociregistry import Registry
from tests.pyindex import IndexServer
from tests.test_verify import _built, _project

ROOT = Path(__file__).parent.parent


def _substitute(text: str, inputs: dict[str, str]) -> str:
    """Fill ${{ inputs.X }} and ${{ github.action_path }} as the runner does."""

    def value(match: re.Match[str]) -> str:
        expr = match.group(1).strip()
        if expr == "github.action_path":
            return str(ROOT)
        if expr.startswith("inputs."):
            return inputs[expr.removeprefix("inputs.")]
        raise AssertionError(f"unexpected expression {expr}")

    return re.sub(r"\$\{\{(.*?)\}\}", value, text)


def _run_action(folder: Path, inputs: dict[str, str]) -> list[subprocess.CompletedProcess[str]]:
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    defaults = {k: str(v.get("default", "")) for k, v in action["inputs"].items()}
    filled = {**defaults, **inputs}
    results = []
    for step in action["runs"]["steps"]:
        if "run" not in step or "pip install" in step["run"]:
            continue  # setup-python and installing reprolock: done by the test environment
        condition = step.get("if")
        if condition and "inputs.image != ''" in condition and not filled["image"]:
            continue
        env = {k: _substitute(str(v), filled) for k, v in step.get("env", {}).items()}
        result = subprocess.run(
            ["bash", "-e", "-c", _substitute(step["run"], filled)],
            cwd=folder,
            env={**os.environ, **env, "GITHUB_OUTPUT": str(folder / "github-output")},
            capture_output=True,
            text=True,
            check=False,
        )
        results.append(result)
        if result.returncode != 0:
            break
    return results


def test_action_checks_the_lock_and_verifies_an_image(
    cli: Any, tmp_path: Path, index_server: IndexServer, registry: Registry
) -> None:
    folder = _project(cli, tmp_path, index_server, registry)
    clean = _built(tmp_path, "clean")
    results = _run_action(folder, {"image": clean, "junit": "verify.xml"})
    assert [r.returncode for r in results] == [0, 0], [r.stderr for r in results]
    suite = ET.parse(folder / "verify.xml").getroot()
    assert suite.iter("testcase") is not None
    assert list(suite.iter("failure")) == []
    assert "junit=verify.xml" in (folder / "github-output").read_text()
    drifted = _built(tmp_path, "drifted", user="root")
    results = _run_action(folder, {"image": drifted})
    assert results[-1].returncode == 1
    assert "::error" in results[-1].stdout
    failures = list(ET.parse(folder / "reprolock-verify.xml").getroot().iter("failure"))
    assert failures, "the JUnit report lists the drift"


def test_action_fails_on_a_stale_lock(
    cli: Any, tmp_path: Path, index_server: IndexServer, registry: Registry
) -> None:
    folder = _project(cli, tmp_path, index_server, registry)
    spec = folder / "reprolock.toml"
    spec.write_text(spec.read_text().replace('"alpha", "beta"', '"alpha"'))
    results = _run_action(folder, {})
    assert len(results) == 1 and results[0].returncode == 1
    assert "is stale" in results[0].stderr


def test_pre_commit_hook_entry(
    cli: Any, tmp_path: Path, index_server: IndexServer, registry: Registry
) -> None:
    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "reprolock-check" and hook["pass_filenames"] is False
    assert re.search(hook["files"], "sub/reprolock.toml")
    assert re.search(hook["files"], "reprolock.lock") and not re.search(hook["files"], "x.py")
    folder = _project(cli, tmp_path, index_server, registry)
    ok = subprocess.run(
        hook["entry"].split(), cwd=folder, capture_output=True, text=True, check=False
    )
    assert ok.returncode == 0, ok.stderr
    (folder / "reprolock.lock").unlink()
    missing = subprocess.run(
        hook["entry"].split(), cwd=folder, capture_output=True, text=True, check=False
    )
    assert missing.returncode == 1
    assert "--locked requires one" in missing.stderr


def test_gitlab_job_runs_the_same_commands() -> None:
    job = yaml.safe_load((ROOT / "examples" / "ci" / "gitlab-ci.yml").read_text())["reprolock"]
    assert job["script"][0] == "reprolock check --locked"
    assert job["script"][1].startswith('reprolock verify image "$IMAGE"')
    assert "--junit-file reprolock-verify.xml" in job["script"][1]
    assert job["artifacts"]["reports"]["junit"] == "reprolock-verify.xml"
    workflow = yaml.safe_load((ROOT / "examples" / "ci" / "github-workflow.yml").read_text())
    assert workflow["jobs"]["lock-and-image"]["steps"]
