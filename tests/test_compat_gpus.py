"""GPU names → compute capability (names as nvidia-smi prints them), and the least driver a
GPU architecture needs, from matrices/gpus.toml."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from reprolock import api
from reprolock.compat.gpus import UnknownGpu, _key
from reprolock.model import ComputeCapability, DriverVersion

MATRICES = api.shipped_matrices()
TABLE = MATRICES.gpus
NVIDIA_SMI = Path(__file__).parent / "data" / "nvidia-smi"


def _recorded() -> list[tuple[str, str]]:
    """(name, compute_cap) of every recorded `nvidia-smi --query-gpu=name,compute_cap` row."""
    rows = []
    for path in sorted(NVIDIA_SMI.glob("*.csv")):
        with path.open() as f:
            for row in csv.DictReader(f, skipinitialspace=True):
                if row.get("compute_cap"):
                    rows.append((row["name"], row["compute_cap"]))
    return rows


def test_recorded_nvidia_smi_names_resolve_to_the_capability_the_driver_reports() -> None:
    recorded = _recorded()
    assert len(recorded) == 5
    for name, cc in recorded:
        assert TABLE.lookup(name).capability == ComputeCapability.parse(cc), name


# Names as nvidia-smi (or CUDA's deviceQuery) prints them, each published with the compute
# capability the driver reported, or named by NVIDIA's own documentation.
PUBLISHED = [
    # nvidia-smi --query-gpu=name,compute_cap outputs quoted in public project documents
    # (found by exact-string code search, 2026-12):
    ("NVIDIA H100 80GB HBM3", "9.0"),
    ("NVIDIA A100 80GB PCIe", "8.0"),
    ("NVIDIA H100 NVL", "9.0"),
    ("Tesla V100-SXM2-32GB", "7.0"),
    ("Tesla T4", "7.5"),
    # nvidia-smi -a "Product Name" on driver 450, without the vendor word:
    # https://github.com/NVIDIA/k8s-device-plugin/issues/343
    ("A100-SXM4-40GB", "8.0"),
    # deviceQuery: https://gist.github.com/gengwg/3520df2ebf8872e5ee4818367e3a4122
    ("NVIDIA A100-SXM4-80GB", "8.0"),
    # NVIDIA NIM support matrix (docs.nvidia.com/nim/vision-language-models/.../support-matrix)
    ("H100-80GB-HBM3", "9.0"),
    # NVIDIA MIG user guide, supported GPUs table (product names and compute capability)
    ("H100-SXM5", "9.0"),
    ("H100-PCIE", "9.0"),
    ("H200-SXM5", "9.0"),
    ("H200 NVL", "9.0"),
    ("A100-PCIE", "8.0"),
    ("RTX PRO 6000 Blackwell Max-Q Workstation Edition", "12.0"),
    ("RTX PRO 4500 Blackwell", "12.0"),
    # NVIDIA MIG user guide, MIG device names ("1g.5gb" on the A100-SXM4-40GB; "1c.3g.20gb")
    ("NVIDIA A100-SXM4-40GB MIG 1g.5gb", "8.0"),
    ("NVIDIA A100-SXM4-40GB MIG 1c.3g.20gb", "8.0"),
    # The product names of NVIDIA's compute-capability pages, written as users do
    ("NVIDIA GeForce RTX 4090", "8.9"),
    ("geforce rtx 5070 ti", "12.0"),
    ("NVIDIA RTX A6000", "8.6"),
    ("NVIDIA RTX 6000 Ada Generation", "8.9"),
    ("NVIDIA L4", "8.9"),
    ("Quadro M6000 24GB", "5.2"),
    ("GeForce GTX TITAN X", "5.2"),
    ("NVIDIA TITAN X", "6.1"),
    ("Jetson Nano", "5.3"),
    ("DGX Spark", "12.1"),
]


@pytest.mark.parametrize(("name", "cc"), PUBLISHED)
def test_published_names_resolve(name: str, cc: str) -> None:
    assert TABLE.lookup(name).capability == ComputeCapability.parse(cc)


@pytest.mark.parametrize(
    ("name", "suggestions"),
    [
        # Cloud SKUs no NVIDIA or cloud-vendor page read states the chip of: not guessed.
        ("NVIDIA A10G", ("A10", "A100")),
        ("NVIDIA H800", ("GH200", "H100", "H200")),
        ("NVIDIA L20", ("H20", "L40")),
        ("RTX 9090", ("RTX 3090", "RTX 4090", "RTX 5090")),
    ],
)
def test_unknown_names_fail_with_suggestions(name: str, suggestions: tuple[str, ...]) -> None:
    with pytest.raises(UnknownGpu) as caught:
        TABLE.lookup(name)
    assert caught.value.suggestions == suggestions


def test_no_two_products_share_a_lookup_key() -> None:
    owners: dict[str, str] = {}
    for model in TABLE.models:
        for name in (model.name, *model.aliases):
            key = _key(name)
            assert owners.setdefault(key, model.name) == model.name, (name, owners[key])


def test_variant_words_are_ignored_but_product_words_are_not() -> None:
    assert _key("NVIDIA A100-SXM4-80GB") == _key("A100") == "a100"
    assert _key("NVIDIA GeForce RTX 4070 Laptop GPU") == "rtx4070"
    assert _key("NVIDIA H100 80GB HBM3") == _key("NVIDIA H100 NVL") == "h100"
    assert _key("GB200 NVL72") == "gb200"
    assert _key("RTX 4070 Ti") != _key("RTX 4070")
    assert _key("Quadro RTX 6000") != _key("RTX 6000 Ada")


def test_every_product_belongs_to_a_known_architecture() -> None:
    for model in TABLE.models:
        assert TABLE.architecture(model.capability) is not None, model.name


@pytest.mark.parametrize(
    ("cc", "driver"),
    [
        ("12.0", "570.26"),  # RTX 50 / RTX PRO Blackwell: CUDA 12.8 (AUDIT: R570)
        ("10.0", "570.26"),  # B200
        ("10.3", "575.51.03"),  # B300: CUDA 12.9
        ("12.1", "575.51.03"),  # GB10: CUDA 12.9
        ("9.0", "520.61.05"),  # Hopper: CUDA 11.8
        ("9.0a", "520.61.05"),
        ("8.9", "520.61.05"),  # Ada: CUDA 11.8
        ("8.6", "455.23"),  # CUDA 11.1
        ("8.0", "450.36.06"),  # CUDA 11.0 (its first release, 11.0.1 RC)
        ("7.5", "410.48"),  # CUDA 10.0
        ("7.0", "384.81"),  # CUDA 9.0
        ("6.1", "367.48"),  # CUDA 8.0
    ],
)
def test_driver_floor(cc: str, driver: str) -> None:
    floor = TABLE.driver_floor(ComputeCapability.parse(cc), MATRICES.cuda)
    assert floor is not None
    assert (str(floor.driver), floor.policy, floor.exact) == (driver, "strict", True)


def test_driver_floor_reason() -> None:
    floor = TABLE.driver_floor(ComputeCapability.parse("12.0"), MATRICES.cuda)
    assert floor is not None
    assert floor.reason == (
        "sm_120 (Blackwell (GB20x: RTX 50xx, RTX PRO Blackwell)) needs CUDA 12.8 or newer: "
        "CUDA 12.8 GA was released with driver 570.26"
    )


@pytest.mark.parametrize(
    "cc",
    [
        "8.7",  # Jetson Orin: its driver is Jetson Linux's
        "7.2",  # Jetson Xavier
        "11.0",  # Jetson Thor
        "5.3",  # Jetson Nano
        "5.2",  # Maxwell: first CUDA 6.5 is older than every toolkit in cuda.toml
        "3.7",  # Kepler: first CUDA not pinned down
        "2.0",  # not in the table
    ],
)
def test_no_driver_floor_where_none_is_known(cc: str) -> None:
    assert TABLE.driver_floor(ComputeCapability.parse(cc), MATRICES.cuda) is None


def test_unsupported_by() -> None:
    def names(driver: str) -> list[str]:
        return [a.name for a, _ in TABLE.unsupported_by(DriverVersion.parse(driver), MATRICES.cuda)]

    assert names("520.61.05")[:2] == ["Kepler (early)", "Kepler"]
    assert "Hopper" not in names("520.61.05")
    assert "Hopper" in names("515.48.07")
    assert "Blackwell (GB20x: RTX 50xx, RTX PRO Blackwell)" in names("565.57.01")
    assert "Blackwell (GB20x: RTX 50xx, RTX PRO Blackwell)" not in names("570.26")
    # R590 and later no longer run Maxwell, Pascal or Volta (last branch R580).
    assert "Volta" not in names("580.65.06")
    assert names("590.48.01")[2:] == [
        "Maxwell (sm_53 = Tegra X1 / Jetson Nano)",
        "Pascal (sm_62 = Jetson TX2)",
        "Volta",
    ]
