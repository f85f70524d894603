"""Bad specs: each gets one clear paragraph with file, line, key and fix; exit 2; no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Cli, Project


def _expect(cli: Cli, spec: Path, *lines: str) -> None:
    run = cli("check", "--spec", str(spec))
    assert run.code == 2, run
    assert "Traceback" not in run.err
    assert run.out == ""
    assert run.err == "error: " + "\n".join(lines) + "\n"


def test_malformed_toml_names_line_and_column(cli: Cli, project: Project) -> None:
    spec = project('[environment]\npython = "3.11\nname = "x"\n')
    _expect(
        cli,
        spec,
        f"{spec}: is not valid TOML:",
        f"  {spec}:2:15: invalid TOML: Illegal character '\\n'. Fix the syntax there: strings "
        "need quotes, tables are written [name], and each key = value stands on its own line.",
    )


def test_wrong_type(cli: Cli, project: Project) -> None:
    spec = project('[environment]\npython = "3.11"\nplatforms = "linux/amd64"\n')
    _expect(
        cli,
        spec,
        f"{spec}: the spec has 1 problem:",
        f"  {spec}:3: environment.platforms: expected an array of strings, got string "
        '"linux/amd64".',
    )


def test_python_as_number_suggests_quoting(cli: Cli, project: Project) -> None:
    spec = project("[environment]\npython = 3.10\n")
    _expect(
        cli,
        spec,
        f"{spec}: the spec has 1 problem:",
        f"  {spec}:2: environment.python: expected a string, got float 3.1. Quote the version: "
        'python = "3.1" (3.10 as a number is 3.1).',
    )


def test_unknown_key_did_you_mean(cli: Cli, project: Project) -> None:
    spec = project('[environment]\npython = "3.11"\n\n[gpu]\ndevice = ["A100"]\n')
    _expect(
        cli,
        spec,
        f"{spec}: the spec has 1 problem:",
        f'  {spec}:5: gpu.device: unknown key "device". Did you mean "devices"?',
    )


def test_unknown_section(cli: Cli, project: Project) -> None:
    spec = project('[enviroment]\npython = "3.11"\n')
    _expect(
        cli,
        spec,
        f"{spec}: the spec has 2 problems:",
        f"  {spec}: environment.python: is required: the target CPython version. Add python = "
        '"3.11" under [environment].',
        f'  {spec}:1: enviroment: unknown key "enviroment". Did you mean "environment"?',
    )


def test_underscore_key_suggests_kebab_case(cli: Cli, project: Project) -> None:
    spec = project(
        '[environment]\npython = "3.11"\n[python]\nrequirements = ["x"]\n'
        'exclude_newer = "2025-01-01T00:00:00Z"\n'
    )
    _expect(
        cli,
        spec,
        f"{spec}: the spec has 1 problem:",
        f'  {spec}:5: python.exclude_newer: unknown key "exclude_newer". Did you mean '
        '"exclude-newer"?',
    )


def test_invalid_version_specifier(cli: Cli, project: Project) -> None:
    spec = project('[environment]\npython = "3.11"\n[gpu]\ncuda = "=>12.1"\n')
    _expect(
        cli,
        spec,
        f"{spec}: the spec has 1 problem:",
        f'  {spec}:4: gpu.cuda: "=>12.1" is not a valid version specifier. Write a version or a '
        'PEP 440 specifier such as ">=12.1" or "12.4".',
    )


def test_invalid_requirement(cli: Cli, project: Project) -> None:
    spec = project(
        '[environment]\npython = "3.11"\n[python]\nrequirements = [\n  "torch=2.5",\n]\n'
    )
    run = cli("check", "--spec", str(spec))
    assert run.code == 2
    assert f'{spec}:5: python.requirements[0]: invalid requirement "torch=2.5": ' in run.err
    assert 'Write a PEP 508 requirement such as "torch==2.5.*".' in run.err


def test_unknown_gpu_name(cli: Cli, project: Project) -> None:
    spec = project('[environment]\npython = "3.11"\n[gpu]\ndevices = ["H100", "A1000"]\n')
    _expect(
        cli,
        spec,
        f"{spec}: the spec has 1 problem:",
        f'  {spec}:4: gpu.devices[1]: unknown GPU "A1000". Did you mean "A10" or "A100" or '
        '"T1000"? Name a GPU from `reprolock matrix gpus`, or give its compute capability, '
        'e.g. "8.0" or "sm_90".',
    )


def test_unknown_platform(cli: Cli, project: Project) -> None:
    spec = project('[environment]\npython = "3.11"\nplatforms = ["linux/amd64", "linux/mips"]\n')
    _expect(
        cli,
        spec,
        f"{spec}: the spec has 1 problem:",
        f'  {spec}:3: environment.platforms[1]: unknown platform "linux/mips"; use one of '
        "linux/amd64, linux/arm64, linux/ppc64le, linux/s390x, linux/386, linux/arm/v7.",
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            '"-535.104.05"',
            'driver version "-535.104.05" is negative; write it as a positive '
            'number like "535.104.05". Use the oldest driver in your fleet, as `nvidia-smi` '
            "prints it.",
        ),
        (
            '"latest"',
            '"latest" is not a driver version; write it like "535.104.05". Use the '
            "oldest driver in your fleet, as `nvidia-smi` prints it.",
        ),
        (
            "-535",
            "expected a string, got integer -535. A driver version cannot be negative. "
            'Write the version as nvidia-smi prints it: driver = "535.104.05".',
        ),
        (
            "535.104",
            "expected a string, got float 535.104. Write the version as nvidia-smi "
            'prints it: driver = "535.104.05".',
        ),
    ],
)
def test_bad_driver(cli: Cli, project: Project, value: str, message: str) -> None:
    spec = project(f'[environment]\npython = "3.11"\n[gpu]\ndriver = {value}\n')
    _expect(cli, spec, f"{spec}: the spec has 1 problem:", f"  {spec}:4: gpu.driver: {message}")


def test_empty_requirements(cli: Cli, project: Project) -> None:
    spec = project('[environment]\npython = "3.11"\n[python]\nrequirements = []\n')
    _expect(
        cli,
        spec,
        f"{spec}: the spec has 1 problem:",
        f"  {spec}:4: python.requirements: is empty: there is nothing to install. List at least "
        'one requirement, e.g. requirements = ["numpy"], or remove the [python] table.',
    )


def test_empty_requirement_string(cli: Cli, project: Project) -> None:
    spec = project('[environment]\npython = "3.11"\n[python]\nrequirements = ["numpy", " "]\n')
    _expect(
        cli,
        spec,
        f"{spec}: the spec has 1 problem:",
        f"  {spec}:4: python.requirements[1]: empty requirement. Remove it or name a package.",
    )


def test_duplicate_index_names(cli: Cli, project: Project) -> None:
    spec = project(
        '[environment]\npython = "3.11"\n[python]\nrequirements = ["torch"]\n\n'
        '[[python.index]]\nname = "torch"\nurl = "https://a.example/simple"\n\n'
        '[[python.index]]\nname = "torch"\nurl = "https://b.example/simple"\n'
    )
    _expect(
        cli,
        spec,
        f"{spec}: the spec has 1 problem:",
        f'  {spec}:11: python.index[1].name: duplicate index name "torch" (also '
        "python.index[0]). Give each index a unique name.",
    )


def test_every_problem_reported_at_once(cli: Cli, project: Project) -> None:
    spec = project(
        '[environment]\npython = "3.11"\nplatforms = ["linux/sparc"]\n'
        '[gpu]\ndevices = ["Z9"]\ndriver = "x"\ncompat = "loose"\n'
        '[image]\nuser = "root"\nexpose = [70000]\n'
    )
    run = cli("check", "--spec", str(spec))
    assert run.code == 2
    assert run.err.startswith(f"error: {spec}: the spec has 6 problems:\n")
    lines = [line.split(": ")[1] for line in run.err.splitlines()[1:]]
    assert lines == [
        "environment.platforms[0]",
        "gpu.devices[0]",
        "gpu.driver",
        "gpu.compat",
        "image.user",
        "image.expose[0]",
    ]


def test_pyproject_tool_table_has_line_numbers(cli: Cli, project: Project) -> None:
    spec = project(
        '[project]\nname = "x"\n\n[tool.reprolock.environment]\npython = "3.11"\n'
        'platforms = ["linux/amd64"]\nnme = "x"\n',
        name="pyproject.toml",
    )
    _expect(
        cli,
        spec,
        f"{spec}: the spec has 1 problem:",
        f'  {spec}:7: tool.reprolock.environment.nme: unknown key "nme". Did you mean "name"?',
    )


def test_requirements_file_problems(cli: Cli, project: Project, tmp_path: Path) -> None:
    (tmp_path / "requirements.in").write_text("numpy\n--index-url https://x\nbad==\n")
    spec = project(
        '[environment]\npython = "3.11"\n[python]\n'
        'requirements-files = ["requirements.in", "missing.in"]\n'
    )
    run = cli("check", "--spec", str(spec))
    assert run.code == 2
    assert (
        f'{spec}:4: python.requirements-files[0]: unsupported option "--index-url" '
        "(requirements.in:2)."
    ) in run.err
    assert (
        'python.requirements-files[0]: invalid requirement "bad==" (requirements.in:3)' in run.err
    )
    assert (
        f"{spec}:4: python.requirements-files[1]: cannot read requirements file "
        '"missing.in": No such file or directory.'
    ) in run.err


def test_missing_spec(cli: Cli, tmp_path: Path) -> None:
    run = cli("check", cwd=tmp_path)
    assert run.code == 2
    assert run.err == (
        f"error: no reprolock.toml in {tmp_path} (and no [tool.reprolock] in pyproject.toml).\n"
        "Create one with `reprolock init`, or point to it with --spec PATH.\n"
    )


def test_json_error_output(cli: Cli, project: Project) -> None:
    import json

    spec = project('[environment]\npython = "3.11"\n[gpu]\ndevices = ["A1000"]\n')
    run = cli("--format", "json", "check", "--spec", str(spec))
    assert run.code == 2
    error = json.loads(run.out)["error"]
    assert error["category"] == "input"
    assert error["exit-code"] == 2
    assert error["problems"][0]["key"] == "gpu.devices[0]"
    assert error["problems"][0]["line"] == 4


def test_usage_error_is_exit_2(cli: Cli) -> None:
    run = cli("check", "--no-such-option")
    assert run.code == 2
    assert "No such option '--no-such-option'" in run.err
