"""The apt layer of `reprolock lock` against a real signed apt repository on loopback, with a
base image (in a real registry) holding a real dpkg status; apt-get itself is the oracle."""

from __future__ import annotations

import tomllib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.aptrepo import AptRepo, Deb, GpgKey, apt_get_simulate, needs_apt_tools, serve_repo
from tests.conftest import Run
from tests.ociregistry import Image, Registry

pytestmark = needs_apt_tools

LockCli = Callable[..., Run]

INSTALLED = [
    Deb("libc6", "2.36-9", multi_arch="same", priority="required"),
    Deb("libc-bin", "2.36-9", depends="libc6 (= 2.36-9)", priority="required"),
    Deb("base-files", "12.4", priority="required"),
    Deb("dpkg", "1.21.22", priority="required"),
    Deb("upgrade-me", "1.0"),
]
ARCHIVE = [
    *INSTALLED,
    Deb("libc6", "2.36-9+deb12u4", multi_arch="same", priority="required"),
    Deb("libc-bin", "2.36-9+deb12u4", depends="libc6 (= 2.36-9+deb12u4)", priority="required"),
    Deb("upgrade-me", "2.0", depends="libc6 (>= 2.36)"),
    Deb("libfoo1", "1.1"),
    Deb("libfoo1", "1.3", depends="libc6 (>= 2.34)"),
    Deb("tool", "1.0", depends="libc6 (>= 2.36), libfoo1 (>= 1.2) | libfoo-compat, www-browser"),
    Deb("lynx", "2.9.0", provides="www-browser"),
    Deb("elinks", "0.16", provides="www-browser", priority="extra"),
    Deb("w3m", "0.5.3", provides="www-browser"),
    Deb("needs-new-libc", "1.0", depends="libc6 (>= 2.36-9+deb12u4)"),
    Deb("python3", "3.11.2-1", multi_arch="allowed"),
    Deb("py-tool", "1.0", depends="python3:any (>= 3.11)"),
    Deb("helper", "1.0"),
    Deb("pre", "1.0", pre_depends="helper"),
    Deb("alt-user", "1.0", depends="not-in-any-archive | lynx"),
    Deb("broken", "1.0", depends="missing-lib (>= 2)"),
]
REQUESTED = ["tool", "upgrade-me", "needs-new-libc", "py-tool", "pre", "alt-user", "base-files"]


@dataclass
class World:
    url: str
    key: GpgKey
    repo: AptRepo
    status: str
    ref: str
    registry: Registry


def _base_image(status: str, key: bytes) -> Image:
    return Image(
        architecture="amd64",
        layers=[
            {
                "etc/os-release": b'ID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n',
                "var/lib/dpkg/status": status.encode(),
                "etc/apt/sources.list": b"deb http://deb.debian.org/debian bookworm main\n",
                "etc/apt/trusted.gpg.d/archive.gpg": key,
            }
        ],
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, registry: Registry) -> Iterator[World]:
    root = tmp_path_factory.mktemp("apt")
    key = GpgKey(root / "gnupg")
    repo = AptRepo(root / "repo")
    repo.add(*ARCHIVE)
    repo.publish("bookworm", key)
    status = "\n".join(d.status() for d in INSTALLED)
    repo_name = f"library/debian{uuid.uuid4().hex[:6]}"
    registry.push_image(repo_name, "bookworm", _base_image(status, key.public))
    with serve_repo(repo.root) as url:
        yield World(
            url=url,
            key=key,
            repo=repo,
            status=status,
            ref=f"{repo_name.removeprefix('library/')}:bookworm",
            registry=registry,
        )


def _spec(tmp_path: Path, world: World, packages: list[str], extra: str = "") -> None:
    listed = ", ".join(f'"{p}"' for p in packages)
    (tmp_path / "reprolock.toml").write_text(
        '[environment]\npython = "3.11"\n\n'
        f'[base]\nref = "{world.ref}"\n\n'
        f'[apt]\npackages = [{listed}]\nmirror = "{world.url}"\n{extra}\n'
        f'[registry]\nmirrors = {{ "docker.io" = "{world.registry.host}" }}\n'
    )


def _apt(tmp_path: Path) -> dict[str, dict[str, object]]:
    lock = tomllib.loads((tmp_path / "reprolock.lock").read_text())
    return {p["name"]: p for p in lock["targets"][0].get("apt", [])}


def test_lock_installs_exactly_what_apt_get_would(
    lock_cli: LockCli, tmp_path: Path, world: World
) -> None:
    _spec(tmp_path, world, REQUESTED)
    run = lock_cli("lock")
    assert run.code == 0, run.err
    locked = _apt(tmp_path)
    assert {n: p["version"] for n, p in locked.items()} == {
        "alt-user": "1.0",  # first alternative missing: the second (lynx)
        "helper": "1.0",  # Pre-Depends
        "libc-bin": "2.36-9+deb12u4",  # upgraded: the libc6 upgrade breaks the installed one
        "libc6": "2.36-9+deb12u4",  # upgraded for needs-new-libc's versioned dependency
        "libfoo1": "1.3",  # the candidate (highest) satisfies >= 1.2
        "lynx": "2.9.0",  # provides the virtual www-browser
        "needs-new-libc": "1.0",
        "pre": "1.0",
        "py-tool": "1.0",
        "python3": "3.11.2-1",  # python3:any, Multi-Arch: allowed
        "tool": "1.0",
        "upgrade-me": "2.0",  # an installed package upgraded because it was requested
    }  # base-files: already installed at its candidate, so nothing to pin
    tool = locked["tool"]
    assert str(tool["url"]).startswith(f"{world.url}/pool/main/tool_1.0_amd64.deb")
    assert len(str(tool["sha256"])) == 64 and int(str(tool["size"])) > 0
    assert "apt: base-files 12.4 is already installed" in run.err
    # The oracle: apt-get itself, on the same dpkg status and archive.
    simulated = apt_get_simulate(
        tmp_path / "apt-oracle",
        status=world.status,
        sources=f"deb {world.url} bookworm main\n",
        keyring=world.key.public,
        packages=sorted(REQUESTED),  # the spec's order
    )
    assert simulated == sorted((n, str(p["version"])) for n, p in locked.items())


def test_lock_says_one_line_per_section_and_the_pins_with_v(
    lock_cli: LockCli, tmp_path: Path, world: World
) -> None:
    _spec(tmp_path, world, ["tool"])
    run = lock_cli("lock", "-v")  # -v after the command, as the docs write it
    assert run.code == 0, run.err
    digest = tomllib.loads((tmp_path / "reprolock.lock").read_text())["targets"][0]["base"][
        "manifest-digest"
    ]
    assert run.out.splitlines() == [
        f"py3.11-amd64: base {world.ref}@{digest} (debian 12, glibc 2.36)",
        "py3.11-amd64: 3 apt packages",
        "  libfoo1=1.3",
        "  tool=1.0",
        "  w3m=0.5.3",  # provides www-browser
        "wrote reprolock.lock",
    ]
    run = lock_cli("lock", "--refresh")
    assert run.out.splitlines() == [
        f"py3.11-amd64: base {world.ref}@{digest[:19]} (debian 12, glibc 2.36)",
        "py3.11-amd64: 3 apt packages",
        "unchanged: reprolock.lock",
    ]


def test_unsatisfiable_names_the_dependency_chain(
    lock_cli: LockCli, tmp_path: Path, world: World
) -> None:
    _spec(tmp_path, world, ["broken"])
    run = lock_cli("lock")
    assert run.code == 3
    assert run.err.splitlines()[0] == (
        "error: py3.11-amd64: apt cannot install the requested packages: broken 1.0 depends on "
        "missing-lib (>= 2), but no archive has missing-lib."
    )
    assert "  requested: broken" in run.err
    assert not (tmp_path / "reprolock.lock").exists()


def test_exact_version_and_unknown_package(lock_cli: LockCli, tmp_path: Path, world: World) -> None:
    # A mirror that serves a snapshot: the snapshot id is recorded in the lock.
    _spec(tmp_path, world, ["libfoo1=1.1"], 'snapshot = "20250520T000000Z"')
    run = lock_cli("lock")
    assert run.code == 0, run.err
    assert _apt(tmp_path)["libfoo1"]["version"] == "1.1"
    lock = tomllib.loads((tmp_path / "reprolock.lock").read_text())
    assert lock["targets"][0]["apt-snapshot"] == "20250520T000000Z"
    _spec(tmp_path, world, ["libfoo1=9.9"])
    run = lock_cli("lock")
    assert run.code == 3
    assert 'version "9.9" of libfoo1 is not in the archives (they have 1.3, 1.1)' in run.err


def test_bad_signature_is_refused(
    lock_cli: LockCli, tmp_path: Path, world: World, tmp_path_factory: pytest.TempPathFactory
) -> None:
    other = AptRepo(tmp_path_factory.mktemp("other") / "repo")
    other.add(Deb("tool", "1.0"))
    other.publish("bookworm", GpgKey(tmp_path_factory.mktemp("other-key") / "gnupg", "intruder"))
    with serve_repo(other.root) as url:
        _spec(tmp_path, world, ["tool"])
        spec = tmp_path / "reprolock.toml"
        spec.write_text(spec.read_text().replace(world.url, url))
        run = lock_cli("lock")
    assert run.code == 4
    assert "InRelease: the signature does not verify against the archive keys" in run.err
    assert "Refusing the archive." in run.err


def test_unsigned_archive_needs_the_opt_in(
    lock_cli: LockCli, tmp_path: Path, world: World, tmp_path_factory: pytest.TempPathFactory
) -> None:
    unsigned = AptRepo(tmp_path_factory.mktemp("unsigned") / "repo")
    unsigned.add(Deb("tool", "1.0"))
    unsigned.publish("bookworm", None)
    with serve_repo(unsigned.root) as url:
        _spec(tmp_path, world, ["tool"])
        spec = tmp_path / "reprolock.toml"
        spec.write_text(spec.read_text().replace(world.url, url))
        run = lock_cli("lock")
        assert run.code == 4
        assert "Release is not signed" in run.err
        spec.write_text(spec.read_text().replace("[registry]", "allow-unsigned = true\n[registry]"))
        run = lock_cli("lock")
        assert run.code == 0, run.err
    assert _apt(tmp_path)["tool"]["version"] == "1.0"


def test_explain_apt_shows_why_a_package_is_in_the_closure(
    lock_cli: LockCli, tmp_path: Path, world: World
) -> None:
    _spec(tmp_path, world, ["tool", "needs-new-libc"])
    assert lock_cli("lock").code == 0
    run = lock_cli("explain", "apt", "libc-bin")
    assert run.code == 0, run.err
    assert "libc-bin 2.36-9+deb12u4 for py3.11-amd64 (upgrades 2.36-9)" in run.out
    assert "keeps libc-bin working after upgrading libc6" in run.out
    run = lock_cli("explain", "apt", "w3m")  # the provider apt picks for www-browser
    assert "requested: tool" in run.out
    assert "tool 1.0 depends on www-browser" in run.out
