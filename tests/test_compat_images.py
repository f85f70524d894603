"""nvidia/cuda releases in matrices/images.toml, against matrices/cuda.toml."""

from __future__ import annotations

from reprolock import api
from reprolock.model import CudaVersion

MATRICES = api.shipped_matrices()
IMAGES = MATRICES.images.cuda


def test_every_image_release_has_its_own_driver_row() -> None:
    for image in IMAGES:
        release = MATRICES.cuda.release(image.cuda)
        assert release is not None, image.cuda
        assert MATRICES.cuda.need(image.cuda, "strict").exact, image.cuda


def test_cudnn_variants_exist_only_where_the_release_is_built() -> None:
    for image in IMAGES:
        assert set(image.cudnn_os or ()) <= set(image.os), image.cuda
        if image.cudnn_os is not None:
            assert image.cudnn_tag is not None, image.cuda


def test_every_minor_since_12_8_has_a_release_still_built() -> None:
    minors = {(i.cuda.major, i.cuda.minor) for i in IMAGES if i.cuda >= CudaVersion.parse("12.8")}
    for major, minor in sorted(minors):
        newest = [i for i in IMAGES if (i.cuda.major, i.cuda.minor) == (major, minor)][-1]
        assert not newest.end_of_life, newest.cuda


def test_newest_releases() -> None:
    by_version = {str(i.cuda): i for i in IMAGES}
    latest = by_version["13.3.1"]
    assert latest.tag("runtime", "ubuntu26.04", cudnn=True) == "13.3.1-cudnn-runtime-ubuntu26.04"
    assert (latest.cudnn, latest.branches) == ("9.24.0.43", (535, 570, 580, 590, 595))
    assert by_version["13.3.0"].end_of_life
    # 13.0.0 had no cuDNN variant on rockylinux10, ubi10, amzn2023, azl3 or cm2.
    assert by_version["13.0.0"].has_cudnn("ubuntu24.04")
    assert not by_version["13.0.0"].has_cudnn("rockylinux10")
    assert not by_version["12.8.2"].has_cudnn("ubuntu24.04")  # no cudnn variant at all
