"""Issue 16's reproduced cases, as scenarios over the shipped matrices: kernels measured from
the wheels, coverage that fails closed, per-GPU driver floors, CPU builds on GPU targets."""

from __future__ import annotations

import pytest

from reprolock.errors import Unsatisfiable
from tests.test_stack_scenarios import Case, _plan, check_case

CASES = [
    # -- each GPU needs the driver of the first CUDA that knows its architecture ---------------
    Case(
        "blackwell-on-an-r535-fleet",
        ("torch",),
        'devices = ["RTX 5090"]\ndriver = "535.104.05"',
        error=(
            "the fleet's oldest driver 535.104.05 cannot run every GPU",
            "sm_120 (RTX 5090) needs driver >= 570.26",
            "Upgrade the fleet to driver >= 570.26",
        ),
    ),
    Case(
        "b200-on-an-r535-fleet",
        ("torch",),
        'devices = ["B200"]\ndriver = "535.104.05"',
        error=("sm_100 (B200) needs driver >= 570.26",),
    ),
    Case(
        # the fix never names a driver that cannot run the card (R470 < Ada's R520)
        "ada-on-r470-fix-runs-the-card",
        ("torch==2.5.1",),
        'devices = ["RTX 4090"]\ndriver = "470.82.01"',
        error=("Upgrade the fleet to driver >= 520.61.05",),
    ),
    Case(
        # CUDA 13 toolkits cannot compile for Volta: known without an arch row
        "cuda13-variant-cannot-carry-volta",
        ("torch==2.11.*",),
        'devices = ["V100"]\ndriver = "580.95.05"',
        routed={"torch": "https://download.pytorch.org/whl/cu130"},
        error=("has no kernels for sm_70",),
    ),
    Case(
        # torch 2.11's cu128 build dropped Volta (pytorch/pytorch#182250): V100 gets cu126
        "v100-torch-2.11-gets-cu126-not-cu128",
        ("torch==2.11.*",),
        'devices = ["V100"]\ndriver = "580.95.05"',
        chose=("torch 2.11.0 (cu126, CUDA 12.6)",),
        route="cu126",
        coverage=(("V100", "native sm_70"),),
    ),
    Case(
        # TF 2.18's PTX is ISA 8.3 (measured): JIT needs CUDA 12.3's driver, which R550 is
        "tensorflow-2.18-ptx-isa-8.3-on-r550",
        ("tensorflow[and-cuda]==2.18.*",),
        'devices = ["H100"]\ndriver = "550.54.15"',
        chose=("tensorflow 2.18.1 ([and-cuda], CUDA 12.5)",),
        coverage=(("H100", "PTX compute_90, JIT-compiled"),),
    ),
    Case(
        "jax-0.5.2-with-its-cuda12-plugin",
        ("jax[cuda12]==0.5.2",),
        'devices = ["H100"]',
        chose=("jax 0.5.2 (cuda12, CUDA 12.1)",),
    ),
    Case(
        # GH200 (linux/arm64): torch 2.6 shipped cu126 aarch64 builds
        "gh200-torch-2.6",
        ("torch==2.6.*",),
        'devices = ["GH200"]\ndriver = "560.35.03"',
        platform="linux/arm64",
        chose=("torch 2.6.0 (cu126, CUDA 12.6)",),
        route="cu126",
    ),
    Case(
        # TensorFlow's linux/arm64 wheels carry no CUDA kernels (measured): a CPU build there
        "gh200-tensorflow-is-a-cpu-build",
        ("tensorflow[and-cuda]==2.18.*",),
        'devices = ["GH200"]\ndriver = "560.35.03"',
        platform="linux/arm64",
        error=("CPU build on linux/arm64",),
    ),
    Case(
        "gh200-tensorflow-cpu-asked-by-name",
        ("tensorflow-cpu==2.18.*",),
        'devices = ["GH200"]\ndriver = "560.35.03"',
        platform="linux/arm64",
        chose=("tensorflow 2.18.1 (CPU build)",),
    ),
    # -- kernels measured from the PyPI wheels ------------------------------------------------
    Case(
        # torch 2.15.0's PyPI wheel carries SASS sm_75+ and no PTX (measured): a V100 fleet
        # must not get it.
        "v100-unpinned-torch-is-not-given-a-wheel-without-sm70",
        ("torch",),
        'devices = ["V100"]\ndriver = "580.95.05"',
        coverage=(("V100", "native sm_70"),),
    ),
    Case(
        "p100-unpinned-torch",
        ("torch",),
        'devices = ["P100"]\ndriver = "580.95.05"',
        coverage=(("P100", "native sm_60"),),
    ),
    Case(
        "pypi-wheel-without-sm70-is-refused-for-v100",
        ("torch==2.15.*",),
        'devices = ["V100"]\ndriver = "580.95.05"',
        error=("torch 2.15.0 (PyPI wheel, CUDA 13.2) has no kernels for sm_70 (V100)",),
    ),
    # -- CPU builds asked for by name are legal on a GPU target --------------------------------
    Case(
        "tensorflow-cpu-on-a-gpu-target",
        ("tensorflow-cpu==2.18.*",),
        'devices = ["H100"]',
        chose=("tensorflow 2.18.1 (CPU build)",),
        coverage=(("H100", "CPU build: GPU not used"),),
    ),
    Case(
        "jax-cpu-on-a-gpu-target",
        ("jax[cpu]==0.10.*",),
        'devices = ["H100"]',
        chose=("jax 0.10.2 (CPU build)",),
    ),
    Case(
        "torch-routed-to-the-cpu-index-on-a-gpu-target",
        ("torch==2.5.1",),
        'devices = ["H100"]',
        routed={"torch": "https://download.pytorch.org/whl/cpu"},
        chose=("torch 2.5.1 (CPU build)",),
    ),
    Case(
        # Not asked for by name: a GPU target never falls back to a CPU build silently.
        "unrouted-torch-never-falls-back-to-cpu",
        ("torch==2.5.1",),
        'devices = ["H100"]\ncuda = "12.9"',  # no 2.5.1 build has CUDA 12.9
        error=("torch 2.5 has no build that fits",),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_coverage_scenario(case: Case) -> None:
    check_case(case)


def test_unknown_coverage_fails_closed_with_the_ways_out() -> None:
    # TensorFlow 2.13's kernels are in no table and were not measured.
    case = Case("unknown", ("tensorflow==2.13.*",), 'devices = ["A100"]', base_cuda="11.8.0")
    with pytest.raises(Unsatisfiable) as raised:
        _plan(case)
    err = raised.value
    assert "kernels unknown for sm_80 (A100)" in err.message
    assert "reprolock lock --measure-kernels" in (err.hint or "")
    assert 'unknown-coverage = "warn"' in (err.hint or "")
    warned = _plan(
        Case(
            "warn",
            ("tensorflow==2.13.*",),
            'devices = ["A100"]\nunknown-coverage = "warn"',
            base_cuda="11.8.0",
        )
    )
    assert warned.choices[0].verdict.coverage == (("A100", "unknown"),)
    assert any("accepted: [gpu] unknown-coverage" in n for n in warned.notes)


def test_measured_kernels_stand_in_for_a_missing_row() -> None:
    """What `lock --measure-kernels` hands the solver: the wheel's measured kernels."""
    from packaging.requirements import Requirement

    from reprolock.compat.arches import ArchList
    from reprolock.model import CudaVersion
    from reprolock.spec.parse import parse_spec
    from reprolock.stack.judge import Fleet
    from reprolock.stack.plan import plan
    from reprolock.stack.requests import framework_requests
    from tests.test_stack_scenarios import MATRICES

    spec = parse_spec(
        '[environment]\npython = "3.11"\n[gpu]\ndevices = ["A100"]\n[python]\n'
        'requirements = ["tensorflow==2.13.1"]\n',
        file="reprolock.toml",
        matrices=MATRICES,
        read_file=lambda n: "",
    )
    fleet = Fleet(
        target="t",
        platform="linux/amd64",
        python="3.11",
        gpu=spec.gpu,
        base_cuda=CudaVersion.parse("11.8.0"),
    )
    requests = framework_requests([Requirement("tensorflow==2.13.1")], {})
    with pytest.raises(Unsatisfiable):
        plan(requests, fleet, MATRICES)
    measured = {("tensorflow", "2.13.1", "system-cuda"): ArchList.parse(["8.0"], measured="w")}
    fleet = Fleet(
        target="t",
        platform="linux/amd64",
        python="3.11",
        gpu=spec.gpu,
        base_cuda=CudaVersion.parse("11.8.0"),
        measured=measured,
    )
    result = plan(requests, fleet, MATRICES)
    assert result.choices[0].verdict.coverage == (("A100", "native sm_80"),)


def test_lock_measure_kernels_measures_the_unknown_candidates() -> None:
    """`lock --measure-kernels`: the best candidates of unknown coverage are measured (here a
    stand-in measurement) and the plan then judges them on their kernels."""
    from pathlib import Path

    from packaging.version import Version

    from reprolock.api.kernels import measure_unknown, wheel_of
    from reprolock.api.measure import Measurement
    from reprolock.api.network import NetOptions
    from reprolock.api.stack_layer import plan_target
    from reprolock.compat.fatbin import Kernels
    from reprolock.model import ComputeCapability, Platform, PythonVersion
    from reprolock.net.config import NetConfig
    from reprolock.resolve.python.target import PythonTarget
    from reprolock.spec.parse import parse_spec
    from tests.test_stack_scenarios import MATRICES

    spec = parse_spec(
        '[environment]\npython = "3.11"\n[gpu]\ndevices = ["A100"]\n[python]\n'
        'requirements = ["tensorflow==2.13.1"]\n'
        '[[python.index]]\nname = "mirror"\nurl = "https://mirror.example/simple"\n'
        "default = true\n",
        file="reprolock.toml",
        matrices=MATRICES,
        read_file=lambda n: "",
    )
    asked: list[tuple[str, str]] = []

    def fake(pin: str, **kwargs: object) -> Measurement:
        asked.append((pin, str(kwargs["index"])))
        return Measurement(
            filename="tensorflow-2.13.1-cp311-cp311-manylinux_2_17_x86_64.whl",
            url="https://mirror.example/files/tf.whl",
            sha256="ab" * 32,
            size=1,
            libraries={
                "tensorflow/libtensorflow_framework.so.2": Kernels(
                    sass=(ComputeCapability.parse("8.0"),), containers=3
                )
            },
            cuda=None,
        )

    target = PythonTarget(
        python=PythonVersion.parse("3.11.9"), platform=Platform.parse("linux/amd64")
    )
    net = NetOptions(config=NetConfig(), cache_dir=Path("/nonexistent"))
    measured = measure_unknown(spec, "t", target, None, MATRICES, net, measure_wheel=fake)
    assert asked == [("tensorflow==2.13.1", "https://mirror.example/simple")]
    arches = measured[("tensorflow", "2.13.1", "system-cuda")]
    assert arches.measured and arches.measured.endswith("sha256:" + "ab" * 32)
    plan = plan_target(spec, "t", target, None, MATRICES, base_choosable=True, measured=measured)
    assert plan.choices[0].verdict.coverage == (("A100", "native sm_80"),)
    build = plan.choices[0].verdict.build
    assert build.version == Version("2.13.1")
    assert wheel_of(build, spec, MATRICES) == (
        "tensorflow==2.13.1",
        "https://mirror.example/simple",
    )
