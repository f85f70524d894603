"""The Debian packages the tests use as real parts, and how a test without one is skipped.

A test that needs a tool calls `require` (or is marked with `needs`): on a machine without
the tool it is skipped with a reason naming the tool and the Debian package that brings it;
in CI (``.ci/run`` installs them all) it fails instead. The session's summary counts these
skips and prints the ``apt-get install`` line that enables them (`summary_line`).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterable

import pytest

# tool → the Debian package that installs it (what .ci/run installs).
PACKAGES = {
    "docker-registry": "docker-registry",
    "htpasswd": "apache2-utils",
    "dockerd": "docker.io",
    "docker": "docker.io",
    "debootstrap": "debootstrap",
    "apt-ftparchive": "apt-utils",
    "dpkg-deb": "dpkg",
    "apt-get": "apt",
    "gpg": "gnupg",
    "gpgv": "gpgv",
    "xz": "xz-utils",
    "chromium": "chromium",
    "patchelf": "patchelf",
    "gcc": "gcc",
}
MISSING = "real part missing: "
_INSTALL = re.compile(r"apt-get install -y ([a-z0-9.+ -]+)$")


def missing(tools: Iterable[str]) -> list[str]:
    """The tools of ``tools`` that are not on the PATH."""
    return [tool for tool in tools if shutil.which(tool) is None]


def reason(tools: Iterable[str]) -> str:
    """``real part missing: htpasswd (Debian package apache2-utils); apt-get install -y …``."""
    tools = list(tools)
    packages = list(dict.fromkeys(PACKAGES[t] for t in tools))
    named = ", ".join(f"{t} (Debian package {PACKAGES[t]})" for t in tools)
    return f"{MISSING}{named}; apt-get install -y {' '.join(packages)}"


def require(*tools: str) -> None:
    """Skip the running test (fail it in CI) unless every tool is installed."""
    gone = missing(tools)
    if not gone:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{reason(gone)} (.ci/run installs it)")
    pytest.skip(reason(gone))


def needs(*tools: str) -> pytest.MarkDecorator:
    """A mark: skip unless every tool is installed (in CI the test runs and fails)."""
    gone = missing(tools)
    return pytest.mark.skipif(
        bool(gone) and not os.environ.get("CI"), reason=reason(gone) if gone else ""
    )


def summary_line(reasons: Iterable[str]) -> str | None:
    """One line for the skipped tests whose reasons are ``reason``'s: how many, what is
    missing, and the ``apt-get install`` line that enables them; None when there are none."""
    count = 0
    tools: dict[str, None] = {}
    packages: dict[str, None] = {}
    for text in reasons:
        if MISSING not in text:
            continue
        count += 1
        named = text.split(MISSING, 1)[1]
        tools.update(dict.fromkeys(re.findall(r"([\w.+-]+) \(Debian package", named)))
        found = _INSTALL.search(named)
        if found:
            packages.update(dict.fromkeys(found.group(1).split()))
    if not count:
        return None
    return (
        f"{count} test{'s' if count != 1 else ''} of real parts skipped "
        f"({', '.join(tools)} not installed); to run them: "
        f"apt-get install -y {' '.join(packages)}"
    )
