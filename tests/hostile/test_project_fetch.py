"""`reprolock fetch` against a hostile server: a body longer than the lock says, wrong
bytes, a full disk, an interrupted or killed download — none leaves a partial file, and
each ends in a clean error."""

from __future__ import annotations

import errno
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from reprolock.api.build_context import PARTIAL, fetch
from reprolock.api.network import NetOptions
from reprolock.errors import SourceError
from reprolock.lock import LockedBase, LockedTarget, Lockfile, PythonPackage, Wheel, dumps
from reprolock.model import Platform
from reprolock.net import http
from reprolock.net.config import NetConfig
from tests.hostile.harness import Handler, HostileServer, Sandbox, endless

TARGET = "py3.11-amd64"
NAME = "demo-1.0-py3-none-any.whl"
DATA = b"the locked wheel's bytes\n" * 1000


def lock_for(url: str, data: bytes = DATA, *, size: int | None = None) -> str:
    """A lock of one wheel at ``url`` with the sha256 (and size) of ``data``."""
    wheel = Wheel(
        filename=NAME, url=url, sha256=hashlib.sha256(data).hexdigest(), size=size or len(data)
    )
    return dumps(
        Lockfile(
            lock_version="1.1",
            created_by="reprolock test",
            inputs_hash="sha256:" + "0" * 64,
            matrices_version="test",
            targets=(
                LockedTarget(
                    id=TARGET,
                    platform=Platform.parse("linux/amd64"),
                    python="3.11",
                    base=LockedBase(ref="python:3.11-slim", manifest_digest="sha256:" + "1" * 64),
                    packages=(
                        PythonPackage(
                            name="demo",
                            version="1.0",
                            index="https://pypi.org/simple",
                            wheels=(wheel,),
                        ),
                    ),
                ),
            ),
        )
    )


def wheels(folder: Path) -> Path:
    return folder / ".reprolock" / TARGET / "wheels"


def partials(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.startswith(PARTIAL)]


def test_fetch_downloads_and_reuses(sandbox: Sandbox, hostile: HostileServer) -> None:
    hostile.route("/files/", lambda h: h.reply(200, DATA))
    (sandbox.work / "reprolock.lock").write_text(lock_for(f"{hostile.url}/files/{NAME}"))
    sandbox.check(sandbox.run("fetch", "--lock", "reprolock.lock"), [0], says=["fetched 1 file "])
    assert (wheels(sandbox.work) / NAME).read_bytes() == DATA
    sandbox.check(sandbox.run("fetch", "--lock", "reprolock.lock"), [0], says=["1 already there"])


@pytest.mark.parametrize(
    ("case", "route", "says"),
    [
        ("longer, declared", lambda h: h.reply(200, DATA + b"x" * 4096), ["longer than the"]),
        (
            "longer, undeclared",
            lambda h: h.stream(200, iter([DATA, b"more" * 100_000])),
            ["longer than the"],
        ),
        ("endless", lambda h: h.stream(200, endless(b"x" * 65536)), ["longer than the"]),
        ("wrong bytes", lambda h: h.reply(200, DATA[::-1]), ["its sha256 is", "the lock says"]),
        ("shorter", lambda h: h.reply(200, DATA[:100]), ["the lock says"]),
        ("gone", lambda h: h.reply(404, b"no"), ["HTTP 404"]),
    ],
)
def test_a_bad_download_leaves_nothing(
    sandbox: Sandbox,
    hostile: HostileServer,
    case: str,
    route: Callable[[Handler], None],
    says: list[str],
) -> None:
    hostile.route("/files/", route)
    (sandbox.work / "reprolock.lock").write_text(lock_for(f"{hostile.url}/files/{NAME}"))
    outcome = sandbox.run("fetch", "--lock", "reprolock.lock")
    sandbox.check(outcome, [4], says=says)
    assert not (wheels(sandbox.work) / NAME).exists()
    assert partials(sandbox.work) == []


def test_a_killed_fetchs_leftovers_are_swept(sandbox: Sandbox, hostile: HostileServer) -> None:
    """A SIGKILL'd fetch leaves its temporary file: the next fetch removes it."""
    hostile.route("/files/", lambda h: h.reply(200, DATA))
    (sandbox.work / "reprolock.lock").write_text(lock_for(f"{hostile.url}/files/{NAME}"))
    folder = wheels(sandbox.work)
    folder.mkdir(parents=True)
    leftover = folder / f"{PARTIAL}abc123"
    leftover.write_bytes(b"half a wheel")
    sandbox.check(sandbox.run("fetch", "--lock", "reprolock.lock"), [0])
    assert not leftover.exists()
    assert [p.name for p in folder.iterdir()] == [NAME]


def test_a_symlinked_target_folder_cannot_lead_outside(
    sandbox: Sandbox, hostile: HostileServer
) -> None:
    """A build context whose ``.reprolock/<target>`` is a link elsewhere (say, committed in a
    hostile repository) is refused."""
    hostile.route("/files/", lambda h: h.reply(200, DATA))
    (sandbox.work / "reprolock.lock").write_text(lock_for(f"{hostile.url}/files/{NAME}"))
    (sandbox.work / ".reprolock").mkdir()
    (sandbox.work / ".reprolock" / TARGET).symlink_to(sandbox.outside)
    for args in (("fetch",), ("dockerfile",)):
        outcome = sandbox.run(*args, "--lock", "reprolock.lock")
        sandbox.check(outcome, [2], says=["leads outside"])


def test_a_fifo_in_place_of_a_wheel_does_not_block(
    sandbox: Sandbox, hostile: HostileServer
) -> None:
    hostile.route("/files/", lambda h: h.reply(200, DATA))
    (sandbox.work / "reprolock.lock").write_text(lock_for(f"{hostile.url}/files/{NAME}"))
    folder = wheels(sandbox.work)
    folder.mkdir(parents=True)
    os.mkfifo(folder / NAME)
    sandbox.check(sandbox.run("fetch", "--lock", "reprolock.lock", seconds=20), [0])
    assert (folder / NAME).read_bytes() == DATA


# -- in-process: failures the sandbox cannot stage --------------------------------------------
@pytest.fixture
def served(tmp_path: Path, hostile: HostileServer) -> Path:
    hostile.route("/files/", lambda h: h.reply(200, DATA))
    lock = tmp_path / "reprolock.lock"
    lock.write_text(lock_for(f"{hostile.url}/files/{NAME}"))
    return lock


def _fetch(lock: Path) -> None:
    net = NetOptions(config=NetConfig.from_environment({}, offline=False), cache_dir=None)
    fetch(None, lock, cwd=lock.parent, target_id=None, output=None, net=net)


class _FullDisk:
    """A file whose writes fail as on a full disk after some bytes."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle
        self.written = 0

    def __enter__(self) -> _FullDisk:
        return self

    def __exit__(self, *exc: object) -> None:
        self.handle.close()

    def write(self, data: bytes) -> int:
        self.written += len(data)
        if self.written > 1000:
            raise OSError(errno.ENOSPC, "No space left on device")
        return int(self.handle.write(data))

    def flush(self) -> None:
        self.handle.flush()

    def fileno(self) -> int:
        return int(self.handle.fileno())


def test_a_full_disk_is_a_source_error_and_leaves_nothing(
    served: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = os.fdopen

    def fdopen(fd: int, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        handle = real(fd, mode, *args, **kwargs)
        return _FullDisk(handle) if mode == "wb" else handle

    monkeypatch.setattr(os, "fdopen", fdopen)
    with pytest.raises(SourceError) as info:
        _fetch(served)
    assert info.value.exit_code == 4
    assert "the disk is full" in info.value.message
    assert NAME in info.value.message
    assert partials(served.parent) == []
    assert not (wheels(served.parent) / NAME).exists()


def test_an_interrupted_download_leaves_nothing(
    served: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(self: http.Streamed) -> Iterator[bytes]:
        yield DATA[:100]
        raise KeyboardInterrupt

    monkeypatch.setattr(http.Streamed, "chunks", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _fetch(served)
    assert partials(served.parent) == []
    assert not (wheels(served.parent) / NAME).exists()


def test_a_read_only_context_is_a_source_error(
    served: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> tuple[int, str]:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(SourceError, match="Read-only file system"):
        _fetch(served)
