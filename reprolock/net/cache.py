"""The on-disk cache: HTTP pages with their validators, and content-addressed blobs.

Nothing from the network chooses a file name here.  Blobs are stored under the sha256
of the bytes actually received (``blobs/sha256/ab…``; ``blobs/sha256/ab/ab…`` in caches
written before 2026-12-05, still read) and are hashed again when read;
a lookup key (a URL, a claimed hash) is itself hashed into a file name and points at a
blob (a *ref*), or holds small data itself with its sha256 (checked the same way), so a
hostile index that claims another file's hash poisons only its own key.  Cached pages
are stored with the sha256 of their body, checked on read; URLs are stored without
credentials.  A damaged or unreadable entry is a miss, never an error, and a cache that
cannot be written (read-only, full disk) only costs speed.

Files are 0600 in 0700 folders; every write is atomic (a temporary file renamed into
place), so concurrent runs can share the cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import stat
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from reprolock import limits

_HEX = re.compile(r"^[0-9a-f]{64}$")
STALE_TMP_SECONDS = 3600.0  # a temporary file this old was left by a killed process
# Data up to this size is kept in its ref, not in a blob: a cold kitchen sink's page
# summaries, ~70 of 254 over 64 KiB, were two files each (every file created costs; after
# many files were deleted, ext4 without a journal checks each new inode against them).
INLINE_BYTES = 4 * 1024 * 1024
_INLINE = b"inline sha256:"  # then 64 hex digits, a newline and the data
_INLINE_HEAD = len(_INLINE) + 65


def public_url(url: str) -> str:
    """``url`` without the credentials of its netloc (as stored and shown)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True, slots=True)
class CachedResponse:
    body: bytes
    content_type: str
    etag: str | None
    last_modified: str | None
    fetched_at: float


@dataclass(frozen=True, slots=True)
class PageRecord:
    """What the cache knows of a page without reading its body: the body's sha256 (the key
    of its blob, and of anything derived from it), its type, validators and age."""

    sha256: str
    content_type: str
    etag: str | None
    last_modified: str | None
    fetched_at: float


class Cache:
    """Files under ``root`` (None: no cache at all)."""

    def __init__(self, root: Path | None) -> None:
        self.root = root
        self.write_failures = 0  # writes that failed (read-only or full cache folder)
        self._swept: set[Path] = set()
        self._lock = threading.Lock()

    @staticmethod
    def _key(text: str) -> str:
        return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()

    # -- files ------------------------------------------------------------------------
    def _read(self, path: Path, cap: int) -> bytes | None:
        """The bytes of a regular file of at most ``cap`` bytes, else None."""
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        try:
            fd = os.open(path, flags)
        except OSError:
            return None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or info.st_size > cap:
                return None
            with os.fdopen(fd, "rb", closefd=False) as handle:
                data = handle.read(info.st_size + 1)  # (not cap + 1: that is allocated)
        except OSError:
            return None
        finally:
            os.close(fd)
        return data if len(data) <= cap else None

    def _write(self, path: Path, data: bytes) -> None:
        """Atomic, not durable (a lost entry is fetched again), private; failures are
        counted, not raised."""
        folder = path.parent
        tmp = folder / f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp"
        try:
            self._make_folder(folder)
            self._sweep(folder)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
            except BaseException:
                with contextlib.suppress(OSError):
                    tmp.unlink()
                raise
            tmp.replace(path)
        except OSError:
            self.write_failures += 1

    def _make_folder(self, folder: Path) -> None:
        assert self.root is not None
        if folder.is_dir():
            return
        if self.root.is_dir() and self.root not in self._swept:
            self._swept.add(self.root)  # an older cache: make its top private too
            with contextlib.suppress(OSError):
                self.root.chmod(0o700)
        # Each level private: the cache holds what private indexes serve.
        missing: list[Path] = []
        current = folder
        while not current.is_dir():
            missing.append(current)
            if current == current.parent:
                break
            current = current.parent
        for level in reversed(missing):
            with contextlib.suppress(FileExistsError):
                level.mkdir(mode=0o700)

    def _sweep(self, folder: Path) -> None:
        """Remove temporary files a killed writer left in ``folder`` (once per run)."""
        with self._lock:
            if folder in self._swept:
                return
            self._swept.add(folder)
        now = time.time()
        with contextlib.suppress(OSError), os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.startswith(".") and entry.name.endswith(".tmp"):
                    with contextlib.suppress(OSError):
                        if now - entry.stat(follow_symlinks=False).st_mtime > STALE_TMP_SECONDS:
                            Path(entry.path).unlink()

    # -- content-addressed blobs --------------------------------------------------------
    def _blob_path(self, digest: str) -> Path:
        """Where the blob ``digest`` is written: one folder for all (a folder per first two
        hex digits, as before, cost a cold lock ~150 folders more to create)."""
        assert self.root is not None and _HEX.match(digest)
        return self.root / "blobs" / "sha256" / digest

    def _nested_blob_path(self, digest: str) -> Path:
        """Where caches written before 2026-12-05 keep the blob ``digest`` (still read)."""
        assert self.root is not None and _HEX.match(digest)
        return self.root / "blobs" / "sha256" / digest[:2] / digest

    def put_blob(self, data: bytes) -> str:
        """Store ``data``; returns its sha256 (hex), the key to read it back."""
        digest = sha256_hex(data)
        if self.root is not None:
            path = self._blob_path(digest)
            if not path.is_file():
                self._write(path, data)
        return digest

    def get_blob(self, digest: str, *, cap: int) -> bytes | None:
        """The blob whose sha256 is ``digest``, checked; None when absent or damaged."""
        if self.root is None or not _HEX.match(digest):
            return None
        path = self._blob_path(digest)
        data = self._read(path, cap)
        if data is None:
            path = self._nested_blob_path(digest)
            data = self._read(path, cap)
        if data is None:
            return None
        if sha256_hex(data) != digest:
            with contextlib.suppress(OSError):
                path.unlink()
            return None
        return data

    # -- refs: a key (any text) → a blob ---------------------------------------------------
    def put_ref(self, kind: str, key: str, data: bytes) -> None:
        """Store ``data`` under (``kind``, ``key``): in the ref itself, with its sha256, when
        it is small (a wheel's metadata: one file written, not two), else as a blob."""
        if self.root is None:
            return
        path = self.root / "refs" / kind / self._key(key)
        if len(data) <= INLINE_BYTES:
            self._write(path, _INLINE + sha256_hex(data).encode() + b"\n" + data)
            return
        digest = self.put_blob(data)
        self._write(path, digest.encode())

    def get_ref(self, kind: str, key: str, *, cap: int) -> bytes | None:
        """The data stored under (``kind``, ``key``), checked; None on a miss."""
        if self.root is None:
            return None
        found = self._read(self.root / "refs" / kind / self._key(key), _INLINE_HEAD + INLINE_BYTES)
        if found is None:
            return None
        if found.startswith(_INLINE):
            digest, data = found[len(_INLINE) : _INLINE_HEAD], found[_INLINE_HEAD:]
            if found[_INLINE_HEAD - 1 : _INLINE_HEAD] != b"\n" or len(data) > cap:
                return None
            return data if sha256_hex(data).encode() == digest[:-1] else None
        if len(found) > 64:
            return None
        try:
            digest_text = found.decode("ascii")
        except UnicodeDecodeError:
            return None
        return self.get_blob(digest_text, cap=cap)

    # -- HTTP pages ------------------------------------------------------------------------
    def _page_base(self, url: str) -> Path:
        assert self.root is not None
        return self.root / "http" / self._key(public_url(url))

    def get_record(self, url: str) -> PageRecord | None:
        """The record of the cached page at ``url`` (its body unread); None on a miss."""
        if self.root is None:
            return None
        raw = self._read(self._page_base(url).with_suffix(".json"), 64 * 1024)
        if raw is None:
            return None
        try:
            meta = json.loads(raw)
        except (ValueError, RecursionError):
            return None
        if not isinstance(meta, dict):
            return None
        digest = meta.get("sha256")
        content_type = meta.get("content-type", "")
        etag = meta.get("etag")
        last_modified = meta.get("last-modified")
        fetched_at = meta.get("fetched-at", 0)
        if not (
            isinstance(digest, str)
            and _HEX.match(digest)
            and isinstance(content_type, str)
            and isinstance(etag, str | None)
            and isinstance(last_modified, str | None)
            and isinstance(fetched_at, int | float)
            and not isinstance(fetched_at, bool)
        ):
            return None
        return PageRecord(digest, content_type, etag, last_modified, float(fetched_at))

    def get_response(self, url: str, *, cap: int | None = None) -> CachedResponse | None:
        record = self.get_record(url)
        if record is None:
            return None
        body = self.get_blob(record.sha256, cap=limits.current().page_bytes if cap is None else cap)
        if body is None:
            return None
        return CachedResponse(
            body, record.content_type, record.etag, record.last_modified, record.fetched_at
        )

    def put_response(
        self, url: str, body: bytes, content_type: str, etag: str | None, last_modified: str | None
    ) -> str:
        """Store the page; returns the sha256 of its body (hex), as its record will name it."""
        if self.root is None:
            return sha256_hex(body)
        digest = self.put_blob(body)
        self._put_record(url, PageRecord(digest, content_type, etag, last_modified, time.time()))
        return digest

    def _put_record(self, url: str, record: PageRecord) -> None:
        meta = {
            "url": public_url(url),
            "sha256": record.sha256,
            "content-type": record.content_type,
            "etag": record.etag,
            "last-modified": record.last_modified,
            "fetched-at": record.fetched_at,
        }
        self._write(self._page_base(url).with_suffix(".json"), json.dumps(meta).encode())

    def touch_response(self, url: str) -> None:
        """Mark a cached response as just revalidated (its body is neither read nor written)."""
        record = self.get_record(url)
        if record is not None:
            self._put_record(
                url,
                PageRecord(
                    record.sha256,
                    record.content_type,
                    record.etag,
                    record.last_modified,
                    time.time(),
                ),
            )
