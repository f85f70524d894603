"""Hostile Python indexes: what a PEP 691/503 server sends must not write files, take
memory or time beyond the limits, leak credentials, or poison the cache."""

from __future__ import annotations

import base64
import hashlib
import json
import stat
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.hostile.harness import Handler, HostileServer, Sandbox, endless
from tests.pyindex import build_wheel

JSON = "application/vnd.pypi.simple.v1+json"


def spec(sandbox: Sandbox, index: str, requirements: str = '"demo"') -> None:
    (sandbox.work / "reprolock.toml").write_text(
        '[environment]\npython = "3.11"\n\n'
        f"[python]\nrequirements = [{requirements}]\n\n"
        f'[[python.index]]\nname = "hostile"\nurl = "{index}"\ndefault = true\n'
    )


def page(files: list[dict[str, object]]) -> bytes:
    return json.dumps({"meta": {"api-version": "1.1"}, "name": "demo", "files": files}).encode()


def entry(filename: str, data: bytes, **extra: object) -> dict[str, object]:
    return {
        "filename": filename,
        "url": f"../../files/{filename}",
        "hashes": {"sha256": hashlib.sha256(data).hexdigest()},
        "size": len(data),
        **extra,
    }


def serve_page(server: HostileServer, body: bytes, content_type: str = JSON) -> None:
    server.route("/simple/", lambda h: h.reply(200, body, content_type))


def serve_file(server: HostileServer, name: str, data: bytes) -> None:
    """The file, and no PEP 658 metadata beside it (routes match by longest prefix)."""
    server.route(f"/files/{name}", lambda h: h.reply(200, data))
    no_metadata(server, name)


def no_metadata(server: HostileServer, name: str) -> None:
    server.route(f"/files/{name}.metadata", lambda h: h.reply(404, b""))


@pytest.fixture
def wheel(tmp_path: Path) -> tuple[str, bytes]:
    path = build_wheel(tmp_path, "demo", "1.0")
    return path.name, path.read_bytes()


# -- 1. the index's hashes are never paths -------------------------------------------------------
@pytest.mark.parametrize("claim", ["{outside}/evil", "../../../../outside/evil", "ab/../../evil"])
def test_index_hash_cannot_name_a_cache_path(
    sandbox: Sandbox, hostile: HostileServer, wheel: tuple[str, bytes], claim: str
) -> None:
    name, data = wheel
    bad = entry(name, data, **{"core-metadata": True})
    bad["hashes"] = {"sha256": claim.format(outside=sandbox.outside)}
    serve_page(hostile, page([bad]))
    serve_file(hostile, name, data)
    hostile.route(f"/files/{name}.metadata", lambda h: h.reply(200, b"Name: demo\n"))
    spec(sandbox, f"{hostile.url}/simple")
    outcome = sandbox.run("lock")
    sandbox.check(outcome, [4], says=["is malformed", "is not 64 hex digits"])
    assert not (sandbox.work / "reprolock.lock").exists()
    assert not any("evil" in p.name for p in sandbox.root.rglob("*"))


# -- 4. bombs and endless bodies ---------------------------------------------------------------
def _metadata_bomb(folder: Path, size: int) -> bytes:
    """A wheel whose METADATA member inflates to ``size`` bytes (written streaming)."""
    path = folder / "demo-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("demo/__init__.py", b"")
        with archive.open("demo-1.0.dist-info/METADATA", "w", force_zip64=True) as member:
            member.write(b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n")
            block = b"Requires-Dist: x\n" * (1 << 16)
            for _ in range(size // len(block)):
                member.write(block)
        archive.writestr("demo-1.0.dist-info/WHEEL", b"Wheel-Version: 1.0\n")
        archive.writestr("demo-1.0.dist-info/RECORD", b"")
    return path.read_bytes()


@pytest.fixture(scope="module")
def metadata_bomb(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return _metadata_bomb(tmp_path_factory.mktemp("bomb"), 1 << 30)


def test_metadata_bomb_in_a_wheel_is_cut_off(
    sandbox: Sandbox, hostile: HostileServer, metadata_bomb: bytes
) -> None:
    """A ~1 MB wheel whose METADATA inflates to 1 GiB (once 11 GB of RAM and a 1 GiB cache
    file): read through range requests, cut at the metadata cap, nothing cached."""
    name = "demo-1.0-py3-none-any.whl"
    assert len(metadata_bomb) < 4 << 20
    serve_page(hostile, page([entry(name, metadata_bomb)]))

    def ranged(handler: Handler) -> None:
        wanted = handler.headers.get("Range", "")
        size = len(metadata_bomb)
        if wanted.startswith("bytes=-"):
            start, end = max(0, size - int(wanted[7:])), size - 1
        elif wanted.startswith("bytes="):
            first, _, last = wanted[6:].partition("-")
            start, end = int(first), min(size - 1, int(last))
        else:
            handler.reply(200, metadata_bomb)
            return
        handler.reply(
            206,
            metadata_bomb[start : end + 1],
            headers={"Content-Range": f"bytes {start}-{end}/{size}"},
        )

    hostile.route(f"/files/{name}", ranged)
    no_metadata(hostile, name)
    spec(sandbox, f"{hostile.url}/simple")
    outcome = sandbox.run("lock")
    sandbox.check(outcome, [4], says=["METADATA", "exceeds reprolock's limit of 16 MiB"])
    largest = max((p.stat().st_size for p in sandbox.cache.rglob("*") if p.is_file()), default=0)
    assert largest < 4 << 20


def test_metadata_bomb_without_range_support(
    sandbox: Sandbox, hostile: HostileServer, metadata_bomb: bytes
) -> None:
    """The same wheel from a server without range support: spooled to a private file that
    is gone afterwards, still cut at the cap."""
    name = "demo-1.0-py3-none-any.whl"
    serve_page(hostile, page([entry(name, metadata_bomb)]))
    serve_file(hostile, name, metadata_bomb)
    spec(sandbox, f"{hostile.url}/simple")
    outcome = sandbox.run("lock")
    sandbox.check(outcome, [4], says=["exceeds reprolock's limit of 16 MiB"])


def test_endless_page_is_cut_at_the_page_cap(sandbox: Sandbox, hostile: HostileServer) -> None:
    hostile.route("/simple/", lambda h: h.stream(200, endless(b"x" * 65536), JSON))
    spec(sandbox, f"{hostile.url}/simple")
    outcome = sandbox.run("lock")
    sandbox.check(outcome, [4], says=["exceeds reprolock's limit of 64 MiB", "PAGE_BYTES"])


def test_declared_length_beyond_the_cap_is_refused_at_once(
    sandbox: Sandbox, hostile: HostileServer
) -> None:
    def huge(handler: Handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", JSON)
        handler.send_header("Content-Length", str(1 << 40))
        handler.end_headers()

    hostile.route("/simple/", huge)
    spec(sandbox, f"{hostile.url}/simple")
    outcome = sandbox.run("lock")
    sandbox.check(outcome, [4], says=["the server declares 1099511627776 bytes"])
    assert outcome.seconds < 15


@pytest.mark.parametrize("where", ["body", "headers"])
def test_a_dripping_server_is_cut_off(sandbox: Sandbox, hostile: HostileServer, where: str) -> None:
    """One byte every 2 s: each read succeeds, so only an overall deadline stops it."""

    def drip(handler: Handler) -> None:
        handler.wfile.write(b"HTTP/1.1 200 OK\r\n")
        if where == "headers":
            for _ in range(100):
                handler.wfile.write(b"X: 1\r\n")
                handler.wfile.flush()
                import time

                time.sleep(2)
            return
        handler.wfile.write(f"Content-Type: {JSON}\r\nConnection: close\r\n\r\n".encode())
        handler.wfile.flush()
        for chunk in endless(b"{", delay=2):
            handler.wfile.write(chunk)
            handler.wfile.flush()

    hostile.route("/simple/", drip)
    spec(sandbox, f"{hostile.url}/simple")
    outcome = sandbox.run("lock", env={"REPROLOCK_LIMIT_REQUEST_SECONDS": "4"})
    says = "cut off after" if where == "body" else "no response from"
    sandbox.check(outcome, [4], says=[says])
    assert outcome.seconds < 20


def test_a_dripping_page_is_cut_off_with_the_default_limits(
    sandbox: Sandbox, hostile: HostileServer
) -> None:
    hostile.route("/simple/", lambda h: h.stream(200, endless(b" ", delay=5), JSON))
    spec(sandbox, f"{hostile.url}/simple")
    outcome = sandbox.run("lock")
    sandbox.check(outcome, [4], says=["cut off after"])
    assert outcome.seconds < 60


# -- 8. Retry-After is honoured within a cap -----------------------------------------------------
def test_retry_after_is_capped(sandbox: Sandbox, hostile: HostileServer) -> None:
    hostile.route("/simple/", lambda h: h.reply(503, b"busy", headers={"Retry-After": "40"}))
    spec(sandbox, f"{hostile.url}/simple")
    outcome = sandbox.run("lock")
    sandbox.check(outcome, [4], says=["answered 503"])
    assert outcome.seconds < 35
    assert len([p for p, _ in hostile.requests if p.startswith("/simple/")]) == 5


# -- 9. malformed pages and headers are source errors, never crashes ---------------------------
MALFORMED: dict[str, bytes] = {
    "not-json": b"{",
    "not-an-object": b"[1, 2]",
    "files-not-a-list": b'{"files": {"a": 1}}',
    "entry-not-an-object": b'{"files": [1]}',
    "hashes-not-an-object": b'{"files": [{"filename": "demo-1.0-py3-none-any.whl", '
    b'"url": "x.whl", "hashes": "abc"}]}',
    "url-missing": b'{"files": [{"filename": "demo-1.0-py3-none-any.whl", "hashes": {}}]}',
    "url-not-http": b'{"files": [{"filename": "demo-1.0-py3-none-any.whl", '
    b'"url": "file:///etc/passwd", "hashes": {}}]}',
    "deeply-nested": b'{"files": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    "metadata-hash": b'{"files": [{"filename": "demo-1.0-py3-none-any.whl", "url": "x.whl", '
    b'"hashes": {}, "core-metadata": {"sha256": 5}}]}',
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_json_pages(sandbox: Sandbox, hostile: HostileServer, case: str) -> None:
    serve_page(hostile, MALFORMED[case])
    spec(sandbox, f"{hostile.url}/simple")
    outcome = sandbox.run("lock")
    sandbox.check(outcome, [4], says=["is malformed"])


def test_html_page_with_hostile_links_is_read_safely(
    sandbox: Sandbox, hostile: HostileServer, wheel: tuple[str, bytes]
) -> None:
    """Links whose names could be paths or whose URLs are not http(s) are not files."""
    name, data = wheel
    body = (
        "<html><body>"
        '<a href="file:///etc/passwd">demo-1.0-py3-none-any.whl</a>'
        '<a href="/files/x#sha256=../../x">../../demo-1.0-py3-none-any.whl</a>'
        f'<a href="/files/{name}#sha256={hashlib.sha256(data).hexdigest()}">{name}</a>'
        "</body></html>"
    ).encode()
    serve_page(hostile, body, "text/html")
    serve_file(hostile, name, data)
    spec(sandbox, f"{hostile.url}/simple")
    outcome = sandbox.run("lock")
    sandbox.check(outcome, [0])
    assert f'filename = "{name}"' in (sandbox.work / "reprolock.lock").read_text()


def _no_pep658(server: HostileServer, name: str, data: bytes, content_range: str) -> None:
    serve_page(server, page([entry(name, data)]))
    server.route(
        f"/files/{name}",
        lambda h: h.reply(206, data[-100:], headers={"Content-Range": content_range}),
    )
    no_metadata(server, name)


@pytest.mark.parametrize(
    "content_range", ["bytes x-y/abc", "bytes 0-99/99999999999999999999999", "bytes 5-1/10", ""]
)
def test_malformed_content_range(
    sandbox: Sandbox, hostile: HostileServer, wheel: tuple[str, bytes], content_range: str
) -> None:
    name, data = wheel
    _no_pep658(hostile, name, data, content_range)
    spec(sandbox, f"{hostile.url}/simple")
    outcome = sandbox.run("lock")
    sandbox.check(outcome, [4], says=["Content-Range"])


def test_metadata_of_another_project_is_refused(
    sandbox: Sandbox, hostile: HostileServer, wheel: tuple[str, bytes]
) -> None:
    name, data = wheel
    serve_page(hostile, page([entry(name, data, **{"core-metadata": True})]))
    serve_file(hostile, name, data)
    hostile.route(
        f"/files/{name}.metadata",
        lambda h: h.reply(200, b"Metadata-Version: 2.1\nName: other\nVersion: 9\n"),
    )
    spec(sandbox, f"{hostile.url}/simple")
    outcome = sandbox.run("lock")
    sandbox.check(outcome, [4], says=["describes other 9, not that wheel"])


# -- 5. credentials ------------------------------------------------------------------------------
def _serve_wheel(server: HostileServer, name: str, data: bytes) -> None:
    serve_page(server, page([entry(name, data)]))
    serve_file(server, name, data)


def test_index_credentials_never_reach_the_cache(
    sandbox: Sandbox, hostile: HostileServer, wheel: tuple[str, bytes]
) -> None:
    name, data = wheel
    _serve_wheel(hostile, name, data)
    spec(sandbox, f"http://someone:hunter2-secret@{hostile.url.removeprefix('http://')}/simple")
    outcome = sandbox.run("lock")
    sandbox.check(outcome, [0])
    assert any(
        h.get("Authorization") == "Basic " + base64.b64encode(b"someone:hunter2-secret").decode()
        for _, h in hostile.requests
    )
    for path in [sandbox.cache, *sandbox.cache.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        if path.is_dir():
            assert mode == 0o700, path
        else:
            assert mode == 0o600, path
            assert b"hunter2" not in path.read_bytes(), path
    assert "hunter2" not in (sandbox.work / "reprolock.lock").read_text()


def test_netrc_does_not_override_the_url_credentials(
    sandbox: Sandbox, hostile: HostileServer, wheel: tuple[str, bytes]
) -> None:
    name, data = wheel
    _serve_wheel(hostile, name, data)
    netrc = sandbox.home / ".netrc"
    netrc.write_text("machine 127.0.0.1 login netrc-user password netrc-pass\n")
    netrc.chmod(0o600)
    spec(sandbox, f"http://url-user:url-pass@{hostile.url.removeprefix('http://')}/simple")
    outcome = sandbox.run("lock")
    sandbox.check(outcome, [0])
    sent = {h.get("Authorization") for p, h in hostile.requests if p.startswith("/simple/")}
    assert sent == {"Basic " + base64.b64encode(b"url-user:url-pass").decode()}


def test_netrc_is_used_where_no_credential_is_given(
    sandbox: Sandbox, hostile: HostileServer, wheel: tuple[str, bytes]
) -> None:
    name, data = wheel
    _serve_wheel(hostile, name, data)
    netrc = sandbox.home / ".netrc"
    netrc.write_text("machine 127.0.0.1 login netrc-user password netrc-pass\n")
    netrc.chmod(0o600)
    spec(sandbox, f"{hostile.url}/simple")
    sandbox.check(sandbox.run("lock"), [0])
    sent = {h.get("Authorization") for p, h in hostile.requests if p.startswith("/simple/")}
    assert sent == {"Basic " + base64.b64encode(b"netrc-user:netrc-pass").decode()}


def test_credentials_are_not_sent_over_plain_http_to_another_host(sandbox: Sandbox) -> None:
    spec(sandbox, "http://user:secret@index.example.invalid/simple")
    outcome = sandbox.run("lock")
    sandbox.check(outcome, [2], says=["sends credentials over plain http to another machine"])
    assert "secret" not in outcome.text


# -- 6. the cache cannot be poisoned, and damage is a miss ---------------------------------------
def test_a_hostile_index_cannot_poison_the_cache_for_another(
    sandbox: Sandbox, tmp_path: Path, wheel: tuple[str, bytes]
) -> None:
    """A hostile index lists the real wheel's sha256 with metadata of its own (an extra
    dependency). A later run against the honest index gets the honest metadata."""
    name, data = wheel
    honest, evil = HostileServer(), HostileServer()
    try:
        _serve_wheel(honest, name, data)
        forged = entry(name, data, **{"core-metadata": True})
        serve_page(evil, page([forged]))
        evil.route(
            f"/files/{name}.metadata",
            lambda h: h.reply(
                200, b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\nRequires-Dist: evil\n"
            ),
        )
        evil.route("/simple/evil/", lambda h: h.reply(200, page([]), JSON))
        spec(sandbox, f"{evil.url}/simple")
        first = sandbox.run("lock")
        sandbox.check(first, [3], says=["evil"])
        spec(sandbox, f"{honest.url}/simple")
        second = sandbox.run("lock")
        sandbox.check(second, [0])
        assert "evil" not in (sandbox.work / "reprolock.lock").read_text()
    finally:
        honest.stop()
        evil.stop()


def test_damaged_cache_entries_are_misses(
    sandbox: Sandbox, hostile: HostileServer, wheel: tuple[str, bytes]
) -> None:
    name, data = wheel
    _serve_wheel(hostile, name, data)
    spec(sandbox, f"{hostile.url}/simple")
    sandbox.check(sandbox.run("lock"), [0])
    lock = (sandbox.work / "reprolock.lock").read_text()
    (sandbox.work / "reprolock.lock").unlink()
    damage: list[Callable[[Path], object]] = [
        lambda p: p.write_bytes(b"\x00garbage" * 100),
        lambda p: p.write_bytes(b""),
        lambda p: p.write_text('{"sha256": 5, "content-type": []}'),
        lambda p: p.write_text("[" * 100_000),
    ]
    pages = sorted(sandbox.cache.glob("http/*.json"))
    assert pages
    for path in pages:  # page records of the wrong shape (once an internal error)
        path.write_text("[1]")
    sandbox.check(sandbox.run("--offline", "lock"), [4], says=["--offline"])
    files = sorted(p for p in sandbox.cache.rglob("*") if p.is_file())
    assert files
    for i, path in enumerate(files):
        damage[i % len(damage)](path)
    hostile.requests.clear()
    outcome = sandbox.run("--offline", "lock")
    sandbox.check(outcome, [4], says=["--offline"])
    sandbox.check(sandbox.run("lock"), [0])
    assert (sandbox.work / "reprolock.lock").read_text() == lock
    assert any(p.startswith("/simple/") for p, _ in hostile.requests)  # fetched again


def test_unwritable_cache_costs_only_speed(
    sandbox: Sandbox, hostile: HostileServer, wheel: tuple[str, bytes]
) -> None:
    name, data = wheel
    _serve_wheel(hostile, name, data)
    spec(sandbox, f"{hostile.url}/simple")
    blocker = sandbox.root / "cache-is-a-file"
    blocker.write_text("not a folder\n")
    outcome = sandbox.run("lock", env={"REPROLOCK_CACHE_DIR": str(blocker / "cache")})
    sandbox.check(outcome, [0])
    assert blocker.read_text() == "not a folder\n"


def test_full_disk_is_a_clean_error_and_keeps_the_old_lock(
    sandbox: Sandbox, hostile: HostileServer, wheel: tuple[str, bytes]
) -> None:
    """Every write beyond 1 KiB fails (EFBIG, as on a full disk): the cache is skipped,
    the lock cannot be written, the old lock survives whole and no temporary is left."""
    name, data = wheel
    _serve_wheel(hostile, name, data)
    spec(sandbox, f"{hostile.url}/simple")
    sandbox.check(sandbox.run("lock"), [0])
    old = (sandbox.work / "reprolock.lock").read_text()
    spec_file = sandbox.work / "reprolock.toml"
    spec_file.write_text(
        spec_file.read_text().replace(
            'python = "3.11"', 'python = "3.11"\nplatforms = ["linux/amd64", "linux/arm64"]'
        )
    )
    outcome = sandbox.run("lock", file_size=1024)
    sandbox.check(outcome, [4], says=["cannot write", "reprolock.lock"])
    assert (sandbox.work / "reprolock.lock").read_text() == old
    assert sorted(p.name for p in sandbox.work.iterdir()) == ["reprolock.lock", "reprolock.toml"]


def test_killed_writers_leave_nothing_behind(
    sandbox: Sandbox, hostile: HostileServer, wheel: tuple[str, bytes]
) -> None:
    """Temporary files of a killed run (old enough) are swept when the cache is written."""
    import os

    name, data = wheel
    _serve_wheel(hostile, name, data)
    spec(sandbox, f"{hostile.url}/simple")
    sandbox.check(sandbox.run("lock"), [0])
    folders = {p.parent for p in sandbox.cache.rglob("*") if p.is_file()}
    stale = []
    for folder in folders:
        leftover = folder / ".entry.12345.678.tmp"
        leftover.write_bytes(b"partial")
        os.utime(leftover, (1, 1))
        stale.append(leftover)
    (sandbox.work / "reprolock.lock").unlink()
    for path in sandbox.cache.rglob("*"):
        if path.is_file() and not path.name.endswith(".tmp"):
            path.unlink()
    sandbox.check(sandbox.run("lock"), [0])
    assert not [p for p in stale if p.exists()]


def test_compressed_page_is_bounded_after_decoding(
    sandbox: Sandbox, hostile: HostileServer
) -> None:
    """A gzip Content-Encoding bomb: the cap counts decoded bytes."""
    raw = b" " * (300 << 20)
    bomb = zlib.compress(raw, 9)
    del raw
    hostile.route(
        "/simple/",
        lambda h: h.reply(200, bomb, JSON, headers={"Content-Encoding": "deflate"}),
    )
    spec(sandbox, f"{hostile.url}/simple")
    outcome = sandbox.run("lock")
    sandbox.check(outcome, [4], says=["exceeds reprolock's limit of 64 MiB"])
