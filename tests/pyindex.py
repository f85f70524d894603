"""A real loopback Python index serving real wheels built by the tests.

Each index is mounted at ``/<name>/simple/`` and can speak PEP 691 JSON
and/or PEP 503 HTML, advertise PEP 658 metadata or not, and answer range
requests or not — the variations real indexes have.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import html
import json
import threading
import time
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

from packaging.utils import canonicalize_name, parse_sdist_filename, parse_wheel_filename


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode()


def build_wheel(
    folder: Path,
    name: str,
    version: str,
    *,
    requires: Sequence[str] = (),
    extras: dict[str, Sequence[str]] | None = None,
    requires_python: str | None = None,
    tag: str = "py3-none-any",
    payload: int = 0,
    extra_files: dict[str, bytes] | None = None,
    metadata: bytes | None = None,
) -> Path:
    """Write a valid wheel; ``payload`` bytes of incompressible data make it large;
    ``extra_files`` are added as they are (e.g. a shared object with CUDA kernels);
    ``metadata`` replaces the METADATA written from the other arguments (a real one)."""
    dist = name.replace("-", "_")
    info = f"{dist}-{version}.dist-info"
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    if requires_python:
        lines.append(f"Requires-Python: {requires_python}")
    lines += [f"Requires-Dist: {r}" for r in requires]
    for extra, reqs in (extras or {}).items():
        lines.append(f"Provides-Extra: {extra}")
        for r in reqs:
            marker = f'extra == "{extra}"'
            lines.append(
                f"Requires-Dist: {r} and {marker}" if ";" in r else f"Requires-Dist: {r}; {marker}"
            )
    files: dict[str, bytes] = {
        f"{dist}/__init__.py": f'__version__ = "{version}"\n'.encode(),
        f"{info}/METADATA": metadata or ("\n".join(lines) + "\n\n").encode(),
        f"{info}/WHEEL": (
            f"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: {tag}\n"
        ).encode(),
    }
    files.update(extra_files or {})
    if payload:
        files[f"{dist}/blob.bin"] = hashlib.sha512(name.encode()).digest() * (payload // 64 + 1)
    record = "".join(f"{p},{_record_hash(d)},{len(d)}\n" for p, d in files.items())
    files[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode()
    path = folder / f"{dist}-{version}-{tag}.whl"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for member in sorted(files, key=lambda m: (m.startswith(info), m)):
            archive.writestr(zipfile.ZipInfo(member, (2020, 1, 1, 0, 0, 0)), files[member])
    return path


def build_sdist(folder: Path, name: str, version: str) -> Path:
    path = folder / f"{name.replace('-', '_')}-{version}.tar.gz"
    import io
    import tarfile

    with tarfile.open(path, "w:gz") as tar:
        data = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
        member = tarfile.TarInfo(f"{name}-{version}/PKG-INFO")
        member.size = len(data)
        tar.addfile(member, io.BytesIO(data))
    return path


@dataclass
class Index:
    """One index's files and the way it serves them."""

    name: str
    folder: Path
    formats: tuple[str, ...] = ("json", "html")
    pep658: str = "advertised"  # "advertised", "hidden" (served, not listed) or "none"
    ranges: bool = True
    hashes: bool = True
    etags: bool = False  # send ETags on pages and answer If-None-Match with 304
    yanked: dict[str, str] = field(default_factory=dict)  # filename -> reason
    uploaded: dict[str, dt.datetime] = field(default_factory=dict)
    requires_python: dict[str, str] = field(default_factory=dict)
    slow: float = 0.0  # seconds over which a whole file's bytes are spread (a slow mirror)
    range_delay: float = 0.0  # seconds before a range request is answered (ranges upstream)
    # file name -> another: the first is answered only once the second has been asked for
    # (or after `HOLD_SECONDS`), to check that requests are made together, not in turn
    hold_until: dict[str, str] = field(default_factory=dict)

    def add(
        self,
        path: Path,
        *,
        yanked: str | None = None,
        uploaded: dt.datetime | None = None,
        requires_python: str | None = None,
    ) -> Path:
        target = self.folder / path.name
        if path != target:
            target.write_bytes(path.read_bytes())
        if yanked is not None:
            self.yanked[path.name] = yanked
        self.uploaded[path.name] = uploaded or dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
        if requires_python:
            self.requires_python[path.name] = requires_python
        return target

    def wheel(self, name: str, version: str, **kwargs: object) -> Path:
        options = {k: kwargs.pop(k) for k in ("yanked", "uploaded") if k in kwargs}
        path = build_wheel(self.folder, name, version, **kwargs)  # type: ignore[arg-type]
        rp = kwargs.get("requires_python")
        return self.add(path, requires_python=rp if isinstance(rp, str) else None, **options)  # type: ignore[arg-type]

    def projects(self) -> dict[str, list[Path]]:
        out: dict[str, list[Path]] = {}
        for path in sorted(self.folder.iterdir()):
            if path.name.endswith(".whl"):
                name = parse_wheel_filename(path.name)[0]
            elif path.name.endswith(".tar.gz"):
                name = parse_sdist_filename(path.name)[0]
            else:
                continue
            out.setdefault(name, []).append(path)
        return out


class _Handler(BaseHTTPRequestHandler):
    server: IndexServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.server.log.append((self.path, self.headers.get("Range"), self.headers.get("Accept")))
        parts = [unquote(p) for p in self.path.split("?")[0].strip("/").split("/")]
        index = self.server.indexes.get(parts[0]) if parts else None
        if index is None:
            self._send(404, b"not found", "text/plain")
            return
        if parts[1:2] == ["simple"] and len(parts) == 3:
            self._page(index, canonicalize_name(parts[2]))
        elif len(parts) == 2 and parts[1] not in ("simple", "files"):
            # A root-style index (as download.pytorch.org/whl/cu124 is): /<index>/<project>/
            self._page(index, canonicalize_name(parts[1]), up="../")
        elif parts[1:2] == ["files"] and len(parts) == 3:
            self._file(index, parts[2])
        else:
            self._send(404, b"not found", "text/plain")

    def _page(self, index: Index, project: str, up: str = "../../") -> None:
        files = index.projects().get(project)
        if files is None:
            self._send(404, b"no such project", "text/plain")
            return
        accept = self.headers.get("Accept", "")
        if "json" in index.formats and "application/vnd.pypi.simple.v1+json" in accept:
            body, kind = (
                self._json(index, project, files, up),
                "application/vnd.pypi.simple.v1+json",
            )
        elif "html" in index.formats:
            body, kind = self._html(index, files, up), "text/html"
        else:
            self._send(406, b"json only", "text/plain")
            return
        if index.etags:
            etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
            if self.headers.get("If-None-Match") == etag:
                self.server.responses.append((self.path, None, 304))
                self.send_response(304)
                self.send_header("ETag", etag)
                self.end_headers()
                return
            self._send(200, body, kind, {"ETag": etag})
        else:
            self._send(200, body, kind)

    @staticmethod
    def _digest(path: Path) -> str:
        return hashlib.sha256(path.read_bytes()).hexdigest()

    def _metadata_bytes(self, path: Path) -> bytes:
        with zipfile.ZipFile(path) as archive:
            name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
            return archive.read(name)

    def _json(self, index: Index, project: str, files: list[Path], up: str) -> bytes:
        entries = []
        for path in files:
            entry: dict[str, object] = {
                "filename": path.name,
                "url": f"{up}files/{path.name}",
                "hashes": {"sha256": self._digest(path)} if index.hashes else {},
                "size": path.stat().st_size,
                "upload-time": index.uploaded.get(path.name, dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
                .isoformat()
                .replace("+00:00", "Z"),
                "yanked": index.yanked.get(path.name, False) or (path.name in index.yanked),
            }
            if path.name in index.requires_python:
                entry["requires-python"] = index.requires_python[path.name]
            if index.pep658 == "advertised" and path.name.endswith(".whl"):
                entry["core-metadata"] = {
                    "sha256": hashlib.sha256(self._metadata_bytes(path)).hexdigest()
                }
            entries.append(entry)
        return json.dumps(
            {"meta": {"api-version": "1.1"}, "name": project, "files": entries}
        ).encode()

    def _html(self, index: Index, files: list[Path], up: str) -> bytes:
        rows = []
        for path in files:
            attrs = ""
            if path.name in index.requires_python:
                attrs += f' data-requires-python="{html.escape(index.requires_python[path.name])}"'
            if path.name in index.yanked:
                attrs += f' data-yanked="{html.escape(index.yanked[path.name])}"'
            if index.pep658 == "advertised" and path.name.endswith(".whl"):
                digest = hashlib.sha256(self._metadata_bytes(path)).hexdigest()
                attrs += f' data-core-metadata="sha256={digest}"'
            fragment = f"#sha256={self._digest(path)}" if index.hashes else ""
            rows.append(f'<a href="{up}files/{path.name}{fragment}"{attrs}>{path.name}</a><br/>')
        return ("<!DOCTYPE html><html><body>\n" + "\n".join(rows) + "\n</body></html>").encode()

    def _file(self, index: Index, filename: str) -> None:
        self.server.asked(filename)
        awaited = index.hold_until.get(filename)
        if awaited is not None:
            self.server.held.append((filename, self.server.wait_for(awaited)))
        if filename.endswith(".metadata"):
            path = index.folder / filename.removesuffix(".metadata")
            if index.pep658 == "none" or not path.exists():
                self._send(404, b"no metadata", "text/plain")
            else:
                self._send(200, self._metadata_bytes(path), "application/octet-stream")
            return
        path = index.folder / filename
        if not path.exists():
            self._send(404, b"no such file", "text/plain")
            return
        data = path.read_bytes()
        wanted = self.headers.get("Range")
        if wanted and index.ranges and wanted.startswith("bytes="):
            time.sleep(index.range_delay)
            start_text, _, end_text = wanted[6:].partition("-")
            if not start_text:
                start, end = max(0, len(data) - int(end_text)), len(data) - 1
            else:
                start = int(start_text)
                end = min(len(data) - 1, int(end_text)) if end_text else len(data) - 1
            self.server.responses.append((self.path, wanted, 206))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
            self.send_header("Content-Length", str(end - start + 1))
            self.send_header("Content-Type", "application/octet-stream")
            self.end_headers()
            self.wfile.write(data[start : end + 1])
            return
        if index.slow:
            self._send_slowly(data, index.slow)
            return
        self._send(200, data, "application/octet-stream")

    def _send_slowly(self, data: bytes, seconds: float, pieces: int = 20) -> None:
        self.server.responses.append((self.path, None, 200))
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        step = max(1, -(-len(data) // pieces))
        for start in range(0, len(data), step):
            self.wfile.write(data[start : start + step])
            self.wfile.flush()
            time.sleep(seconds / pieces)

    def _send(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.server.responses.append((self.path, self.headers.get("Range"), status))
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


HOLD_SECONDS = 5.0


class IndexServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.indexes: dict[str, Index] = {}
        self.log: list[tuple[str, str | None, str | None]] = []
        self.responses: list[tuple[str, str | None, int]] = []
        self.held: list[tuple[str, bool]] = []  # (file held, whether its awaited one came)
        self._asked: dict[str, threading.Event] = {}
        self._asked_lock = threading.Lock()

    def _event(self, filename: str) -> threading.Event:
        with self._asked_lock:
            return self._asked.setdefault(filename, threading.Event())

    def asked(self, filename: str) -> None:
        self._event(filename).set()

    def wait_for(self, filename: str) -> bool:
        return self._event(filename).wait(HOLD_SECONDS)

    def url(self, index: str) -> str:
        return f"{self.root}/{index}/simple"

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def add_index(self, name: str, folder: Path, **options: object) -> Index:
        folder.mkdir(parents=True, exist_ok=True)
        index = Index(name, folder, **options)  # type: ignore[arg-type]
        self.indexes[name] = index
        return index


def serve() -> Iterator[IndexServer]:
    server = IndexServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
