"""The stack solver over the shipped matrices: one row per scenario, with the expected
decision (framework build, route, coverage) or the expected explanation."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from reprolock import api
from reprolock.errors import Unsatisfiable
from reprolock.model import CudaVersion
from reprolock.spec.parse import parse_spec
from reprolock.stack.judge import Fleet
from reprolock.stack.plan import StackPlan, plan
from reprolock.stack.requests import framework_requests

MATRICES = api.shipped_matrices()


@dataclass(frozen=True)
class Case:
    id: str
    requirements: tuple[str, ...]
    gpu: str | None = None  # the [gpu] table body; None: a CPU-only target
    python: str = "3.11"
    platform: str = "linux/amd64"
    base_cuda: str | None = None
    choosable: bool = False  # [base] names the nvidia/cuda family
    routed: dict[str, str] = field(default_factory=dict)
    # Either the chosen builds (label substrings) ...
    chose: tuple[str, ...] = ()
    route: str | None = None  # the variant index torch is routed to
    coverage: tuple[tuple[str, str], ...] = ()
    # ... or the error's text must contain all of these.
    error: tuple[str, ...] = ()


def _plan(case: Case) -> StackPlan:
    gpu = f"[gpu]\n{case.gpu}\n" if case.gpu is not None else ""
    reqs = ", ".join(f'"{r}"' for r in case.requirements)
    text = (
        f'[environment]\npython = "{case.python}"\nplatforms = ["{case.platform}"]\n'
        f"{gpu}[python]\nrequirements = [{reqs}]\n"
    )
    spec = parse_spec(text, file="reprolock.toml", matrices=MATRICES, read_file=lambda n: "")
    assert spec.python is not None
    fleet = Fleet(
        target="t",
        platform=case.platform,
        python=case.python,
        gpu=spec.gpu,
        base_cuda=CudaVersion.parse(case.base_cuda) if case.base_cuda else None,
        base_choosable=case.choosable,
    )
    return plan(framework_requests(spec.python.requirements, case.routed), fleet, MATRICES)


CASES = [
    # -- torch: the build variant ------------------------------------------------------------
    Case(
        "pypi-default-fits",
        ("torch==2.5.1",),
        'devices = ["A100"]\ndriver = "550.54.15"',
        chose=("torch 2.5.1 (PyPI wheel, CUDA 12.4)",),
        coverage=(("A100", "native sm_80"),),
    ),
    Case(
        "strict-driver-535-routes-to-an-older-cuda-variant",
        ("torch",),
        'devices = ["A100"]\ndriver = "535.104.05"\ncompat = "strict"',
        chose=("torch 2.7.1 (cu118, CUDA 11.8)",),
        route="cu118",
    ),
    Case(
        "minor-compat-driver-535-runs-any-12x",
        ("torch<2.11",),
        'devices = ["A100"]\ndriver = "535.104.05"',
        chose=("torch 2.10.0 (PyPI wheel, CUDA 12.8)",),
    ),
    Case(
        "cuda-constraint-picks-the-cu118-variant",
        ("torch==2.5.*",),
        'devices = ["H100"]\ncuda = "<12"',
        chose=("torch 2.5.1 (cu118, CUDA 11.8)",),
        route="cu118",
    ),
    Case(
        "pascal-gpu-leaves-the-pypi-cu128-build-for-cu126",
        ("torch==2.8.*",),
        'devices = ["P100"]',
        chose=("torch 2.8.0 (cu126, CUDA 12.6)",),
        route="cu126",
        coverage=(("P100", "native sm_60"),),
    ),
    Case(
        "same-major-newer-minor-runs-native",
        ("torch==2.9.*",),
        'devices = ["GTX 1080 Ti"]',
        chose=("torch 2.9.1 (cu126, CUDA 12.6)",),
        route="cu126",
        coverage=(("GTX 1080 Ti", "native sm_60"),),
    ),
    Case(
        "blackwell-on-the-cu128-pypi-wheel",
        ("torch==2.9.*",),
        'devices = ["RTX 5090"]\ndriver = "570.26"',
        chose=("torch 2.9.1 (PyPI wheel, CUDA 12.8)",),
        coverage=(("RTX 5090", "native sm_120"),),
    ),
    Case(
        # A GPU newer than every kernel runs by JIT-compiling PTX; torch's release builds
        # carry none (measured), TensorFlow's carry compute_90.
        "future-gpu-runs-only-by-ptx-jit",
        ("tensorflow[and-cuda]==2.21.*",),
        'devices = ["13.0"]\ndriver = "580.65.06"',
        chose=("tensorflow 2.21.0 ([and-cuda], CUDA 12.5)",),
        coverage=(("13.0", "PTX compute_90, JIT-compiled"),),
    ),
    Case(
        "user-routed-index-is-kept",
        ("torch==2.5.*",),
        'devices = ["A100"]',
        routed={"torch": "https://mirror.example/whl/cu121"},
        chose=("torch 2.5.1 (cu121, CUDA 12.1)",),
    ),
    # -- torch: CPU-only targets -----------------------------------------------------------
    Case(
        "cpu-target-gets-the-cpu-build",
        ("torch==2.5.1",),
        chose=("torch 2.5.1 (CPU build)",),
        route="cpu",
    ),
    Case(
        "cpu-target-arm64-pypi-wheel-is-cpu-only-before-2.11",
        ("torch==2.5.1",),
        platform="linux/arm64",
        chose=("torch 2.5.1 (PyPI wheel)",),
    ),
    Case(
        "cpu-target-arm64-from-2.11-routes-to-cpu",
        ("torch==2.12.*",),
        platform="linux/arm64",
        chose=("torch 2.12.1 (CPU build)",),
        route="cpu",
    ),
    # -- torch: unsatisfiable ----------------------------------------------------------------
    Case(
        "gpu-arch-not-covered",
        ("torch==2.5.*",),
        'devices = ["RTX 5090"]\ndriver = "570.26"',
        error=(
            "torch 2.5 has no build that fits",
            "has no kernels for sm_120 (RTX 5090)",
            "torch>=2.7 with cu128 fits and needs driver >= 525.60.13 (>= 570.26",
        ),
    ),
    Case(
        "driver-too-old-for-every-variant",
        ("torch==2.5.*",),
        'devices = ["T4"]\ndriver = "418.39"',  # R418 runs a T4 (Turing: R410), not CUDA 11
        error=(
            "which needs driver >= 450.80.02 (minor policy); the fleet's oldest is 418.39",
            "upgrade the fleet to driver >= 450.80.02 for torch 2.5.1 (cu118, CUDA 11.8)",
        ),
    ),
    Case(
        "cuda-constraint-excludes-the-requested-version",
        ("torch==2.5.*",),
        'devices = ["A100"]\ncuda = ">=12.6"',
        error=("uses CUDA 12.4, outside gpu.cuda >=12.6", "torch>=2.6 with cu126 fits"),
    ),
    Case(
        "python-the-framework-does-not-ship-for",
        ("torch==2.3.*",),
        'devices = ["A100"]',
        python="3.13",
        error=("has no wheels for Python 3.13 (it ships 3.8-3.12)", "torch>=2.5 with the PyPI"),
    ),
    Case(
        "cudnn-constraint-excludes-cudnn-9",
        ("torch==2.5.*",),
        'devices = ["A100"]\ncudnn = "8.*"',
        error=("uses cuDNN 9.1.0.70, outside gpu.cudnn ==8.*", "torch==2.3.1 with"),
    ),
    Case(
        "ptx-jit-needs-the-newer-driver-under-minor-compat",
        ("torch==2.10.*",),
        'devices = ["13.0"]\ndriver = "535.104.05"',
        error=("has no kernels for sm_130", "needs driver >= 580.65.06"),
    ),
    # -- TensorFlow ------------------------------------------------------------------------------
    Case(
        "tensorflow-and-cuda-wheels",
        ("tensorflow[and-cuda]==2.18.*",),
        'devices = ["A100"]',
        chose=("tensorflow 2.18.1 ([and-cuda], CUDA 12.5)",),
    ),
    Case(
        "tensorflow-needs-system-cuda-and-the-base-has-none",
        ("tensorflow==2.13.*",),
        'devices = ["A100"]',
        error=("loads CUDA 11.8 and cuDNN 8.6 from the system, and the base image has none",),
    ),
    Case(
        "tensorflow-system-cuda-from-the-base",
        ("tensorflow==2.13.*",),
        # TF 2.13's kernels are in no table: accepted knowingly (issue 16's fail-closed rule)
        'devices = ["A100"]\nunknown-coverage = "warn"',
        base_cuda="11.8.0",
        chose=("tensorflow 2.13.1 (system CUDA, CUDA 11.8)",),
    ),
    Case(
        "tensorflow-base-cuda-of-another-major",
        ("tensorflow==2.13.*",),
        'devices = ["A100"]',
        base_cuda="12.4.1",
        error=("needs CUDA 11.x >= 11.8 in the base image, which has 12.4.1",),
    ),
    Case(
        "tensorflow-on-a-cpu-target",
        ("tensorflow==2.18.*",),
        chose=("tensorflow 2.18.1 (system CUDA)",),
    ),
    Case(
        "tensorflow-and-pytorch-exact-pins-clash",
        ("torch==2.5.1", "tensorflow[and-cuda]==2.15.*"),
        'devices = ["A100"]\nunknown-coverage = "warn"',
        error=(
            "torch 2.5.1 (PyPI wheel, CUDA 12.4) and tensorflow 2.15.1 ([and-cuda], CUDA 12.2) "
            "require NVIDIA wheels no version satisfies for both",
            "nvidia-cublas-cu12 ==12.4.5.8 vs ==12.2.5.6",
        ),
    ),
    Case(
        # Same cuDNN major, but the wheels' exact pins cannot co-install (issue 16): the fix
        # offered is a pair checked against both builds' METADATA.
        "tensorflow-and-pytorch-same-cudnn-major-still-clash",
        ("torch==2.5.1", "tensorflow[and-cuda]>=2.16"),
        'devices = ["A100"]',
        error=(
            "tensorflow 2.21.0 ([and-cuda], CUDA 12.5) require NVIDIA wheels no version "
            "satisfies for both",
            "torch==2.10.0 (PyPI wheel, CUDA 12.8) with tensorflow==2.20.0",
        ),
    ),
    # -- JAX -------------------------------------------------------------------------------------
    Case(
        "jax-cuda12-plugin",
        ("jax[cuda12]==0.10.*",),
        'devices = ["H100"]\ndriver = "525.60.13"',
        chose=("jax 0.10.2 (cuda12, CUDA 12.1)",),
        coverage=(("H100", "supported (>= 5.2)"),),
    ),
    Case(
        "jax-cuda13-needs-580-and-turing",
        ("jax[cuda13]",),
        'devices = ["V100"]\ndriver = "550.54.15"',
        error=("needs compute capability >= 7.5; sm_70 (V100) is 7.0", "jax[cuda12] fits"),
    ),
    Case(
        "jax-without-a-cuda-plugin-on-a-gpu-target",
        ("jax==0.10.*",),
        'devices = ["H100"]',
        error=("has no CUDA plugin (runs on CPU only); ask for jax[cuda12] or jax[cuda13]",),
    ),
    Case(
        "jax-cuda13-plugin-missing-for-old-releases",
        ("jax[cuda13]==0.7.0",),
        'devices = ["H100"]\ndriver = "580.65.06"',
        error=("has no jax-cuda13-plugin release on PyPI", "jax>=0.7 with"),
    ),
]


def check_case(case: Case) -> None:
    """Plan ``case`` and compare with what it expects: the error's text, or the chosen
    builds, the route and the coverage (each only when the case names it)."""
    if case.error:
        with pytest.raises(Unsatisfiable) as raised:
            _plan(case)
        err = raised.value
        text = " ".join([err.message, *(p.message for p in err.problems), err.hint or ""])
        for part in case.error:
            assert part in text, text
        return
    result = _plan(case)
    if case.chose:
        assert [c.verdict.build.label for c in result.choices] == list(case.chose)
    routes = [r.url.rsplit("/", 1)[1] for r in result.routes]
    assert routes == ([case.route] if case.route else []) or not case.chose
    if case.coverage:
        assert result.choices[0].verdict.coverage == case.coverage


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_scenario(case: Case) -> None:
    check_case(case)


def test_at_least_25_scenarios() -> None:
    assert len(CASES) >= 25


def test_chosen_variant_constrains_the_resolver() -> None:
    result = _plan(CASES[1])  # torch via cu118 on a strict 535 fleet
    torch = result.constraints["torch"]
    assert not torch.contains("2.8.0") and torch.contains("2.7.1") and torch.contains("2.5.1")
    assert str(result.constraints["nvidia-cuda-runtime-cu12"]) == "<12.3"
    assert "535.104.05 runs CUDA <12.3 under the strict policy" in result.reasons["cuda-toolkit"]


# -- choosing an nvidia/cuda tag ------------------------------------------------------------


def _choose(case: Case, base: str) -> str:
    from dataclasses import replace

    from reprolock.spec import BaseSpec
    from reprolock.stack.base import choose_base

    result = _plan(replace(case, base_cuda=None, choosable=True))
    fields = {k: v.strip('"') for k, v in (line.split(" = ") for line in base.splitlines())}
    spec = BaseSpec(image=fields.get("image"), flavor=fields.get("flavor"), os=fields.get("os"))
    return choose_base(spec, [result], result.fleet.gpu, MATRICES).ref.familiar


def _planned(requirements: tuple[str, ...], gpu: str) -> Case:
    return Case("base", requirements, gpu, base_cuda="11.8.0")


def test_base_tag_for_system_cuda_tensorflow() -> None:
    case = _planned(("tensorflow==2.13.*",), 'devices = ["A100"]\nunknown-coverage = "warn"')
    tag = _choose(case, 'image = "nvidia/cuda"\nflavor = "cudnn-runtime"\nos = "ubuntu22.04"')
    assert tag == "nvidia/cuda:11.8.0-cudnn8-runtime-ubuntu22.04"


def test_base_tag_matches_the_wheels_cuda_and_prefers_the_newest_ubuntu() -> None:
    case = _planned(("torch==2.7.1",), 'devices = ["A100"]')  # PyPI wheel: CUDA 12.6
    assert _choose(case, 'image = "nvidia/cuda"') == "nvidia/cuda:12.6.3-base-ubuntu24.04"
    assert (
        _choose(case, 'image = "nvidia/cuda"\nflavor = "cudnn-devel"')
        == "nvidia/cuda:12.6.3-cudnn-devel-ubuntu24.04"
    )


def test_base_tag_without_frameworks_is_the_newest_the_driver_runs() -> None:
    case = _planned(("numpy",), 'driver = "535.104.05"\ncompat = "strict"')
    assert _choose(case, 'image = "nvidia/cuda"') == "nvidia/cuda:12.2.2-base-ubuntu22.04"


def test_base_tag_errors_name_the_key_and_the_fix() -> None:
    from reprolock.errors import InputError

    case = _planned(("numpy",), 'devices = ["A100"]')
    with pytest.raises(InputError) as raised:
        _choose(case, 'image = "pytorch/pytorch"')
    assert "reprolock chooses tags only for nvidia/cuda" in raised.value.message
    assert raised.value.problems[0].key == "base.image"
    with pytest.raises(Unsatisfiable) as unsat:
        _choose(case, 'image = "nvidia/cuda"\nos = "ubuntu18.04"')
    assert "nvidia/cuda 13.3.1: has no image for ubuntu18.04" in unsat.value.problems[0].message
