"""A real docker engine for tests: dockerd on a private socket, and a Debian base image.

The base is a debootstrap'd bookworm (minbase + python3-venv), imported with
``docker import``; its rootfs tarball is cached under ``~/.cache/reprolock-tests`` since
debootstrap takes about a minute.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

BASE_TAG = "reprolock-test/base:bookworm"
MIRROR = "http://deb.debian.org/debian"


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
                raise RuntimeError(
                    "dockerd did not start: " + (root / "dockerd.log").read_text()[-2000:]
                )
            time.sleep(0.3)

    def docker(
        self,
        *args: str,
        check: bool = True,
        input: bytes | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            ["docker", *args], env=self.env, capture_output=True, check=check, input=input
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
        )
        if result.returncode != 0:
            raise RuntimeError(f"docker build failed:\n{result.stderr[-4000:]}")
        return result.stderr

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        shutil.rmtree(self.root, ignore_errors=True)

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
            )
            partial = tarball.with_suffix(".partial")
            subprocess.run(["tar", "-C", str(rootfs), "-cf", str(partial), "."], check=True)
            partial.replace(tarball)
            shutil.rmtree(rootfs, ignore_errors=True)
        with tarball.open("rb") as data:
            subprocess.run(
                ["docker", "import", "-", BASE_TAG],
                env=self.env,
                stdin=data,
                check=True,
                capture_output=True,
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
        )
    return tag


def available() -> bool:
    return (
        all(shutil.which(tool) for tool in ("dockerd", "docker", "debootstrap"))
        and os.geteuid() == 0
    )


def start(root: Path, mirrors: tuple[str, ...] = ()) -> Iterator[Dockerd]:
    engine = Dockerd(root, mirrors)
    try:
        yield engine
    finally:
        engine.stop()
