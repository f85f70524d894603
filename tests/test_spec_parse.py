from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from reprolock import api, resources
from reprolock.document.locate import locate_keys, render_path
from reprolock.errors import InputError
from reprolock.model import Platform
from reprolock.spec import CompatPolicy, PrereleasePolicy, Spec, parse_spec

EXAMPLE = Path(__file__).parent.parent / "examples" / "train" / "reprolock.toml"


def test_full_example_parses_to_typed_values() -> None:
    spec = api.load_spec(EXAMPLE)
    env = spec.environment
    assert env.name == "train"
    assert str(env.python) == "3.11"
    assert env.platforms == (Platform.parse("linux/amd64"), Platform.parse("linux/arm64"))
    assert spec.gpu is not None
    assert [(d.requested, d.model, d.capability.sm) for d in spec.gpu.devices] == [
        ("A100", "NVIDIA A100", "sm_80"),
        ("H100", "NVIDIA H100", "sm_90"),
    ]
    assert str(spec.gpu.driver) == "535.104.05"
    assert str(spec.gpu.cuda) == ">=12.1"
    assert str(spec.gpu.cudnn) == "==9.*"
    assert spec.gpu.compat is CompatPolicy.MINOR
    assert spec.base.ref is not None
    assert spec.base.ref.familiar == "nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04"
    py = spec.python
    assert py is not None
    assert [str(r) for r in py.requirements] == [
        "torch==2.5.*",
        "transformers>=4.46",
        "datasets>=3.0",
        "accelerate>=1.0",
    ]
    assert py.exclude_newer == dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
    assert py.prerelease is PrereleasePolicy.IF_NECESSARY_OR_EXPLICIT
    assert [(i.name, i.packages) for i in py.indexes] == [
        ("pytorch-cu124", ("torch", "torchvision"))
    ]
    assert spec.apt is not None
    assert spec.apt.packages == ("git", "libgl1")
    assert spec.apt.snapshot == "20250520T000000Z"
    assert spec.image.expose == ("8000",)
    assert spec.image.healthcheck is not None
    assert spec.image.healthcheck.interval == "30s"
    assert spec.registry.mirrors == (("docker.io", "mirror.example.com"),)


def _parse(text: str) -> Spec:
    return parse_spec(
        text,
        file="reprolock.toml",
        matrices=api.shipped_matrices(),
        read_file=lambda name: (_ for _ in ()).throw(FileNotFoundError(2, "nope")),
    )


def test_defaults_and_cpu_only() -> None:
    parsed = _parse('[environment]\npython = "3.12.1"\n')
    assert parsed.environment.platforms == (Platform.parse("linux/amd64"),)
    assert parsed.gpu is None
    assert parsed.python is None
    assert parsed.image.user == "app"


@pytest.mark.parametrize(
    ("written", "meaning"),
    [
        ("12.4", "==12.4.*"),
        ("9.*", "==9.*"),
        (">=12.1,<13", "<13,>=12.1"),
        ("12.4.1", "==12.4.1.*"),
    ],
)
def test_cuda_shorthands(written: str, meaning: str) -> None:
    parsed = _parse(f'[environment]\npython = "3.11"\n[gpu]\ncuda = "{written}"\n')
    assert parsed.gpu is not None
    assert str(parsed.gpu.cuda) == meaning


def test_gpu_devices_by_capability_and_alias() -> None:
    parsed = _parse(
        '[environment]\npython = "3.11"\n[gpu]\n'
        'devices = ["8.6", "sm_90a", "rtx 4090", "GeForce RTX 5090", "Jetson Thor"]\n'
    )
    assert parsed.gpu is not None
    got = [(d.model, d.capability.sm) for d in parsed.gpu.devices]
    assert got == [
        (None, "sm_86"),
        (None, "sm_90a"),
        ("GeForce RTX 4090", "sm_89"),
        ("GeForce RTX 5090", "sm_120"),
        ("Jetson T5000 / T4000 (Thor)", "sm_110"),
    ]


def test_package_routed_twice_is_rejected() -> None:
    with pytest.raises(InputError) as info:
        _parse(
            '[environment]\npython = "3.11"\n[python]\nrequirements = ["torch"]\n'
            '[[python.index]]\nname = "a"\nurl = "https://a/simple"\npackages = ["Torch"]\n'
            '[[python.index]]\nname = "b"\nurl = "https://b/simple"\npackages = ["torch"]\n'
        )
    [problem] = info.value.problems
    assert problem.key == "python.index[1].packages[0]"
    assert problem.message == 'package "torch" is already routed to index "a".'


def test_credentials_are_redacted_in_messages() -> None:
    with pytest.raises(InputError) as info:
        _parse(
            '[environment]\npython = "3.11"\n[python]\nrequirements = ["x"]\n'
            '[[python.index]]\nname = "a"\nurl = "ftp://user:s3cret@host/simple"\n'
        )
    assert "s3cret" not in info.value.render()
    assert "user:***@host" in info.value.render()


def test_starters_are_valid() -> None:
    for name in ("cpu.toml", "gpu.toml"):
        spec = _parse(resources.starter(name))
        assert spec is not None


def test_locate_keys_tracks_arrays_of_tables_and_inline_tables() -> None:
    text = (
        '[a]\nx = 1\n[[b.c]]\nn = "1"\n[[b.c]]\nn = "2"\nt = { k = [1,\n 2] }\n'
        'm = """\nline\n"""\nz = 0\n'
    )
    lines = locate_keys(text)
    assert lines[("a", "x")] == 2
    assert lines[("b", "c", 1, "n")] == 6
    assert lines[("b", "c", 1, "t", "k", 1)] == 8
    assert lines[("b", "c", 1, "z")] == 12
    assert (
        render_path(("tool", "reprolock", "python", "index", 0, "url"))
        == "tool.reprolock.python.index[0].url"
    )
    assert render_path(("registry", "mirrors", "docker.io")) == 'registry.mirrors."docker.io"'
