"""The framework tables (matrices/pytorch.toml, tensorflow.toml, jax.toml, cudnn.toml) hold
together: every build the solver can pick has an arch list, every row cites a known source or a
measured file, and the corrections of the 2026-12 audit stay made."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from reprolock import api

ROOT = Path(__file__).parent.parent
MEASURED = re.compile(r"(?P<file>\S+\.whl) sha256:[0-9a-f]{64}")
AMD64, ARM64 = "linux/amd64", "linux/arm64"


def _table(name: str) -> dict[str, Any]:
    data: dict[str, Any] = tomllib.loads((ROOT / "matrices" / f"{name}.toml").read_text())
    return data


TORCH = _table("pytorch")
TF = _table("tensorflow")
JAX = _table("jax")


def _minor(version: str) -> str:
    v = Version(version)
    return f"{v.major}.{v.minor}"


# -- PyTorch ---------------------------------------------------------------------------------


def test_every_torch_variant_from_2_4_has_an_arch_list_per_platform() -> None:
    arches = {(a["torch"], a["variant"], a["platform"]) for a in TORCH["arches"]}
    missing = [
        (v["torch"], v["variant"], platform)
        for v in TORCH["variant"]
        if Version(v["torch"]) >= Version("2.4")
        for platform in v["platforms"]
        if (v["torch"], v["variant"], platform) not in arches
    ]
    assert missing == []


def test_every_arch_list_belongs_to_a_variant_built_for_its_platform() -> None:
    platforms = {(v["torch"], v["variant"]): set(v["platforms"]) for v in TORCH["variant"]}
    orphans = [
        (a["torch"], a["variant"], a["platform"])
        for a in TORCH["arches"]
        if a["platform"] not in platforms.get((a["torch"], a["variant"]), set())
    ]
    assert orphans == []
    keys = [(a["torch"], a["variant"], a["platform"]) for a in TORCH["arches"]]
    assert len(keys) == len(set(keys))


def test_series_and_variant_rows_agree() -> None:
    listed = {
        (s["torch"], name) for s in TORCH["series"] for name in s["variants"] if name != "cpu"
    }
    rows = {(v["torch"], v["variant"]) for v in TORCH["variant"]}
    assert listed == rows
    for v in TORCH["variant"]:
        assert v["variant"] == "cu" + v["cuda"].replace(".", ""), v


def test_every_pypi_wheel_from_2_4_with_cuda_has_measured_kernels() -> None:
    measured = {(a["torch"], a["platform"]) for a in TORCH["pypi-arches"]}
    for release in TORCH["release"]:
        if Version(release["torch"]) < Version("2.4"):
            continue
        assert (release["torch"], AMD64) in measured, release["torch"]
        if release["arm64-cuda"]:
            assert (release["torch"], ARM64) in measured, release["torch"]
    for row in TORCH["pypi-arches"]:
        match = MEASURED.fullmatch(row["measured"])
        assert match and match["file"].startswith(f"torch-{row['torch']}-"), row


def test_no_index_build_claims_ptx_the_release_builds_strip() -> None:
    # Release builds strip +PTX (pytorch/pytorch#188914); a claim of PTX needs a measurement.
    claims = [
        (a["torch"], a["variant"], a["platform"])
        for a in TORCH["arches"]
        if a["ptx"] and "measured" not in a
    ]
    assert claims == []


def test_audit_corrections_stay_made() -> None:
    variants = {(v["torch"], v["variant"]): v for v in TORCH["variant"]}
    arm64_added = [("2.6", "cu126")]
    arm64_added += [(t, n) for t in ("2.13", "2.14") for n in ("cu126", "cu130", "cu132")]
    for key in arm64_added:
        assert variants[key]["platforms"] == [AMD64, ARM64], key
    assert variants[("2.4", "cu124")]["platforms"] == [AMD64]  # D1
    assert variants[("2.11", "cu130")]["cudnn"] == "9.19.0.56"  # D2
    for t in ("2.9", "2.10", "2.11", "2.12", "2.13"):  # D4-D8
        assert variants[(t, "cu129")]["platforms"] == [AMD64, ARM64], t
    arches = {(a["torch"], a["variant"], a["platform"]): a for a in TORCH["arches"]}
    for t in ("2.12", "2.13", "2.14"):
        for platform in (AMD64, ARM64):
            assert arches[(t, "cu130", platform)]["ptx"] == [], t
    assert "7.0" not in arches[("2.11", "cu128", AMD64)]["sass"]  # Volta dropped (#182250)
    assert "7.0" in arches[("2.11", "cu126", AMD64)]["sass"]


def test_torch_2_15_has_no_unconfirmed_variants() -> None:
    series = next(s for s in TORCH["series"] if s["torch"] == "2.15")
    assert series["variants"] == []
    assert not [v for v in TORCH["variant"] if v["torch"] == "2.15"]


def test_the_solver_sees_an_arch_list_for_every_torch_build_from_2_4() -> None:
    table = api.shipped_matrices().torch
    for release in table.releases:
        if release.version < Version("2.4"):
            continue
        for platform in (AMD64, ARM64):
            for build in table.builds(release, platform):
                if build.cuda is not None:
                    assert build.arches is not None, (build.label, platform)


# -- companions ------------------------------------------------------------------------------


def test_companions_cover_every_torchvision_and_torchaudio_from_torch_2_11() -> None:
    rows = {(c["name"], c["version"]) for c in TORCH["companion"]}
    expected = {("torchvision", v) for v in ("0.26.0", "0.27.0", "0.27.1", "0.28.0")}
    expected |= {("torchvision", v) for v in ("0.29.0", "0.29.1", "0.29.2")}
    expected |= {("torchaudio", "2.11.0"), ("torchaudio", "2.11.1")}
    assert rows == expected


def test_companion_rows_are_consistent_with_the_releases() -> None:
    known = set(TORCH["sources"])
    releases = {r["torch"]: r for r in TORCH["release"]}
    minors = {s["torch"] for s in TORCH["series"]}
    for row in TORCH["companion"]:
        assert row["sources"] and set(row["sources"]) <= known, row
        assert row["built-for"] in minors, row
        assert row["released-with"] in releases, row
        spec = SpecifierSet(row.get("torch", ""))
        assert Version(row["released-with"]) in spec, row
        pinned = [s.version for s in spec if s.operator == "=="]
        if pinned:  # an exact pin: the [[release]] row lists it, and it is its minor
            assert _minor(pinned[0]) == row["built-for"], row
            assert row["version"] in releases[pinned[0]].get(row["name"], []), row
        else:
            assert "note" in row, row


def test_the_solver_still_reads_the_exact_pins() -> None:
    table = api.shipped_matrices().torch
    assert table.companion_of("torchvision", Version("0.28.0")) == Version("2.13.0")
    assert table.companion_of("torchvision", Version("0.29.1")) is None


def test_unpinned_companions_are_held_to_the_minors_they_were_built_and_released_for() -> None:
    table = api.shipped_matrices().torch
    ranges = {
        (name, version): str(table.companion_range(name, Version(version)))
        for name, version in (
            ("torchvision", "0.28.0"),  # an exact pin
            ("torchvision", "0.29.1"),  # >=2.14.0 published, uploaded with 2.14.1
            ("torchvision", "0.29.2"),  # >=2.14.0 published, uploaded with 2.15.0
            ("torchaudio", "2.11.0"),  # declares nothing
            ("torchaudio", "2.11.1"),  # >=2.11 published, uploaded with 2.15.0
        )
    }
    assert ranges == {
        ("torchvision", "0.28.0"): "==2.13.0",
        ("torchvision", "0.29.1"): "<2.15,>=2.14",
        ("torchvision", "0.29.2"): "<2.16,>=2.14",
        ("torchaudio", "2.11.0"): "<2.12,>=2.11",
        ("torchaudio", "2.11.1"): "<2.16,>=2.11",
    }
    assert table.companion_range("torchvision", Version("0.99.0")) is None
    # torch 2.15.0 has a torchvision of its own now, so an unknown one is kept away from it
    assert Version("2.15.0") in table.with_companion("torchvision")


# -- TensorFlow ------------------------------------------------------------------------------


def test_every_tensorflow_release_from_2_15_has_a_measured_arch_list() -> None:
    arches = {a["tensorflow"]: a for a in TF["arches"]}
    for release in TF["release"]:
        version = release["tensorflow"]
        if Version(version) < Version("2.15"):
            continue
        row = arches.get(_minor(version))
        assert row is not None, version
        files = [
            m["file"]
            for text in [row["measured"], *row.get("also-measured", [])]
            if (m := MEASURED.fullmatch(text))
        ]
        assert f"tensorflow-{version}-" in " ".join(files), version


def test_tensorflow_arch_lists_carry_the_ptx_isa() -> None:
    for row in TF["arches"]:
        assert row["platform"] == AMD64
        if row["ptx"]:
            assert re.fullmatch(r"\d+\.\d+", row["ptx-isa"]), row
    table = api.shipped_matrices().tensorflow
    assert table.arches["2.18"].ptx_isa == "8.3"  # audit P2: H100 on R550 can JIT 2.18's PTX
    assert table.arches["2.15"].describe() == "sm_50 sm_60 sm_70 sm_75, PTX compute_80"


# -- JAX -------------------------------------------------------------------------------------


def test_every_jax_release_has_wheels_to_install() -> None:
    rows = {r["jax"]: r for r in JAX["release"]}
    for row in JAX["release"]:
        assert row["python"], row["jax"]
        lib = row.get("jaxlib")
        if lib is not None:  # no jaxlib of its own: it carries the one it resolves to
            assert lib != row["jax"] and lib in rows, row
            same = rows[lib]
            assert row["python"] == same["python"], row["jax"]
            assert row.get("cuda12") == same.get("cuda12"), row["jax"]
            assert row.get("cuda13") == same.get("cuda13"), row["jax"]


def test_jax_0_4_37_and_0_5_2_resolve_to_their_jaxlib() -> None:
    table = api.shipped_matrices().jax
    for version in ("0.4.37", "0.5.2"):
        release = table.release(Version(version))
        assert release is not None and "3.11" in release.python
        assert table.build(release, 12, local=False) is not None


# -- every framework row cites a known source -------------------------------------------------


@pytest.mark.parametrize(
    ("data", "tables"),
    [
        (TORCH, ("series", "variant", "arches", "release", "companion")),
        (TF, ("release", "arches")),
        (JAX, ("release",)),
        (_table("cudnn"), ("support", "wheels")),
    ],
    ids=["pytorch", "tensorflow", "jax", "cudnn"],
)
def test_every_row_cites_a_known_source_or_a_measured_file(
    data: dict[str, Any], tables: tuple[str, ...]
) -> None:
    known = set(data["sources"])
    for table in tables:
        for row in data[table]:
            if "sources" in row:
                assert row["sources"] and set(row["sources"]) <= known, row
            else:
                assert MEASURED.fullmatch(row["measured"]), row
            if "unconfirmed" in row:
                assert row["unconfirmed"].strip(), row
