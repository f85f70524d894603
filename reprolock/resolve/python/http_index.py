"""A `PythonIndex` over HTTP: simple API pages (JSON or HTML) and core metadata.

Metadata is read the cheapest way that works: the PEP 658 ``.metadata`` file
(also tried when not advertised, since PyPI often has it), then a suffix range
request into the wheel's zip, then — only for servers without range support —
the whole file.  Pages are cached with their validators; metadata is cached by
the wheel's sha256.
"""

from __future__ import annotations

import hashlib
import threading
import time
import zipfile
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit, urlunsplit

import requests
from packaging.utils import NormalizedName

from reprolock import limits
from reprolock.errors import SourceError
from reprolock.net.cache import Cache
from reprolock.net.session import describe_failure, redact
from reprolock.resolve.python import pages, wheelzip
from reprolock.resolve.python.index import DistFile
from reprolock.resolve.python.select import keep_filename

TAIL = 64 * 1024
PAGE_TTL = 600.0  # seconds a page without validators is reused before it is fetched again


def strip_credentials(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


class HttpIndex:
    """One simple index, e.g. ``https://pypi.org/simple``."""

    def __init__(
        self,
        url: str,
        session: requests.Session,
        cache: Cache,
        *,
        offline: bool = False,
        page_ttl: float = PAGE_TTL,
        wheel_filter: Callable[[str], bool] | None = None,
    ) -> None:
        """``wheel_filter`` keeps only the wheels some target can install (by filename);
        the others are remembered by name only, for explanations."""
        self.url = url.rstrip("/") + "/"
        self.public_url = strip_credentials(url.rstrip("/"))
        self.session = session
        self.cache = cache
        self.offline = offline
        self.page_ttl = page_ttl
        self.wheel_filter = wheel_filter
        self._others: dict[NormalizedName, list[str]] = {}
        self._pages: dict[NormalizedName, list[DistFile]] = {}
        self._side = ThreadPoolExecutor(max_workers=8, thread_name_prefix="reprolock-tail")
        self._lock = threading.Lock()
        self.stats = {"pages": 0, "metadata": 0, "ranges": 0, "downloads": 0, "bytes": 0}

    def close(self) -> None:
        self._side.shutdown(wait=False, cancel_futures=True)

    # -- pages ----------------------------------------------------------------------
    def project_files(self, name: NormalizedName) -> Sequence[DistFile]:
        with self._lock:
            if name in self._pages:
                return self._pages[name]
        page_url = f"{self.url}{name}/"
        body, content_type = self._get_page(page_url, name)
        others: list[str] = []
        wheel_filter = self.wheel_filter

        def keep(filename: str) -> bool:
            if not keep_filename(filename):
                return False
            if filename.endswith(".whl") and (wheel_filter is None or wheel_filter(filename)):
                return True
            others.append(filename)  # sdists and unusable wheels: their names suffice
            return False

        files = (
            []
            if body is None
            else pages.parse_page(
                body, content_type, page_url=page_url, index=self.public_url, keep=keep
            )
        )
        with self._lock:
            self._pages[name] = files
            self._others[name] = others
        return files

    def other_files(self, name: NormalizedName) -> Sequence[str]:
        with self._lock:
            return self._others.get(name, ())

    def _get_page(self, url: str, name: str) -> tuple[bytes | None, str]:
        cached = self.cache.get_response(url)
        if cached is not None and (
            self.offline
            or (
                not cached.etag
                and not cached.last_modified
                and time.time() - cached.fetched_at < self.page_ttl
            )
        ):
            return (cached.body or None), cached.content_type
        if self.offline:
            raise SourceError(
                f'no cached index page for "{name}" at {redact(self.public_url)}, and --offline '
                "forbids fetching it.",
                hint="Run once without --offline to fill the cache.",
            )
        headers = {"Accept": pages.ACCEPT}
        if cached is not None and cached.etag:
            headers["If-None-Match"] = cached.etag
        if cached is not None and cached.last_modified:
            headers["If-Modified-Since"] = cached.last_modified
        response = self._request(url, headers=headers)
        if response.status_code == 304 and cached is not None:
            self.cache.touch_response(url)
            return (cached.body or None), cached.content_type
        if response.status_code == 404:
            self.cache.put_response(url, b"", "", None, None)
            return None, ""
        self._raise_for(response, f'the index page of "{name}"')
        body = response.content
        self.stats["pages"] += 1
        self.stats["bytes"] += len(body)
        content_type = response.headers.get("Content-Type", "text/html")
        self.cache.put_response(
            url,
            body,
            content_type,
            response.headers.get("ETag"),
            response.headers.get("Last-Modified"),
        )
        return body, content_type

    # -- metadata -----------------------------------------------------------------------
    def metadata(self, file: DistFile) -> bytes:
        key = f"{file.url}\n{file.sha256}"
        cached = self.cache.get_ref("metadata", key, cap=limits.current().metadata_bytes)
        if cached is not None:
            return cached
        if self.offline:
            raise SourceError(
                f"no cached metadata for {file.filename}, and --offline forbids fetching it.",
                hint="Run once without --offline to fill the cache.",
            )
        if file.metadata:
            data = self._metadata_file(file)
            if data is None:
                data = self._metadata_from_zip(file, self._tail(file))
        else:
            # Not advertised: ask for `.metadata` and the wheel's tail at once, and
            # use whichever answers; a miss then costs no extra round trip.
            tail = self._side.submit(self._tail, file)
            data = self._metadata_file(file)
            if data is None:
                data = self._metadata_from_zip(file, tail.result())
        self.cache.put_ref("metadata", key, data)
        return data

    def _tail(self, file: DistFile) -> requests.Response:
        return self._request(file.url, headers={"Range": f"bytes=-{TAIL}"})

    def _metadata_file(self, file: DistFile) -> bytes | None:
        """PEP 658: ``<url>.metadata``; tried even when not advertised."""
        response = self._request(file.url + ".metadata")
        if response.status_code != 200:
            return None
        data = response.content
        self.stats["metadata"] += 1
        self.stats["bytes"] += len(data)
        if isinstance(file.metadata, str) and hashlib.sha256(data).hexdigest() != file.metadata:
            raise SourceError(
                f"the metadata of {file.filename} does not match the sha256 the "
                f"index lists for it ({redact(file.url)}.metadata).",
                hint="The index may be serving tampered files; report it.",
            )
        return data

    def _metadata_from_zip(self, file: DistFile, response: requests.Response) -> bytes:
        self._raise_for(response, file.filename)
        body = response.content
        self.stats["bytes"] += len(body)
        if response.status_code == 206:
            self.stats["ranges"] += 1
            total = int(response.headers.get("Content-Range", "/0").rpartition("/")[2] or 0)

            def fetch(start: int, end: int) -> bytes:
                part = self._request(file.url, headers={"Range": f"bytes={start}-{end - 1}"})
                self._raise_for(part, file.filename)
                self.stats["ranges"] += 1
                self.stats["bytes"] += len(part.content)
                if part.status_code == 200:  # the server ignored the range
                    return part.content[start:end]
                return part.content

            member = self._read(file, total, body, fetch)
        else:  # no range support: the whole wheel came back
            self.stats["downloads"] += 1
            if file.sha256 and hashlib.sha256(body).hexdigest() != file.sha256:
                raise SourceError(
                    f"{file.filename} does not match its sha256 from the index.",
                    hint="The index may be serving tampered files; report it.",
                )
            member = self._read(file, len(body), body, lambda s, e: body[s:e])
        return member

    def _read(self, file: DistFile, size: int, tail: bytes, fetch: wheelzip.Fetch) -> bytes:
        try:
            member = wheelzip.read_member(size, tail, fetch, wheelzip.is_metadata)
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError) as exc:
            raise SourceError(
                f"{file.filename} is not a readable wheel ({exc}).",
                hint=f"Check the file at {redact(file.url)}.",
            ) from exc
        if member is None:
            raise SourceError(
                f"{file.filename} has no .dist-info/METADATA.",
                hint="It is not a valid wheel; exclude this version.",
            )
        return member

    # -- HTTP -----------------------------------------------------------------------------
    def _request(self, url: str, *, headers: dict[str, str] | None = None) -> requests.Response:
        try:
            response = self.session.get(url, headers=headers or {})
        except requests.RequestException as exc:
            raise SourceError(
                f"cannot reach {redact(url)}: {describe_failure(exc)}.",
                hint="Check the network, the proxy settings and the index URL; "
                "with a filled cache, --offline works without a network.",
            ) from exc
        return response

    def _raise_for(self, response: requests.Response, what: str) -> None:
        if response.status_code in (200, 206, 304):
            return
        url = redact(response.url)
        if response.status_code in (401, 403):
            raise SourceError(
                f"{url} refused access ({response.status_code}) to {what}.",
                hint="Give credentials in ~/.netrc or in the index URL "
                "(https://user:token@host/simple).",
            )
        raise SourceError(
            f"{url} answered {response.status_code} for {what}.",
            hint="Check the index URL; retry later if the server is busy.",
        )
