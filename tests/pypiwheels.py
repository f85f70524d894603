"""Real wheels from PyPI, downloaded once into the tests' cache and checked against their
sha256; served to the tests by loopback indexes. Without the network a test that needs them
is skipped locally and fails in CI."""

from __future__ import annotations

import hashlib
import os
import urllib.request
from pathlib import Path

import pytest

FILES = "https://files.pythonhosted.org/packages"

# requests 2.32.3 and its dependencies, all pure (py3-none-any): one set for every platform.
REQUESTS = (
    (
        "requests-2.32.3-py3-none-any.whl",
        f"{FILES}/f9/9b/335f9764261e915ed497fcdeb11df5dfd6f7bf257d4a6a2a686d80da4d54",
        "70761cfe03c773ceb22aa2f671b4757976145175cdfca038c02654d061d6dcc6",
    ),
    (
        "urllib3-2.2.3-py3-none-any.whl",
        f"{FILES}/ce/d9/5f4c13cecde62396b0d3fe530a50ccea91e7dfc1ccf0e09c228841bb5ba8",
        "ca899ca043dcb1bafa3e262d73aa25c465bfb49e0bd9dd5d59f1d0acba2f8fac",
    ),
    (
        "idna-3.10-py3-none-any.whl",
        f"{FILES}/76/c6/c88e154df9c4e1a2a66ccf0005a88dfb2650c1dffb6f5ce603dfbd452ce3",
        "946d195a0d259cbba61165e88e65941f16e9b36ea6ddb97f00452bae8b1287d3",
    ),
    (
        "certifi-2024.8.30-py3-none-any.whl",
        f"{FILES}/12/90/3c9ff0512038035f59d279fddeb79f5f1eccd8859f06d6163c58798b9487",
        "922820b53db7a7257ffbda3f597266d435245903d80737e34f8a45ff3e3230d8",
    ),
    (
        "charset_normalizer-3.4.0-py3-none-any.whl",
        f"{FILES}/bf/9b/08c0432272d77b04803958a4598a51e2a4b51c06640af8b8f0f908c18bf2",
        "fe9f97feb71aa9896b81973a7bbada8c49501dc73e58a10fcef6663af95e5079",
    ),
)


def real_wheel(filename: str, folder_url: str, sha256: str) -> Path:
    """``folder_url/filename`` from PyPI, downloaded once (sha256-checked) into the tests'
    cache."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "reprolock-tests"
    path = cache / filename
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        try:
            with urllib.request.urlopen(f"{folder_url}/{filename}", timeout=120) as response:
                partial.write_bytes(response.read())
        except OSError as exc:
            if os.environ.get("CI"):
                raise
            pytest.skip(f"cannot fetch {filename} from PyPI: {exc}")
        if hashlib.sha256(partial.read_bytes()).hexdigest() != sha256:
            partial.unlink()
            raise AssertionError(f"{filename} from PyPI does not match its sha256")
        partial.replace(path)
    return path


def requests_wheels() -> list[Path]:
    """requests and its dependencies."""
    return [real_wheel(*entry) for entry in REQUESTS]
