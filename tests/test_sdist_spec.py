"""``[python] sdists``, ``no-build`` and ``only-build``: parsed, validated with the key named."""

from __future__ import annotations

from tests.conftest import Cli, Project

SPEC = '[environment]\npython = "3.11"\n\n[python]\nrequirements = ["x"]\n'


def test_bad_sdist_policy_and_lists_name_their_keys(cli: Cli, project: Project) -> None:
    spec = project(
        SPEC + 'sdists = "nope"\nno-build = ["A_b", "c"]\nonly-build = ["a-b", "bad name"]\n'
    )
    run = cli("check", "--spec", str(spec))
    assert run.code == 2, run
    assert "Traceback" not in run.err
    assert f'{spec}:6: python.sdists: "nope" is not an sdist policy. Use one of build, refuse.' in (
        run.err
    )
    assert "python.only-build[1]:" in run.err
    assert "python.only-build: names a-b, which no-build also names." in run.err


def test_sdist_policy_decides_per_package() -> None:
    from reprolock.spec import PrereleasePolicy, PythonSpec, SdistPolicy

    def spec(**kw: object) -> PythonSpec:
        return PythonSpec(
            requirements=(),
            requirements_files=(),
            indexes=(),
            venv="/opt/venv",
            exclude_newer=None,
            prerelease=PrereleasePolicy.ALLOW,
            **kw,  # type: ignore[arg-type]
        )

    assert spec().may_build("a")
    assert not spec(no_build=("a",)).may_build("a")
    assert not spec(sdists=SdistPolicy.REFUSE).may_build("a")
    assert spec(sdists=SdistPolicy.REFUSE, only_build=("a",)).may_build("a")
    assert not spec(only_build=("a",)).may_build("b")
