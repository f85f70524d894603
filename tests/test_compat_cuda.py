"""CUDA → driver questions answered from matrices/cuda.toml."""

from __future__ import annotations

import itertools
import json

import pytest

from reprolock import api
from reprolock.model import CudaVersion, DriverVersion
from tests.conftest import Cli

MATRICES = api.shipped_matrices()
TABLE = MATRICES.cuda


@pytest.mark.parametrize(
    ("cuda", "strict", "minor"),
    [
        ("12.4.1", "550.54.15", "525.60.13"),
        ("12.4", "550.54.14", "525.60.13"),  # no patch: its oldest release
        ("11.8.0", "520.61.05", "450.80.02"),
        ("13.0.0", "580.65.06", "580.65.06"),
        ("10.2", "440.33", "440.33"),  # no minor-version compatibility before CUDA 11
        # Update releases use their own row, not their minor's GA (AUDIT-2026-12 P1).
        ("12.8.1", "570.124.06", "525.60.13"),
        ("12.8", "570.26", "525.60.13"),
        ("13.0.2", "580.95.05", "580.65.06"),
        ("13.2.2", "595.71.05", "580.65.06"),
        ("13.3.0", "610.43.02", "580.65.06"),
        ("13.3.1", "610.43.02", "580.65.06"),
        # No Table 3 row: the driver NVIDIA ships with the release.
        ("12.3.2", "545.23.08", "525.60.13"),
        ("12.8.2", "570.211.01", "525.60.13"),
        ("9.0", "384.81", "384.81"),
    ],
)
def test_driver_needs(cuda: str, strict: str, minor: str) -> None:
    need = TABLE.need(CudaVersion.parse(cuda), "strict")
    assert (str(need.driver), need.exact) == (strict, True)
    assert str(TABLE.need(CudaVersion.parse(cuda), "minor").driver) == minor


@pytest.mark.parametrize(
    ("cuda", "message"),
    [
        ("13.9", r"CUDA 13\.9 is not in reprolock's table \(it knows 7\.0, .*, 13\.5\)"),
        ("6.5", r"CUDA 6\.5 is not in reprolock's table"),
        # Older than the first release of its minor (13.4.0 was a developer preview).
        (
            "13.4.0",
            r"CUDA 13\.4\.0 is not a release reprolock knows \(CUDA 13\.4: 13\.4\.1, 13\.4\.2\)",
        ),
    ],
)
def test_unknown_cuda_version(cuda: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TABLE.need(CudaVersion.parse(cuda), "strict")


def test_an_update_release_newer_than_the_table_gets_a_stated_lower_bound() -> None:
    need = TABLE.need(CudaVersion.parse("12.8.3"), "strict")
    assert (str(need.driver), need.exact) == ("570.211.01", False)
    assert need.reason == (
        "CUDA 12.8.3 is newer than the releases reprolock knows; it needs at least the driver "
        "of CUDA 12.8 Update 2, 570.211.01"
    )
    minor = TABLE.need(CudaVersion.parse("12.8.3"), "minor")
    assert (str(minor.driver), minor.exact) == ("525.60.13", True)


def test_a_release_without_a_confirmed_driver_gets_the_previous_figure_as_a_bound() -> None:
    for version in ("13.4", "13.4.1", "13.4.2", "13.4.3", "13.5", "13.5.0"):
        need = TABLE.need(CudaVersion.parse(version), "strict")
        assert (str(need.driver), need.exact) == ("610.43.02", False), version
    assert TABLE.need(CudaVersion.parse("13.5"), "strict").reason == (
        "NVIDIA's driver figure for CUDA 13.5 GA is not confirmed; it needs at least the "
        "driver of CUDA 13.3 Update 1, 610.43.02"
    )
    # runnable() answers strict only from confirmed figures.
    rows = {str(t.version): (s, m) for t, s, m in TABLE.runnable(DriverVersion.parse("620.1"))}
    assert rows["13.5.0"] == (False, True)
    assert rows["13.3.1"] == (True, True)


def test_drivers_never_go_down_from_one_release_to_the_next() -> None:
    """The lower-bound rule rests on this: a later release never needs an older driver."""
    known = [t for t in TABLE.toolkits if t.driver is not None]
    for older, newer in itertools.pairwise(known):
        assert older.driver is not None and newer.driver is not None
        assert older.driver <= newer.driver, (older.version, newer.version)


def test_every_cudart_belongs_to_its_release() -> None:
    for toolkit in TABLE.toolkits:
        if toolkit.cudart is not None:
            assert toolkit.cudart[:2] == toolkit.version.parts[:2], toolkit.version


@pytest.mark.parametrize(
    ("component", "release"),
    [
        ("12.8.90", "12.8.1"),  # nvidia-cuda-runtime-cu12==12.8.90 (torch 2.8-2.10)
        ("13.0.96", "13.0.2"),  # 13.0.3 ships the same cudart: the oldest release is meant
        ("12.3.101", "12.3.1"),
        ("12.4.127", "12.4.1"),
        ("11.8.89", "11.8.0"),
        ("13.2.86", "13.2.2"),
        ("13.3.29", "13.3.0"),
        ("13.4.92", "13.4.2"),
        ("13.5.37", "13.5.0"),  # jax[cuda13] 0.12.0.1
        ("12.8.93", None),  # exact match only
        ("12.8", None),
        ("latest", None),
    ],
)
def test_release_for_runtime(component: str, release: str | None) -> None:
    found = TABLE.release_for_runtime(component)
    assert (None if found is None else str(found.version)) == release


def test_need_for_runtime() -> None:
    need = TABLE.need_for_runtime("12.8.90", "strict")
    assert (str(need.driver), need.exact) == ("570.124.06", True)
    need = TABLE.need_for_runtime("12.8.93", "strict")
    assert (str(need.driver), need.exact) == ("570.211.01", False)
    assert need.reason.startswith(
        "cudart 12.8.93 is not a release reprolock knows; it needs at least the driver of the "
        "newest older release, CUDA 12.8 Update 2 (cudart 12.8.90)"
    )
    need = TABLE.need_for_runtime("12.6.10", "strict")  # older than any 12.6 cudart
    assert (str(need.driver), need.exact) == ("560.28.03", False)
    assert str(TABLE.need_for_runtime("12.8.93", "minor").driver) == "525.60.13"
    with pytest.raises(ValueError, match=r"CUDA 13\.9 is not in reprolock's table"):
        TABLE.need_for_runtime("13.9.1", "strict")
    with pytest.raises(ValueError, match='"13" is not a CUDA runtime version'):
        TABLE.need_for_runtime("13", "strict")


def test_runnable_by_a_driver() -> None:
    rows = {
        str(t.version): (strict, minor)
        for t, strict, minor in TABLE.runnable(DriverVersion.parse("535.104.05"))
    }
    assert rows["12.2.2"] == (True, True)
    assert rows["12.4.1"] == (False, True)  # minor-version compatibility only
    assert rows["13.0.0"] == (False, False)  # another major needs a newer driver
    assert rows["11.8.0"] == (True, True)


def test_matrix_commands(cli: Cli) -> None:
    run = cli("--format", "json", "matrix", "cuda", "12.4.1")
    data = json.loads(run.out)
    assert (data["strict"], data["cudart"], data["strict-exact"]) == ("550.54.15", "12.4.127", True)
    run = cli("matrix", "driver", "535.104.05")
    assert run.out.splitlines()[:3] == [
        "driver 535.104.05:",
        "  strict (every feature): up to CUDA 12.2.2",
        "  minor-version compat:   also CUDA 12.3.0 … 12.9.2",
    ]
    run = cli("matrix", "driver", "latest")
    assert run.code == 2
    assert run.err.startswith('error: "latest" is not a driver version')


def test_floor_is_the_maximum_over_base_and_wheels() -> None:
    from reprolock.lock import PythonPackage
    from reprolock.spec import CompatPolicy, GpuSpec
    from reprolock.stack.check import decide_stack

    packages = [
        PythonPackage(name="nvidia-cuda-runtime-cu12", version="12.1.105", index="i"),
        PythonPackage(name="nvidia-nccl-cu12", version="2.21.5", index="i"),
    ]
    gpu = GpuSpec(devices=(), driver=None, cuda=None, cudnn=None, compat=CompatPolicy.STRICT)
    stack = decide_stack("t", packages, {"CUDA_VERSION": "12.4.1"}, gpu, MATRICES)
    assert stack is not None
    assert (stack.toolkit, stack.driver_min, stack.driver_min_compat, stack.nccl) == (
        "12.4.1",
        "550.54.15",
        "525.60.13",
        "2.21.5",
    )
    assert decide_stack("t", [], {}, gpu, MATRICES) is None


def test_cuda_toolkit_metapackage_counts() -> None:
    from reprolock.lock import PythonPackage
    from reprolock.stack.check import components

    found = components([PythonPackage(name="cuda-toolkit", version="13.0.2", index="i")], {})
    assert [(str(c.cuda), c.source) for c in found] == [("13.0.2", "cuda-toolkit 13.0.2")]


def test_matrix_cuda_takes_a_runtime_version_and_states_bounds(cli: Cli) -> None:
    run = cli("matrix", "cuda", "12.8.90")
    assert run.code == 0, run.err
    assert run.out.splitlines()[:2] == [
        "cudart 12.8.90 is the CUDA Runtime of CUDA 12.8 Update 1 (12.8.1)",
        "CUDA 12.8.1: driver >= 570.124.06 (strict: CUDA 12.8 Update 1 was released with "
        "driver 570.124.06)",
    ]
    run = cli("matrix", "cuda", "13.5")
    assert run.out.splitlines()[0] == (
        "CUDA 13.5: driver >= 610.43.02 (strict, a lower bound: NVIDIA's driver figure for "
        "CUDA 13.5 GA is not confirmed; it needs at least the driver of CUDA 13.3 Update 1, "
        "610.43.02)"
    )
    run = cli("matrix", "cuda", "12.3.2")
    assert run.out.splitlines()[0] == (
        "CUDA 12.3.2: driver >= 545.23.08 (strict: CUDA 12.3 Update 2 ships with driver "
        "545.23.08 (the release notes' driver table has no row for it))"
    )
    run = cli("matrix", "cuda", "13.9")
    assert run.code == 2
    assert run.err.startswith("error: CUDA 13.9 is not in reprolock's table")


def test_matrix_driver_names_the_architectures_it_cannot_run(cli: Cli) -> None:
    run = cli("matrix", "driver", "535.104.05")
    lines = run.out.splitlines()
    start = lines.index("  GPU architectures it cannot run:")
    assert lines[start + 1 :] == [
        "    Kepler (early) (sm_30, sm_32): R470 is the last driver branch that runs it",
        "    Kepler (sm_35, sm_37): R470 is the last driver branch that runs it",
        "    Blackwell (B200/GB200) (sm_100): needs driver >= 570.26, that of CUDA 12.8, the "
        "first CUDA that supports it",
        "    Blackwell Ultra (B300/GB300) (sm_103): needs driver >= 575.51.03, that of CUDA "
        "12.9, the first CUDA that supports it",
        "    Blackwell (GB20x: RTX 50xx, RTX PRO Blackwell) (sm_120): needs driver >= 570.26, "
        "that of CUDA 12.8, the first CUDA that supports it",
        "    Blackwell (GB10 / DGX Spark) (sm_121): needs driver >= 575.51.03, that of CUDA "
        "12.9, the first CUDA that supports it",
    ]
    data = json.loads(cli("--format", "json", "matrix", "driver", "590.48.01").out)
    assert [a["sm"] for a in data["unsupported-architectures"]] == [
        ["sm_30", "sm_32"],
        ["sm_35", "sm_37"],
        ["sm_50", "sm_52", "sm_53"],
        ["sm_60", "sm_61", "sm_62"],
        ["sm_70"],
    ]
