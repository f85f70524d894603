"""A real docker engine for tests: dockerd on a private socket, and a Debian base image.

The base is a debootstrap'd bookworm (minbase + python3-venv), imported with
``docker import``; its rootfs tarball is cached under ``~/.cache/reprolock-tests`` since
debootstrap takes about a minute.

Each engine lives in a ``rl-dockerd-*`` folder of the temporary directory; stopping it
unmounts what dockerd leaves mounted there (its network namespace) and removes the folder,
and `sweep` does the same for the folders of engines an interrupted run never stopped.
"""

from __future__ import annotations

import codecs
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

BASE_TAG = "reprolock-test/base:bookworm"
MIRROR = "http://deb.debian.org/debian"
PREFIX = "rl-dockerd-"  # the engines' folders in the temporary directory
COMMAND_SECONDS = 900  # the longest a docker command (a build, a save) may take here
STARTING_SECONDS = 600  # a folder without a pid file this young may be an engine starting


class Dockerd:
    def __init__(self, root: Path, mirrors: tuple[str, ...] = ()) -> None:
        self.root = root
        self.socket = root / "docker.sock"
        self.env = {**os.environ, "DOCKER_HOST": f"unix://{self.socket}"}
        self.log = (root / "dockerd.log").open("wb")
        self.proc = subprocess.Popen(
            [
                "dockerd",
                "--bridge=none",
                "--iptables=false",
                "--ip-masq=false",
                "--data-root",
                str(root / "data"),
                "--exec-root",
                str(root / "exec"),
                "--pidfile",
                str(root / "dockerd.pid"),
                "-H",
                f"unix://{self.socket}",
                # docker.io images (FROM python:…) come from these, as a user's mirrors do
                *(f"--registry-mirror={m}" for m in mirrors),
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while self.docker("version", check=False).returncode != 0:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                log = (root / "dockerd.log").read_text()[-2000:]
                self.stop()
                raise RuntimeError("dockerd did not start: " + log)
            time.sleep(0.3)

    def docker(
        self,
        *args: str,
        check: bool = True,
        input: bytes | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            ["docker", *args],
            env=self.env,
            capture_output=True,
            check=check,
            input=input,
            timeout=COMMAND_SECONDS,
        )

    def buildkit(
        self, context: Path, dockerfile: str, tag: str, *extra: str, network: str = "host"
    ) -> str:
        """``docker build`` with BuildKit (the daemon's own; no buildx plugin needed with the
        docker.io CLI), on the host network; returns the build log."""
        cli = "/usr/bin/docker" if Path("/usr/bin/docker").exists() else "docker"
        result = subprocess.run(
            [
                cli,
                "build",
                "--network",
                network,
                "--progress",
                "plain",
                "-f",
                str(context / dockerfile),
                "-t",
                tag,
                *extra,
                str(context),
            ],
            env={**self.env, "DOCKER_BUILDKIT": "1"},
            capture_output=True,
            text=True,
            check=False,
            timeout=COMMAND_SECONDS,
        )
        if result.returncode != 0:
            raise RuntimeError(f"docker build failed:\n{result.stderr[-4000:]}")
        return result.stderr

    def stop(self) -> None:
        """Stop dockerd, unmount what it left mounted and remove its folder."""
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self.log.close()
        remove(self.root)

    def import_base(self) -> str:
        """The Debian base image (debootstrap'd once, then cached)."""
        cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "reprolock-tests"
        tarball = cache / "bookworm-python3.tar"
        if not tarball.exists():
            cache.mkdir(parents=True, exist_ok=True)
            rootfs = self.root / "rootfs"
            subprocess.run(
                [
                    "debootstrap",
                    "--variant=minbase",
                    "--include=python3,python3-venv",
                    "bookworm",
                    str(rootfs),
                    MIRROR,
                ],
                check=True,
                capture_output=True,
                timeout=COMMAND_SECONDS,
            )
            partial = tarball.with_suffix(".partial")
            subprocess.run(
                ["tar", "-C", str(rootfs), "-cf", str(partial), "."],
                check=True,
                timeout=COMMAND_SECONDS,
            )
            partial.replace(tarball)
            shutil.rmtree(rootfs, ignore_errors=True)
        with tarball.open("rb") as data:
            subprocess.run(
                ["docker", "import", "-", BASE_TAG],
                env=self.env,
                stdin=data,
                check=True,
                capture_output=True,
                timeout=COMMAND_SECONDS,
            )
        return BASE_TAG


def import_tar(engine: Dockerd, tarball: Path, tag: str) -> str:
    """``docker import`` a rootfs tarball as ``tag``."""
    with tarball.open("rb") as data:
        subprocess.run(
            ["docker", "import", "-", tag],
            env=engine.env,
            stdin=data,
            check=True,
            capture_output=True,
            timeout=COMMAND_SECONDS,
        )
    return tag


def start(mirrors: tuple[str, ...] = ()) -> Iterator[Dockerd]:
    """A dockerd in a fresh ``rl-dockerd-*`` folder, stopped and removed afterwards (also
    when the run is interrupted with Ctrl-C: pytest finishes its fixtures then)."""
    # A short path: unix socket paths are limited to 108 bytes.
    root = Path(tempfile.mkdtemp(prefix=PREFIX))
    try:
        engine = Dockerd(root, mirrors)
    except BaseException:
        remove(root)
        raise
    try:
        yield engine
    finally:
        engine.stop()


def sweep(folder: Path | None = None) -> list[Path]:
    """Remove the ``rl-dockerd-*`` folders (and their mounts) whose dockerd is gone: what a
    killed test run left behind. An engine of a run still going is left alone."""
    removed = []
    for root in Path(folder or tempfile.gettempdir()).glob(f"{PREFIX}*"):
        if root.is_dir() and not _running(root):
            remove(root)
            removed.append(root)
    return removed


def _running(root: Path) -> bool:
    """Whether the dockerd of ``root`` runs (or may be starting: no pid file yet)."""
    try:
        pid = int((root / "dockerd.pid").read_text().strip())
    except (OSError, ValueError):
        try:
            return time.time() - root.stat().st_mtime < STARTING_SECONDS
        except OSError:
            return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"dockerd" in cmdline and os.fsencode(root) in cmdline


def mounts_under(root: Path) -> list[str]:
    """The mount points at or below ``root``, deepest first (``/proc/self/mountinfo``)."""
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return []
    top = str(root)
    points = []
    for line in lines:
        fields = line.split()
        if len(fields) > 4:
            point = codecs.decode(fields[4], "unicode_escape")  # "\040" is a space
            if point == top or point.startswith(top + "/"):
                points.append(point)
    return sorted(points, key=len, reverse=True)


def remove(root: Path) -> None:
    """Unmount what dockerd left mounted under ``root`` (``exec/netns/default``, overlays
    of a killed daemon), then delete the folder."""
    for point in mounts_under(root):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True, timeout=60)
    shutil.rmtree(root, ignore_errors=True)
