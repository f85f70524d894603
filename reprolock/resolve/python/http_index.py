"""A `PythonIndex` over HTTP: simple API pages (JSON or HTML) and core metadata.

Metadata is read the cheapest way that works: the PEP 658 ``.metadata`` file when the
page advertises it; when it does not, range requests into the wheel's zip, hedged by a
request for that file when they fail or are slow (the first answer wins); only for
servers without range support (and without the file), the whole wheel, streamed to a
private temporary file and checked against its sha256.
Every read is bounded (`reprolock.limits`): pages, metadata and the bytes fetched to
find a member in a remote zip.  Pages are cached with their validators; metadata is
cached by the URL and sha256 it was read for (`Cache.put_ref`), as the bytes received.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, CancelledError, Future, ThreadPoolExecutor, wait

import requests
from packaging.utils import NormalizedName

from reprolock import limits
from reprolock.errors import SourceError
from reprolock.net import http
from reprolock.net.cache import Cache, PageRecord, public_url
from reprolock.net.config import NetConfig
from reprolock.net.session import redact
from reprolock.resolve.python import page_parse, page_summary, pages, wheelzip
from reprolock.resolve.python.index import DistFile
from reprolock.resolve.python.select import OtherFiles
from reprolock.resolve.python.target import WheelFilter
from reprolock.resolve.python.urgency import SmallestFirst

TAIL = 64 * 1024
HEDGE_SECONDS = 0.25  # unadvertised metadata: ask for `.metadata` too when ranges take longer
PAGE_TTL = 600.0  # seconds a page without validators is reused before it is fetched again
_CONTENT_RANGE = re.compile(r"^bytes (\d{1,15})-(\d{1,15})/(\d{1,15})$")
_TAMPERED = "The index may be serving tampered files; report it."
_UNREACHABLE = (
    "Check the network, the proxy settings and the index URL; "
    "with a filled cache, --offline works without a network."
)


def strip_credentials(url: str) -> str:
    return public_url(url)


class _NoRanges(Exception):
    """The server answered a range request with the whole file."""


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
        wheel_filter: WheelFilter | None = None,
        net_config: NetConfig | None = None,
        workers: int = page_parse.WORKERS,
    ) -> None:
        """``wheel_filter`` keeps only the wheels some target can install (by filename);
        the others are remembered by name only, for explanations.  Pages never fetched are
        fetched by ``workers`` worker processes (`page_parse.PageWorkers`) when
        ``net_config`` tells them how; large pages are parsed there in any case."""
        self.url = url.rstrip("/") + "/"
        self.public_url = strip_credentials(url.rstrip("/"))
        self.session = session
        self.cache = cache
        self.offline = offline
        self.page_ttl = page_ttl
        self.wheel_filter = wheel_filter
        self._others: dict[NormalizedName, Sequence[str]] = {}
        self._pages: dict[NormalizedName, list[DistFile]] = {}
        self._side = ThreadPoolExecutor(max_workers=16, thread_name_prefix="reprolock-side")
        self._lock = threading.Lock()
        self._parsing = SmallestFirst()
        fetch = None
        if net_config is not None and not offline:
            fetch = page_parse.FetchSetup(net_config, cache.root)
        self.worker = page_parse.PageWorkers(wheel_filter, size=workers, fetch=fetch)
        self.stats = {"pages": 0, "metadata": 0, "ranges": 0, "downloads": 0, "bytes": 0}

    def close(self) -> None:
        self._side.shutdown(wait=False, cancel_futures=True)
        self.worker.close()

    def _count(self, key: str, size: int) -> None:
        with self._lock:
            self.stats[key] += 1
            self.stats["bytes"] += size

    # -- pages ----------------------------------------------------------------------
    def project_files(self, name: NormalizedName) -> Sequence[DistFile]:
        with self._lock:
            if name in self._pages:
                return self._pages[name]
        files, others = self._project_page(f"{self.url}{name}/", name)
        with self._lock:
            self._pages[name] = files
            self._others[name] = others
        return files

    def other_files(self, name: NormalizedName) -> Sequence[str]:
        with self._lock:
            return self._others.get(name, ())

    def _project_page(self, url: str, name: str) -> tuple[list[DistFile], Sequence[str]]:
        """The files of the page at ``url`` that some target can use, and the names of the
        others: from the cached summary of the page when there is one, else parsed."""
        record = self.cache.get_record(url)
        if record is not None and (
            self.offline
            or (
                not record.etag
                and not record.last_modified
                and time.time() - record.fetched_at < self.page_ttl
            )
        ):
            found = self._cached_page(url, name, record)
            if found is not None:
                return found
        if self.offline:
            raise SourceError(
                f'no cached index page for "{name}" at {redact(self.public_url)}, and --offline '
                "forbids fetching it.",
                hint="Run once without --offline to fill the cache.",
            )
        if record is None:  # a page never fetched: a cold cache, large pages likely
            found = self._page_from_worker(url, name)
            if found is not None:
                return found
        files, others, _summary, _received = self.fetch_page(url, name, record)
        return files, others

    def _page_from_worker(self, url: str, name: str) -> tuple[list[DistFile], Sequence[str]] | None:
        """The page fetched and parsed by a worker process, or None: fetch it here."""
        found = self.worker.fetch(
            index_url=self.url, page_url=url, name=name, index=self.public_url
        )
        if found is None:
            return None
        files, others, received = found
        self._count("pages", received)
        return files, others

    def fetch_page(
        self, url: str, name: str, record: PageRecord | None
    ) -> tuple[list[DistFile], Sequence[str], bytes | None, int]:
        """Fetch the page at ``url`` here (revalidating ``record``), cache it, and parse it:
        its files, the other wheels' names, its summary (None when it has none) and the bytes
        of the page received."""
        what = f'the index page of "{name}"'
        headers = {"Accept": pages.ACCEPT}
        if record is not None and record.etag and _clean_header(record.etag):
            headers["If-None-Match"] = record.etag
        if record is not None and record.last_modified and _clean_header(record.last_modified):
            headers["If-Modified-Since"] = record.last_modified
        reply = http.get(
            self.session,
            url,
            what=f"{redact(self.public_url)}: {what}",
            cap=limits.current().page_bytes,
            limit_name="page_bytes",
            headers=headers,
            unreachable_hint=_UNREACHABLE,
        )
        if reply.status == 304 and record is not None:
            found = self._cached_page(url, name, record)
            if found is not None:
                self.cache.touch_response(url)
                return found[0], found[1], None, 0
            reply = http.get(  # the cached body is gone: ask again, unconditionally
                self.session,
                url,
                what=f"{redact(self.public_url)}: {what}",
                cap=limits.current().page_bytes,
                limit_name="page_bytes",
                headers={"Accept": pages.ACCEPT},
                unreachable_hint=_UNREACHABLE,
            )
        if reply.status == 404:
            self.cache.put_response(url, b"", "", None, None)
            return [], [], None, 0
        self._raise_for(reply, what)
        self._count("pages", len(reply.body))
        content_type = reply.header("Content-Type", "text/html")[:200]
        digest = self.cache.put_response(
            url,
            reply.body,
            content_type,
            _clean_header(reply.header("ETag")) or None,
            _clean_header(reply.header("Last-Modified")) or None,
        )
        return (*self._parse(url, name, reply.body, content_type, digest), len(reply.body))

    def _cached_page(
        self, url: str, name: str, record: PageRecord
    ) -> tuple[list[DistFile], Sequence[str]] | None:
        """The cached page's summary, or the page parsed again (and summarized); None when
        the cache has lost the body."""
        cap = limits.current().page_bytes
        summary = self.cache.get_ref(
            "page-summary", self._summary_key(url, record.sha256, record.content_type), cap=cap
        )
        if summary is not None:
            try:
                return page_summary.load_summary(summary, page_url=url, index=self.public_url)
            except pages.PageError:
                pass  # damaged or of another format: parse the page again
        body = self.cache.get_blob(record.sha256, cap=cap)
        if body is None:
            return None
        files, others, _summary = self._parse(url, name, body, record.content_type, record.sha256)
        return files, others

    def _summary_key(self, url: str, digest: str, content_type: str) -> str:
        kept = "all" if self.wheel_filter is None else self.wheel_filter.key
        return page_summary.summary_key(strip_credentials(url), digest, content_type, kept)

    def _parse(
        self, url: str, name: str, body: bytes, content_type: str, digest: str
    ) -> tuple[list[DistFile], Sequence[str], bytes | None]:
        """Parse a page body: a large one in the worker process (`page_parse.PageWorkers`),
        the others here, one at a time (parsing holds the interpreter's lock anyway, and
        one large page's objects at a time keep memory low), the smallest waiting first (a
        small page the resolver awaits does not queue behind the big ones fetched beside
        it).  The summary is cached."""
        if not body:  # a 404 remembered: the index has no such project
            return [], [], None
        try:
            parsed = self.worker.parse(
                body, content_type, page_url=url, index=self.public_url, name=name
            )
            others: Sequence[str]
            if parsed is not None:
                files, others, summary = parsed
            else:
                with self._parsing.turn(len(body)):
                    files, names = page_parse.parse(
                        body,
                        content_type,
                        page_url=url,
                        index=self.public_url,
                        name=name,
                        wheel_filter=self.wheel_filter,
                    )
                    others = OtherFiles.of(names)
                    summary = page_summary.dump_summary(files, others, page_url=url)
        except pages.PageError as exc:
            raise SourceError(
                f'{redact(self.public_url)}: the index page of "{name}" is malformed: {exc}.',
                hint="The index is broken or hostile; fix it, or stop using it for this package.",
            ) from None
        if summary is not None:
            key = self._summary_key(url, digest, content_type)
            self.cache.put_ref("page-summary", key, summary)
        return files, others, summary

    # -- metadata -----------------------------------------------------------------------
    def metadata(self, file: DistFile) -> bytes:
        cap = limits.current().metadata_bytes
        key = f"{file.url}\n{file.sha256}"
        cached = self.cache.get_ref("metadata", key, cap=cap)
        if cached is not None:
            return cached
        if self.offline:
            raise SourceError(
                f"no cached metadata for {file.filename}, and --offline forbids fetching it.",
                hint="Run once without --offline to fill the cache.",
            )
        data = self.worker.metadata(index_url=self.url, file=file)  # cached there
        if data is not None:
            self._count("metadata", len(data))
            return data
        if not file.is_wheel:  # an sdist: PEP 658 or nothing (there is no zip to read)
            data = self._metadata_file(file)
            if data is None:
                raise SourceError(f"{file.filename}: the index serves no metadata for it.")
        elif file.metadata:
            data = self._metadata_file(file)
            if data is None:
                data = self._metadata_from_zip(file)
        else:
            data = self._first_metadata(file)
        self.cache.put_ref("metadata", key, data)
        return data

    def _first_metadata(self, file: DistFile) -> bytes:
        """Metadata that the page does not advertise: read from the wheel's zip by range
        requests, with the ``.metadata`` file asked for too when that fails or has not
        answered within `HEDGE_SECONDS` (then the first to give it wins; the other is
        abandoned).  A mirror may serve ranges from its cache and fetch ``.metadata``
        upstream, or have no ``.metadata`` at all; asking for both every time would double
        the requests.  Without either, and without range support, the wheel is
        downloaded; when both fail, the ``.metadata`` request's error is reported."""
        from_zip = self._spawn(self._zip_metadata, file)
        wait([from_zip], timeout=HEDGE_SECONDS)
        if from_zip.done() and not from_zip.cancelled() and from_zip.exception() is None:
            found = from_zip.result()
            if found is not None:
                return found
        from_file = self._spawn(self._metadata_file, file)
        pending = {from_file, from_zip}
        failures: dict[Future[bytes | None], BaseException] = {}
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                try:
                    data = future.result()
                except CancelledError:  # closed while waiting: nothing more will come
                    continue
                except Exception as exc:  # kept: reported if the other gives nothing
                    failures[future] = exc
                    continue
                if data is not None:
                    for other in pending:
                        other.cancel()
                    return data
        for future in (from_file, from_zip):
            failure = failures.get(future)
            if failure is not None and not isinstance(failure, _NoRanges):
                raise failure
        if isinstance(failures.get(from_zip), _NoRanges):
            return self._metadata_from_download(file)
        raise SourceError(  # pragma: no cover - both cancelled: the index was closed
            f"the metadata of {file.filename} was not fetched (the run is ending).",
            hint="Run the command again.",
        )

    def _spawn(
        self, work: Callable[[DistFile], bytes | None], file: DistFile
    ) -> Future[bytes | None]:
        """``work(file)`` on a side thread (here, when the side pool is shut down)."""
        try:
            return self._side.submit(work, file)
        except RuntimeError:
            future: Future[bytes | None] = Future()
            try:
                future.set_result(work(file))
            except Exception as exc:
                future.set_exception(exc)
            return future

    def _zip_metadata(self, file: DistFile) -> bytes:
        """METADATA read from the wheel's zip by range requests; `_NoRanges` when the
        server has no range support."""
        size, body = self._tail(file)
        return self._read(file, size, body, self._range_fetcher(file))

    def _tail(self, file: DistFile) -> tuple[int, bytes]:
        """The last `TAIL` bytes and the file's size; `_NoRanges` when unsupported."""
        with http.stream(
            self.session,
            file.url,
            what=f"{file.filename} (its last {TAIL} bytes)",
            cap=TAIL,
            limit_name="metadata_bytes",
            headers={"Range": f"bytes=-{TAIL}"},
        ) as response:
            if response.status == 200:
                raise _NoRanges
            if response.status != 206:
                body = response.read()
                self._raise_for(
                    http.Reply(response.status, response.headers, file.url, body), file.filename
                )
            body = response.read()
            start, end, total = self._content_range(file, response.headers, len(body))
            if end != total - 1:
                raise SourceError(
                    f"{file.filename}: the server sent bytes {start}-{end} of {total} for the "
                    "file's tail.",
                    hint=f"Check the index at {redact(self.public_url)}.",
                )
        self._count("ranges", len(body))
        return total, body

    def _content_range(
        self, file: DistFile, headers: object, received: int
    ) -> tuple[int, int, int]:
        text = getattr(headers, "get", lambda *_: "")("Content-Range", "") or ""
        match = _CONTENT_RANGE.match(text.strip())
        if match is None:
            raise SourceError(
                f"{file.filename}: the server's Content-Range {text[:80]!r} is malformed.",
                hint=f"Check the index at {redact(self.public_url)}.",
            )
        start, end, total = (int(g) for g in match.groups())
        if not start <= end < total or end - start + 1 != received:
            raise SourceError(
                f"{file.filename}: the server's Content-Range ({text[:80]}) does not match the "
                f"{received} bytes it sent.",
                hint=f"Check the index at {redact(self.public_url)}.",
            )
        if file.size is not None and total != file.size:
            raise SourceError(
                f"{file.filename}: the server says the file has {total} bytes, the index "
                f"page says {file.size}.",
                hint=_TAMPERED,
            )
        return start, end, total

    def _metadata_file(self, file: DistFile) -> bytes | None:
        """PEP 658: ``<url>.metadata``; tried even when not advertised."""
        reply = http.get(
            self.session,
            file.url + ".metadata",
            what=f"the metadata of {file.filename}",
            cap=limits.current().metadata_bytes,
            limit_name="metadata_bytes",
        )
        if reply.status != 200:
            return None
        data = reply.body
        self._count("metadata", len(data))
        if isinstance(file.metadata, str) and hashlib.sha256(data).hexdigest() != file.metadata:
            raise SourceError(
                f"the metadata of {file.filename} does not match the sha256 the "
                f"index lists for it ({redact(file.url)}.metadata).",
                hint=_TAMPERED,
            )
        return data

    def _range_fetcher(self, file: DistFile) -> wheelzip.Fetch:
        """``fetch(start, end)`` by range requests, within a budget of bytes beyond the tail
        (a zip whose directory points everywhere cannot make us read the whole file)."""
        budget = [wheelzip.directory_cap()]

        def fetch(start: int, end: int) -> bytes:
            budget[0] -= end - start
            if budget[0] < 0:
                raise limits.exceeded(
                    f"{file.filename}: reading its zip directory", "metadata_bytes"
                )
            with http.stream(
                self.session,
                file.url,
                what=f"{file.filename} (bytes {start}-{end - 1})",
                cap=end - start,
                limit_name="metadata_bytes",
                headers={"Range": f"bytes={start}-{end - 1}"},
            ) as part:
                if part.status != 206:
                    body = part.read() if part.status != 200 else b""
                    if part.status == 200:
                        raise _NoRanges
                    self._raise_for(
                        http.Reply(part.status, part.headers, file.url, body), file.filename
                    )
                data = part.read()
                got_start, _end, _total = self._content_range(file, part.headers, len(data))
                if got_start != start:
                    raise SourceError(
                        f"{file.filename}: asked for bytes from {start}, got from {got_start}.",
                        hint=f"Check the index at {redact(self.public_url)}.",
                    )
            self._count("ranges", len(data))
            return data

        return fetch

    def _metadata_from_zip(self, file: DistFile) -> bytes:
        try:
            return self._zip_metadata(file)
        except _NoRanges:
            return self._metadata_from_download(file)

    def zip_members(self, file: DistFile) -> list[tuple[str, int, int, int, int]]:
        """The members of a wheel's zip (see `wheelzip.members`), by range requests."""
        try:
            size, body = self._tail(file)
            return wheelzip.members(size, body, self._range_fetcher(file))
        except _NoRanges:
            raise SourceError(
                f"{redact(file.url)}: the server does not answer range requests, which "
                "measuring a wheel needs.",
                hint="Use an index that supports HTTP ranges (PyPI does).",
            ) from None
        except wheelzip.ZipProblem as exc:
            raise SourceError(
                f"{file.filename} is not a readable wheel ({exc}).",
                hint=f"Check the file at {redact(file.url)}.",
            ) from None

    def _metadata_from_download(self, file: DistFile) -> bytes:
        """No range support: the whole wheel, streamed to a private file that is unlinked
        at once (nothing is left behind, whatever happens), checked, then read."""
        caps = limits.current()
        cap = file.size if file.size is not None else caps.wheel_bytes
        digest = hashlib.sha256()
        with tempfile.TemporaryFile(prefix="reprolock-wheel-") as spool:
            with http.stream(
                self.session,
                file.url,
                what=file.filename,
                cap=min(cap, caps.wheel_bytes),
                limit_name="wheel_bytes",
            ) as response:
                if response.status != 200:
                    body = response.read()
                    self._raise_for(
                        http.Reply(response.status, response.headers, file.url, body), file.filename
                    )
                try:
                    for chunk in response.chunks():
                        digest.update(chunk)
                        spool.write(chunk)
                except OSError as exc:
                    raise SourceError(
                        f"{file.filename}: cannot spool it to the temporary folder "
                        f"({exc.strerror or exc}).",
                        hint="Free space in TMPDIR, or set TMPDIR to a larger folder.",
                    ) from None
                self._count("downloads", response.received)
            if file.sha256 and digest.hexdigest() != file.sha256:
                raise SourceError(
                    f"{file.filename} does not match its sha256 from the index.", hint=_TAMPERED
                )
            spool.flush()
            size = spool.tell()
            fd = spool.fileno()

            def fetch(start: int, end: int) -> bytes:
                return os.pread(fd, end - start, start)

            return self._read(file, size, fetch(max(0, size - TAIL), size), fetch)

    def _read(self, file: DistFile, size: int, tail: bytes, fetch: wheelzip.Fetch) -> bytes:
        try:
            member = wheelzip.read_member(
                size, tail, fetch, wheelzip.is_metadata, suffix=wheelzip.METADATA_SUFFIX
            )
        except wheelzip.ZipProblem as exc:
            raise SourceError(
                f"{file.filename} is not a readable wheel ({exc}).",
                hint=f"Check the file at {redact(file.url)}.",
            ) from None
        except wheelzip.MemberTooLarge:
            raise limits.exceeded(f"{file.filename}: its METADATA", "metadata_bytes") from None
        if member is None:
            raise SourceError(
                f"{file.filename} has no .dist-info/METADATA.",
                hint="It is not a valid wheel; exclude this version.",
            )
        return member

    # -- errors ---------------------------------------------------------------------------
    def _raise_for(self, reply: http.Reply, what: str) -> None:
        if reply.status in (200, 206, 304):
            return
        url = redact(reply.url)
        if reply.status in (401, 403):
            raise SourceError(
                f"{url} refused access ({reply.status}) to {what}.",
                hint="Give credentials in ~/.netrc or in the index URL "
                "(https://user:token@host/simple).",
            )
        raise SourceError(
            f"{url} answered {reply.status} for {what}.",
            hint="Check the index URL; retry later if the server is busy.",
        )


def _clean_header(value: str | None) -> str:
    """A validator header safe to send back (no control characters, bounded)."""
    if not value or len(value) > 1024 or any(ord(c) < 32 or ord(c) == 127 for c in value):
        return ""
    return value
