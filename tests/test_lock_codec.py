from __future__ import annotations

import os
import tomllib
from dataclasses import replace
from pathlib import Path

import pytest

from reprolock.errors import InputError
from reprolock.lock import dumps, from_dict, loads, to_dict
from tests.lockdata import example_lock

GOLDEN = Path(__file__).parent / "golden" / "reprolock.lock"


def _golden_text() -> str:
    # The golden file is independent of reprolock's own version number.
    return dumps(replace(example_lock(), created_by="reprolock X.Y.Z"))


def test_golden_lock_is_byte_identical() -> None:
    text = _golden_text()
    if os.environ.get("REPROLOCK_UPDATE_GOLDEN"):
        GOLDEN.write_text(text, encoding="utf-8")
    assert text == GOLDEN.read_text(encoding="utf-8")
    assert text.endswith("\n")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_same_inputs_in_any_order_give_the_same_bytes(seed: int) -> None:
    assert dumps(example_lock(shuffle=seed)) == dumps(example_lock())


def test_round_trip() -> None:
    lock = example_lock()
    decoded = loads(dumps(lock), file="reprolock.lock")
    assert decoded.warnings == []
    assert dumps(decoded.lock) == dumps(lock)
    assert to_dict(decoded.lock) == to_dict(lock)


def test_layer_order_is_kept_not_sorted() -> None:
    data = to_dict(example_lock())
    diff_ids = data["targets"][0]["base"]["diff-ids"]
    assert diff_ids == list(example_lock().targets[0].base.diff_ids)  # type: ignore[union-attr]


def _broken(mutate: str) -> dict[str, object]:
    data = tomllib.loads(dumps(example_lock()))
    exec(mutate, {"d": data})
    return data


@pytest.mark.parametrize(
    ("mutate", "key", "message"),
    [
        (
            'd["targets"][0]["packages"][3]["wheels"][0]["sha256"] = "xyz"',
            "targets[0].packages[3].wheels[0].sha256",
            '"xyz" is not a sha256 hex digest (64 lowercase hex digits).',
        ),
        ('del d["targets"][1]["apt"][0]["version"]', "targets[1].apt[0].version", "is missing."),
        (
            'd["targets"][0]["apt"][2]["size"] = "big"',
            "targets[0].apt[2].size",
            'expected a non-negative integer, got string "big".',
        ),
        (
            'd["targets"][0]["platform"] = "linux/mips"',
            "targets[0].platform",
            'unknown platform "linux/mips"; use one of linux/amd64, linux/arm64, linux/ppc64le, '
            "linux/s390x, linux/386, linux/arm/v7.",
        ),
        ('d["targets"][0]["base"]["extra"] = 1', "targets[0].base.extra", 'unknown key "extra".'),
        (
            'd["inputs-hash"] = "md5:1"',
            "inputs-hash",
            '"md5:1" is not a sha256 digest ("sha256:" and 64 lowercase hex).',
        ),
        (
            'd["image"]["copy"] = [["only-source"]]',
            "image.copy[0]",
            "expected a [source, destination] pair, got array ['only-source'].",
        ),
        ('del d["image"]["user"]', "image.user", "is missing."),
    ],
)
def test_reading_names_the_bad_field(mutate: str, key: str, message: str) -> None:
    with pytest.raises(InputError) as info:
        from_dict(_broken(mutate), file="reprolock.lock")
    [problem] = info.value.problems
    assert problem.key == key
    assert problem.message == message


def test_errors_carry_line_numbers() -> None:
    text = dumps(example_lock()).replace('sha256 = "', 'sha256 = "Z', 1)
    with pytest.raises(InputError) as info:
        loads(text, file="reprolock.lock")
    [problem] = info.value.problems
    line = text.splitlines()[problem.line - 1]  # type: ignore[operator]
    assert 'sha256 = "Z' in line


def test_unknown_major_version_is_an_error() -> None:
    data = _broken('d["lock-version"] = "2.0"')
    with pytest.raises(InputError) as info:
        from_dict(data, file="reprolock.lock")
    assert info.value.render() == (
        "reprolock.lock: lock-version 2.0 is not supported by this reprolock (it reads 1.x).\n"
        "Upgrade reprolock to read it, or regenerate the lock with `reprolock lock`."
    )


def test_newer_minor_version_warns_and_ignores_new_fields() -> None:
    data = _broken('d["lock-version"] = "1.7"; d["targets"][0]["future-field"] = 1')
    decoded = from_dict(data, file="reprolock.lock")
    assert decoded.warnings == [
        "reprolock.lock: lock-version 1.7 is newer than this reprolock's 1.4; fields it does "
        "not know are ignored. Upgrade reprolock."
    ]
    assert len(decoded.lock.targets) == 2


def test_image_section_is_optional() -> None:
    decoded = from_dict(_broken('del d["image"]'), file="reprolock.lock")
    assert decoded.lock.image is None
    lock = example_lock()
    assert lock.image is not None
    assert lock.image.venv == "/opt/venv"
    assert lock.image.copy == (("train", "/app/train"),)


def test_not_a_lock() -> None:
    with pytest.raises(InputError, match="lock-version is missing or malformed"):
        loads('name = "x"\n', file="reprolock.lock")
    with pytest.raises(InputError, match="is not valid TOML"):
        loads("[[", file="reprolock.lock")
