"""The lock's sdist entries: written sorted, read back equal, bad values named."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest

from reprolock.errors import InputError
from reprolock.lock import (
    BuildEnv,
    BuildWhere,
    PythonPackage,
    Sdist,
    Wheel,
    dumps,
    loads,
    to_dict,
)
from tests.lockdata import example_lock


def _h(seed: str) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()


PROMISE = PythonPackage(
    name="promise",
    version="2.3",
    index="https://pypi.org/simple",
    dependencies=("six",),
    sdist=Sdist(
        filename="promise-2.3.tar.gz",
        url="https://files.example/promise-2.3.tar.gz",
        sha256=_h("promise"),
        size=19534,
    ),
    build=BuildEnv(
        backend="setuptools.build_meta:__legacy__",
        requires=("setuptools>=40.8.0", "wheel"),
        wheels=(
            Wheel(
                filename="wheel-0.45.1-py3-none-any.whl",
                url="https://files.example/wheel-0.45.1-py3-none-any.whl",
                sha256=_h("wheel"),
                size=72494,
            ),
            Wheel(
                filename="setuptools-80.9.0-py3-none-any.whl",
                url="https://files.example/setuptools-80.9.0-py3-none-any.whl",
                sha256=_h("setuptools"),
                size=1201486,
            ),
        ),
        where=BuildWhere.FETCH,
        why="pure Python: no extension modules",
    ),
)


def _with_sdist() -> str:
    lock = example_lock()
    target = lock.targets[0]
    target = replace(target, packages=(*target.packages, PROMISE))
    return dumps(replace(lock, lock_version="1.4", targets=(target, *lock.targets[1:])))


def test_sdist_package_round_trips_and_is_sorted() -> None:
    text = _with_sdist()
    decoded = loads(text, file="reprolock.lock")
    assert decoded.integrity.verified
    found = next(p for p in decoded.lock.targets[0].packages if p.name == "promise")
    assert PROMISE.build is not None
    expected_wheels = tuple(sorted(PROMISE.build.wheels, key=lambda w: w.filename))
    assert found == replace(PROMISE, build=replace(PROMISE.build, wheels=expected_wheels))
    assert dumps(decoded.lock) == text
    entry = next(
        p for p in to_dict(decoded.lock)["targets"][0]["packages"] if p["name"] == "promise"
    )
    assert "wheels" not in entry
    assert list(entry["build"]) == ["backend", "requires", "where", "why", "wheels"]


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            'backend = "setuptools.build_meta:__legacy__"',
            'backend = "os; rm -rf /"',
            "is not a build backend",
        ),
        ('where = "fetch"', 'where = "somewhere"', "is not one of fetch, image"),
        ('filename = "promise-2.3.tar.gz"', 'filename = "promise.exe"', "source distribution"),
    ],
)
def test_bad_sdist_values_are_named(old: str, new: str, message: str) -> None:
    text = _with_sdist()
    assert old in text
    with pytest.raises(InputError) as caught:
        loads(text.replace(old, new), file="reprolock.lock")
    assert message in str(caught.value.problems) + caught.value.message
