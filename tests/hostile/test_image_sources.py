"""Hostile image arguments and sources: empty names, FIFOs and devices named as archives,
a daemon that fails mid-stream, root folders holding huge or special files."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator

import pytest

from tests.hostile.harness import Sandbox
from tests.imagefiles import write_docker_archive
from tests.test_inspect import realistic_image


@pytest.mark.parametrize(
    ("argument", "says"),
    [
        ("", "the image argument is empty"),
        ("   ", "the image argument is empty"),
        ("docker-archive:", 'names no image after "docker-archive:"'),
        ("docker-archive::v1", 'names no image after "docker-archive:"'),
        ("oci: ", 'names no image after "oci:"'),
        ("dir:", 'names no image after "dir:"'),
    ],
)
def test_an_empty_image_name_is_a_usage_error(sandbox: Sandbox, argument: str, says: str) -> None:
    """Never the current folder read as a root filesystem."""
    outcome = sandbox.run("inspect", argument)
    sandbox.check(outcome, [2], says=[says])


def test_a_fifo_named_as_an_archive_is_refused_without_waiting(sandbox: Sandbox) -> None:
    os.mkfifo(sandbox.work / "fifo")
    for source in ("docker-archive:fifo", "oci-archive:fifo"):
        outcome = sandbox.run("inspect", source, seconds=20)
        sandbox.check(outcome, [4], says=["is not a regular file (a FIFO)"])


def test_a_device_named_as_an_archive_is_refused(sandbox: Sandbox) -> None:
    outcome = sandbox.run("inspect", "docker-archive:/dev/zero", seconds=20)
    sandbox.check(outcome, [4], says=["/dev/zero is not a regular file (a device)"])


# -- the docker daemon ------------------------------------------------------------------------


@contextlib.contextmanager
def fake_daemon(answer: Callable[[socket.socket], None]) -> Iterator[str]:
    """A unix socket that answers every connection with ``answer``; yields DOCKER_HOST."""
    folder = tempfile.mkdtemp(prefix="rl-daemon-")  # short: socket paths are limited
    path = os.path.join(folder, "docker.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen()

    def serve() -> None:
        while True:
            try:
                connection, _ = server.accept()
            except OSError:
                return
            with connection:
                connection.recv(65536)
                with contextlib.suppress(OSError):
                    answer(connection)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"unix://{path}"
    finally:
        server.close()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def image_tar(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("daemon") / "image.tar"
    write_docker_archive(path, realistic_image())
    return path.read_bytes()


def test_a_daemon_stream_cut_short_leaves_nothing_behind(
    sandbox: Sandbox, image_tar: bytes
) -> None:
    """The image arrives without a length and stops half-way: the spool is gone."""

    def answer(connection: socket.socket) -> None:
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-tar\r\n\r\n")
        connection.sendall(image_tar[: len(image_tar) // 2])

    with fake_daemon(answer) as host:
        outcome = sandbox.run("inspect", "docker:demo", env={"DOCKER_HOST": host})
    sandbox.check(outcome, [4], says=["docker:demo", "truncated"])


def test_a_daemon_stream_shorter_than_announced_leaves_nothing_behind(
    sandbox: Sandbox, image_tar: bytes
) -> None:
    def answer(connection: socket.socket) -> None:
        connection.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(image_tar)
            + image_tar[: len(image_tar) // 2]
        )

    with fake_daemon(answer) as host:
        outcome = sandbox.run("inspect", "docker:demo", env={"DOCKER_HOST": host})
    sandbox.check(outcome, [4], says=["docker:demo: reading the image", "ended early"])


def test_a_daemon_image_is_read_from_a_private_spool(sandbox: Sandbox, image_tar: bytes) -> None:
    def answer(connection: socket.socket) -> None:
        connection.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(image_tar) + image_tar
        )

    with fake_daemon(answer) as host:
        outcome = sandbox.run("inspect", "docker:demo", env={"DOCKER_HOST": host})
    sandbox.check(outcome, [0], says=["docker:demo", "dpkg: 3 packages"])


def test_a_daemon_error_is_shown_short_and_printable(sandbox: Sandbox) -> None:
    def answer(connection: socket.socket) -> None:
        body = b"\x1b[2Jbad\n" + b"x" * (10 << 20)
        connection.sendall(b"HTTP/1.1 500 Oops\r\nContent-Length: %d\r\n\r\n" % len(body))
        connection.sendall(body)

    with fake_daemon(answer) as host:
        outcome = sandbox.run("inspect", "docker:demo", env={"DOCKER_HOST": host})
    sandbox.check(outcome, [4], says=["the daemon answered 500: [2Jbad xxx", "xxx…"])
    assert len(outcome.err) < 1000
    assert "\x1b" not in outcome.err


# -- dir: -------------------------------------------------------------------------------------


def test_a_root_folder_is_read_in_bounded_pieces(sandbox: Sandbox) -> None:
    """A 600 MiB (sparse) file under site-packages is hashed as a stream, a FIFO is not
    opened, links out of the folder are not followed, and a catalogued file over its cap
    is refused by name."""
    root = sandbox.work / "root"
    site = root / "usr/lib/python3/dist-packages"
    site.mkdir(parents=True)
    with (site / "huge.so").open("wb") as huge:
        huge.truncate(600 << 20)
    (root / "etc").mkdir()
    os.mkfifo(root / "etc/os-release")
    (root / "etc/passwd").symlink_to(sandbox.outside / "sentinel")
    outcome = sandbox.run("--format", "json", "inspect", "dir:root")
    sandbox.check(outcome, [0])
    data = json.loads(outcome.out)
    assert data["os"] is None
    status = root / "var/lib/dpkg/status"
    status.parent.mkdir(parents=True)
    with status.open("wb") as big:
        big.truncate(40 << 20)
    outcome = sandbox.run("inspect", "dir:root")
    sandbox.check(
        outcome,
        [4],
        says=["/var/lib/dpkg/status, a file reprolock reads to catalog the image, exceeds"],
    )
