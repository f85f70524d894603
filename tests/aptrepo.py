"""A real apt repository on loopback: .deb files built with dpkg-deb, indexed with
apt-ftparchive, signed with a throwaway gpg key; and apt-get itself, isolated from the host's
configuration, to check what it would install."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import threading
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests import realparts

TOOLS = ("dpkg-deb", "apt-ftparchive", "gpg", "gpgv", "apt-get")


def have_tools() -> bool:
    return not realparts.missing(TOOLS)


# Skipped on a machine without them (the reason names each missing tool and its Debian
# package); in CI (.ci/run installs them) a missing tool fails.
needs_apt_tools = realparts.needs(*TOOLS)


@dataclass(frozen=True)
class Deb:
    name: str
    version: str
    arch: str = "amd64"
    depends: str = ""
    pre_depends: str = ""
    provides: str = ""
    breaks: str = ""
    conflicts: str = ""
    multi_arch: str = ""
    priority: str = "optional"
    # (path, bytes) of the data archive beyond the README, (path, target) links,
    # (name, text) of control files (postinst, triggers …), conffiles (absolute paths)
    files: tuple[tuple[str, bytes], ...] = ()
    links: tuple[tuple[str, str], ...] = ()
    control_files: tuple[tuple[str, str], ...] = ()
    conffiles: tuple[str, ...] = ()

    def control(self) -> str:
        fields = [
            f"Package: {self.name}",
            f"Version: {self.version}",
            f"Architecture: {self.arch}",
            "Maintainer: reprolock tests <tests@example.invalid>",
            f"Priority: {self.priority}",
            "Section: misc",
        ]
        for key, value in (
            ("Pre-Depends", self.pre_depends),
            ("Depends", self.depends),
            ("Provides", self.provides),
            ("Breaks", self.breaks),
            ("Conflicts", self.conflicts),
            ("Multi-Arch", self.multi_arch),
        ):
            if value:
                fields.append(f"{key}: {value}")
        fields.append(f"Description: {self.name} for reprolock's apt tests")
        return "\n".join(fields) + "\n"

    def status(self) -> str:
        """This package as an installed dpkg status stanza."""
        lines = self.control().splitlines()
        return "\n".join([lines[0], "Status: install ok installed", *lines[1:]]) + "\n"


def build_deb(folder: Path, deb: Deb) -> Path:
    stage = folder / f".stage-{deb.name}-{deb.version}"
    (stage / "DEBIAN").mkdir(parents=True)
    (stage / "DEBIAN" / "control").write_text(deb.control())
    doc = stage / "usr" / "share" / "doc" / deb.name
    doc.mkdir(parents=True)
    (doc / "README").write_text(f"{deb.name} {deb.version}\n")
    for path, data in deb.files:
        target = stage / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        target.chmod(0o755 if data.startswith(b"#!") else 0o644)
    for path, link in deb.links:
        target = stage / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(link)
    for name, text in deb.control_files:
        (stage / "DEBIAN" / name).write_text(text)
        (stage / "DEBIAN" / name).chmod(0o755 if text.startswith("#!") else 0o644)
    if deb.conffiles:
        (stage / "DEBIAN" / "conffiles").write_text("".join(f"{c}\n" for c in deb.conffiles))
    out = folder / f"{deb.name}_{deb.version.replace(':', '%3a')}_{deb.arch}.deb"
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(stage), str(out)],
        check=True,
        capture_output=True,
    )
    shutil.rmtree(stage)
    return out


def _stop_agent(home: Path) -> None:
    """Stop the gpg-agent that signing started in ``home`` (it would outlive the tests)."""
    subprocess.run(
        ["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"],
        check=False,
        capture_output=True,
    )


class GpgKey:
    """A throwaway signing key in its own home; its gpg-agent is stopped when the key is
    dropped, or at the latest when the test session ends."""

    def __init__(self, home: Path, name: str = "reprolock test archive") -> None:
        home.mkdir(parents=True, mode=0o700)
        self.home = home
        weakref.finalize(self, _stop_agent, home)
        self._gpg(
            "--quick-gen-key", f"{name} <archive@example.invalid>", "ed25519", "sign", "never"
        )
        self.public = self._gpg("--export").stdout

    def _gpg(self, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            ["gpg", "--homedir", str(self.home), "--batch", "--yes", "--passphrase", "", *args],
            check=True,
            capture_output=True,
            input=stdin,
        )

    def clearsign(self, data: bytes) -> bytes:
        return self._gpg("--pinentry-mode", "loopback", "--clearsign", stdin=data).stdout

    def detach_sign(self, data: bytes) -> bytes:
        return self._gpg("--pinentry-mode", "loopback", "--detach-sign", stdin=data).stdout


class AptRepo:
    """``pool/`` with the debs, ``dists/<suite>/`` indexed by apt-ftparchive."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "pool" / "main").mkdir(parents=True, exist_ok=True)

    def add(self, *debs: Deb, component: str = "main") -> None:
        folder = self.root / "pool" / component
        folder.mkdir(parents=True, exist_ok=True)
        for deb in debs:
            build_deb(folder, deb)

    def publish(
        self,
        suite: str,
        key: GpgKey | None,
        *,
        components: Sequence[str] = ("main",),
        arch: str = "amd64",
        extra: dict[str, str] | None = None,
        arches: Sequence[str] = (),
    ) -> None:
        """Index and sign ``suite``: ``binary-<arch>/Packages`` for ``arch`` (or each of
        ``arches``), each listing the debs of that architecture and ``all``."""
        dists = self.root / "dists" / suite
        for component in components:
            packages = subprocess.run(
                ["apt-ftparchive", "packages", f"pool/{component}"],
                cwd=self.root,
                check=True,
                capture_output=True,
            ).stdout
            for one in arches or (arch,):
                folder = dists / component / f"binary-{one}"
                folder.mkdir(parents=True, exist_ok=True)
                data = packages
                if arches:
                    kept = [
                        s
                        for s in packages.split(b"\n\n")
                        if f"\nArchitecture: {one}\n".encode() in s or b"\nArchitecture: all\n" in s
                    ]
                    data = b"\n\n".join(s.strip(b"\n") for s in kept) + b"\n"
                (folder / "Packages").write_bytes(data)
                subprocess.run(["gzip", "-9nkf", str(folder / "Packages")], check=True)
                subprocess.run(["xz", "-kf", str(folder / "Packages")], check=True)
        options = {
            "Suite": suite,
            "Codename": suite,
            "Components": " ".join(components),
            "Architectures": " ".join(arches or (arch,)),
            **(extra or {}),
        }
        args = ["apt-ftparchive", "-o", "APT::FTPArchive::DoByHash=true"]
        for k, v in options.items():
            args += ["-o", f"APT::FTPArchive::Release::{k}={v}"]
        release = subprocess.run(
            [*args, "release", "."], cwd=dists, check=True, capture_output=True
        ).stdout
        (dists / "Release").write_bytes(release)
        for name in ("InRelease", "Release.gpg"):
            (dists / name).unlink(missing_ok=True)
        if key is not None:
            (dists / "InRelease").write_bytes(key.clearsign(release))


@contextlib.contextmanager
def serve_repo(root: Path) -> Iterator[str]:
    """Serve ``root`` over HTTP on loopback; yields the base URL."""
    handler = partial(_Quiet, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def apt_get_simulate(
    work: Path,
    *,
    status: str,
    sources: str,
    keyring: bytes,
    packages: Sequence[str],
    arch: str = "amd64",
) -> list[tuple[str, str]]:
    """What ``apt-get install --simulate --no-install-recommends`` would install: (name,
    version) for every ``Inst`` line — apt run against ``status``, isolated from the host."""
    for sub in (
        "lists/partial",
        "cache/archives/partial",
        "etc/apt.conf.d",
        "etc/sources.list.d",
        "etc/preferences.d",
        "etc/trusted.gpg.d",
        "log",
    ):
        (work / sub).mkdir(parents=True, exist_ok=True)
    (work / "status").write_text(status)
    (work / "etc" / "sources.list").write_text(sources)
    (work / "etc" / "trusted.gpg.d" / "test.gpg").write_bytes(keyring)
    (work / "apt.conf").write_text("")
    options = {
        "Dir": str(work),
        "Dir::State": str(work),
        "Dir::State::status": str(work / "status"),
        "Dir::State::Lists": str(work / "lists"),
        "Dir::Cache": str(work / "cache"),
        "Dir::Etc": str(work / "etc"),
        "Dir::Etc::SourceList": str(work / "etc" / "sources.list"),
        "Dir::Etc::SourceParts": str(work / "etc" / "sources.list.d"),
        "Dir::Etc::Parts": str(work / "etc" / "apt.conf.d"),
        "Dir::Etc::PreferencesParts": str(work / "etc" / "preferences.d"),
        "Dir::Etc::Trusted": str(work / "etc" / "trusted.gpg"),
        "Dir::Etc::TrustedParts": str(work / "etc" / "trusted.gpg.d"),
        "Dir::Log": str(work / "log"),
        "APT::Architecture": arch,
        "APT::Architectures": arch,
        "Debug::NoLocking": "1",
        "APT::Sandbox::User": "root",
        "Acquire::Languages": "none",
    }
    args = [a for k, v in options.items() for a in ("-o", f"{k}={v}")]
    env = {**os.environ, "APT_CONFIG": str(work / "apt.conf"), "LC_ALL": "C"}
    subprocess.run(["apt-get", *args, "-q", "update"], check=True, capture_output=True, env=env)
    result = subprocess.run(
        ["apt-get", *args, "-s", "-q", "install", "--no-install-recommends", *packages],
        capture_output=True,
        env=env,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(result.stdout + result.stderr)
    out = []
    for line in result.stdout.splitlines():
        if line.startswith("Inst "):
            parts = line.split()
            name = parts[1]
            # "Inst pkg [old] (new suite [arch])" or "Inst pkg (new suite [arch])"
            version = line.split("(", 1)[1].split()[0]
            out.append((name, version))
    return sorted(out)
