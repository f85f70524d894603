"""An on-disk cache: HTTP responses with their validators, and content-addressed blobs."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class CachedResponse:
    body: bytes
    content_type: str
    etag: str | None
    last_modified: str | None
    fetched_at: float


class Cache:
    """Files under ``root``; every write is atomic, so concurrent runs can share it."""

    def __init__(self, root: Path | None) -> None:
        self.root = root

    @staticmethod
    def _key(text: str) -> str:
        return hashlib.sha256(text.encode()).hexdigest()

    def _write(self, path: Path, data: bytes) -> None:
        """Atomic but not durable: a cache entry lost in a crash is fetched again."""
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            tmp.write_bytes(data)
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(data)
        tmp.replace(path)

    # -- HTTP pages -----------------------------------------------------------------
    def get_response(self, url: str) -> CachedResponse | None:
        if self.root is None:
            return None
        base = self.root / "http" / self._key(url)
        try:
            meta = json.loads(base.with_suffix(".json").read_text())
            body = base.with_suffix(".body").read_bytes()
        except (OSError, ValueError):
            return None
        return CachedResponse(
            body,
            meta.get("content-type", ""),
            meta.get("etag"),
            meta.get("last-modified"),
            float(meta.get("fetched-at", 0)),
        )

    def put_response(
        self, url: str, body: bytes, content_type: str, etag: str | None, last_modified: str | None
    ) -> None:
        if self.root is None:
            return
        base = self.root / "http" / self._key(url)
        self._write(base.with_suffix(".body"), body)
        meta = {
            "url": url,
            "content-type": content_type,
            "etag": etag,
            "last-modified": last_modified,
            "fetched-at": time.time(),
        }
        self._write(base.with_suffix(".json"), json.dumps(meta).encode())

    def touch_response(self, url: str) -> None:
        """Mark a cached response as just revalidated."""
        cached = self.get_response(url)
        if cached is not None:
            self.put_response(
                url, cached.body, cached.content_type, cached.etag, cached.last_modified
            )

    # -- content-addressed blobs (metadata keyed by the file's sha256) -----------------
    def get_blob(self, kind: str, key: str) -> bytes | None:
        if self.root is None:
            return None
        try:
            return (self.root / kind / key[:2] / key).read_bytes()
        except OSError:
            return None

    def put_blob(self, kind: str, key: str, data: bytes) -> None:
        if self.root is not None:
            self._write(self.root / kind / key[:2] / key, data)
