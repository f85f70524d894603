"""The apt layer's pure parts: sources, snapshots, Release, relations, the resolver."""

from __future__ import annotations

import pytest

from reprolock.apt.debian import Relation, compare, parse_relations, satisfies
from reprolock.apt.index import Candidate, parse_packages, parse_release
from reprolock.apt.solve import Universe, Want, solve
from reprolock.apt.sources import parse_deb822, parse_one_line, parse_sources, rewrite
from reprolock.errors import InputError, Unsatisfiable


def test_one_line_and_deb822_sources() -> None:
    one = parse_one_line(
        "# comment\ndeb [arch=amd64 signed-by=/usr/share/keyrings/k.gpg] "
        "http://deb.debian.org/debian/ bookworm main contrib\ndeb-src http://x y z\n",
        "etc/apt/sources.list",
    )
    assert [(s.uri, s.suite, s.components, s.signed_by) for s in one] == [
        (
            "http://deb.debian.org/debian",
            "bookworm",
            ("main", "contrib"),
            "/usr/share/keyrings/k.gpg",
        )
    ]
    deb822 = parse_deb822(
        "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
        "Types: deb-src\nURIs: http://x\nSuites: y\nComponents: z\n",
        "etc/apt/sources.list.d/debian.sources",
    )
    assert [s.suite for s in deb822] == ["bookworm", "bookworm-updates"]
    files = {
        "etc/apt/sources.list.d/b.list": "deb http://b/ s c\n",
        "etc/apt/sources.list": "deb http://a/ s c\n",
    }
    assert [s.uri for s in parse_sources(files)] == ["http://a", "http://b"]


def test_snapshot_and_mirror_rewrite() -> None:
    sources = parse_one_line(
        "deb http://deb.debian.org/debian bookworm main\n"
        "deb http://deb.debian.org/debian-security bookworm-security main\n"
        "deb http://archive.ubuntu.com/ubuntu jammy main\n"
        "deb https://developer.download.nvidia.com/compute/cuda/repos/ubuntu2204/x86_64 /\n",
        "sources.list",
    )
    moved, notes = rewrite(sources, snapshot="20250520T000000Z", mirror=None)
    assert [s.uri for s in moved] == [
        "https://snapshot.debian.org/archive/debian/20250520T000000Z",
        "https://snapshot.debian.org/archive/debian-security/20250520T000000Z",
        "https://snapshot.ubuntu.com/ubuntu/20250520T000000Z",
        "https://developer.download.nvidia.com/compute/cuda/repos/ubuntu2204/x86_64",
    ]
    assert "has no snapshot service" in notes[0]
    mirrored, _ = rewrite(sources[:2], snapshot=None, mirror="http://mirror.local/debian/")
    assert {s.uri for s in mirrored} == {"http://mirror.local/debian"}
    with pytest.raises(InputError, match="none of the base image's sources"):
        rewrite(sources[3:], snapshot="20250520T000000Z", mirror=None)


def test_release_fields() -> None:
    release = parse_release(
        "Suite: bookworm-backports\nCodename: bookworm-backports\nNotAutomatic: yes\n"
        "ButAutomaticUpgrades: yes\nAcquire-By-Hash: yes\n"
        "Valid-Until: Sat, 01 Jun 2024 00:00:00 UTC\nComponents: main\nArchitectures: amd64\n"
        "SHA256:\n " + "0123abcd" * 8 + " 42 main/binary-amd64/Packages.xz\n"
        " 0123abcd 42 main/binary-amd64/Packages.gz\n"  # not a sha256: left out
        " " + "0123abcd" * 8 + " 42 ../../etc/passwd\n"  # leaves the archive: left out
    )
    assert release.priority == 100 and release.by_hash
    assert release.files["main/binary-amd64/Packages.xz"].size == 42
    assert sorted(release.files) == ["main/binary-amd64/Packages.xz"]
    assert release.valid_until is not None and release.valid_until.year == 2024


def test_versions_and_relations() -> None:
    assert compare("1:1.0", "2.0") > 0 and compare("1.0~rc1", "1.0") < 0
    assert satisfies("2.36-9+deb12u4", ">=", "2.36-9") and not satisfies("1.0", ">>", "1.0")
    groups = parse_relations("a (>= 1) | b [!amd64], c:any, d [arm64]", "amd64")
    assert groups == ((Relation("a", ">=", "1"),), (Relation("c", archqual="any"),))


def _pkgs(text: str, pin: int = 500) -> list[Candidate]:
    """Stanzas as a Packages index lists them (each with its file's name, hash and size)."""
    stanzas = []
    for stanza in text.strip().split("\n\n"):
        name = stanza.split("\n", 1)[0].removeprefix("Package: ")
        stanzas.append(
            f"{stanza.strip()}\nFilename: pool/{name}.deb\nSHA256: {'ab' * 32}\nSize: 1\n"
        )
    return parse_packages("\n".join(stanzas), arch="amd64", archive="http://a", suite="s", pin=pin)


def test_malformed_package_stanzas_are_left_out() -> None:
    good = "Package: ok\nVersion: 1.0-1\nArchitecture: amd64\n"
    files = f"Filename: pool/x.deb\nSHA256: {'ab' * 32}\nSize: 10\n"
    bad = [
        "Package: ../x\nVersion: 1\nArchitecture: amd64\n" + files,
        "Package: x\nVersion: 1/2\nArchitecture: amd64\n" + files,
        "Package: x\nVersion: 1\nArchitecture: amd64\nFilename: ../../x.deb\n"
        f"SHA256: {'ab' * 32}\nSize: 1\n",
        "Package: x\nVersion: 1\nArchitecture: amd64\nFilename: /x.deb\n"
        f"SHA256: {'ab' * 32}\nSize: 1\n",
        "Package: x\nVersion: 1\nArchitecture: amd64\nFilename: x.deb\nSHA256: ../x\nSize: 1\n",
        "Package: x\nVersion: 1\nArchitecture: amd64\nFilename: x.deb\n"
        f"SHA256: {'ab' * 32}\nSize: -1\n",
    ]
    text = "\n".join([good + files, *bad])
    found = parse_packages(text, arch="amd64", archive="http://a", suite="s")
    assert [(c.name, c.url) for c in found] == [("ok", "http://a/pool/x.deb")]


def test_candidate_is_the_best_pin_then_version() -> None:
    main = _pkgs("Package: x\nVersion: 1.0\nArchitecture: amd64\n")
    backports = _pkgs("Package: x\nVersion: 2.0\nArchitecture: amd64\n", pin=100)
    universe = Universe([*main, *backports], [], "amd64")
    assert universe.candidate("x") is not None and universe.candidate("x").version == "1.0"  # type: ignore[union-attr]
    plan = solve(universe, [Want.parse("x=2.0")])
    assert plan.install["x"].version == "2.0"


def test_breaks_upgrade_the_installed_package() -> None:
    archive = _pkgs(
        "Package: new\nVersion: 1\nArchitecture: amd64\nBreaks: old (<< 2)\n\n"
        "Package: old\nVersion: 2\nArchitecture: amd64\n"
    )
    installed = _pkgs("Package: old\nVersion: 1\nArchitecture: amd64\n")
    plan = solve(Universe(archive, installed, "amd64"), [Want("new")])
    assert plan.install["old"].version == "2" and plan.upgrades["old"] == "1"
    assert plan.why["old"] == ("requested: new", "new 1 breaks old (<< 2)")


def test_conflict_apt_would_resolve_by_removal_is_refused() -> None:
    archive = _pkgs("Package: new\nVersion: 1\nArchitecture: amd64\nConflicts: old\n")
    installed = _pkgs("Package: old\nVersion: 1\nArchitecture: amd64\n")
    with pytest.raises(Unsatisfiable, match="conflicts with old 1, which apt would remove"):
        solve(Universe(archive, installed, "amd64"), [Want("new")])


def test_requesting_a_virtual_package_with_several_providers() -> None:
    archive = _pkgs(
        "Package: a\nVersion: 1\nArchitecture: amd64\nProvides: mta\n\n"
        "Package: b\nVersion: 1\nArchitecture: amd64\nProvides: mta\n"
    )
    with pytest.raises(Unsatisfiable, match="mta is a virtual package provided by a, b; name one"):
        solve(Universe(archive, [], "amd64"), [Want("mta")])
    with pytest.raises(Unsatisfiable, match="no archive has a package named nope"):
        solve(Universe(archive, [], "amd64"), [Want("nope")])


def test_versioned_virtual_dependency_needs_a_versioned_provide() -> None:
    archive = _pkgs(
        "Package: user\nVersion: 1\nArchitecture: amd64\nDepends: libapi (>= 2)\n\n"
        "Package: p1\nVersion: 1\nArchitecture: amd64\nProvides: libapi\n\n"
        "Package: p2\nVersion: 1\nArchitecture: amd64\nProvides: libapi (= 3)\n"
    )
    plan = solve(Universe(archive, [], "amd64"), [Want("user")])
    assert sorted(plan.install) == ["p2", "user"]
