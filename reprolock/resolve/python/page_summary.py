"""A parsed page, cut down to what one set of targets needs, for the cache.

A large project's page is megabytes of JSON listing every file ever uploaded; a lock
keeps a few percent of them.  Parsing such pages is most of what a warm lock costs, so
the index adapter stores, beside each cached page, a *summary*: the files the targets
can use and the sdists (which may be built), written back as a PEP 691 page of those
entries only (read with the same checks as any page), and the names of the other files
(wheels for other targets), which only explanations use.

A summary is found by `summary_key`: the page's URL, the sha256 and media type of the
page body it was made from, and the key of the filter that chose its files.  A page that changes
gets a new body hash, so a summary is never stale; one made for other targets is
never found.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from reprolock.resolve.python.index import DistFile
from reprolock.resolve.python.pages import PageError, decode_json, json_page_files
from reprolock.resolve.python.select import OtherFiles

# 2: sdists are kept as files (1 named them only); 3: less dominated sdists; 4: the other
# files' names as one text, with their distinct version texts
FORMAT = 4
_UNSAFE = re.compile(r"[\x00-\x20\x7f/\\]")  # in a file name or a version text
_UNSAFE_LINES = re.compile(r"[\x00-\x09\x0b-\x20\x7f/\\]")  # in names one per line

try:  # the same fast codec as page parsing, when installed
    import orjson

    def dumps(value: object) -> bytes:
        """``value`` as compact JSON (orjson when installed)."""
        return orjson.dumps(value)

except ImportError:  # pragma: no cover - orjson is a dependency
    import json

    def dumps(value: object) -> bytes:
        """``value`` as compact JSON (orjson when installed)."""
        return json.dumps(value, separators=(",", ":")).encode()


def summary_key(page_url: str, page_sha256: str, content_type: str, filter_key: str) -> str:
    """The cache key of the summary of the page at ``page_url`` (without credentials) whose
    body has ``page_sha256`` and was served as ``content_type``, for the filter named
    ``filter_key``."""
    return f"page-summary {FORMAT}\n{page_url}\n{page_sha256}\n{content_type}\n{filter_key}"


def _stored_url(url: str, page_url: str) -> str | None:
    """``url`` as a summary stores it: relative to the page (``/path?query``) when it
    carries the page URL's credentials, which a cache must never hold (they are joined
    back from the page URL on reading, as when the page itself is parsed); None when it
    cannot be written that way."""
    page = urlsplit(page_url)
    if "@" not in page.netloc:
        return url
    parts = urlsplit(url)
    if (parts.scheme, parts.netloc) != (page.scheme, page.netloc):
        return url  # any credentials in it came with the page body, which is cached as it is
    relative = urlunsplit(("", "", parts.path, parts.query, parts.fragment))
    if not relative.startswith("/") or relative.startswith("//"):
        return None
    return relative


def _entry(file: DistFile, url: str) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "filename": file.filename,
        "url": url,
        "hashes": {"sha256": file.sha256} if file.sha256 else {},
        "yanked": True if file.yanked == "" else (file.yanked or False),
    }
    if file.requires_python is not None:
        entry["requires-python"] = file.requires_python
    if file.upload_time_text is not None:
        entry["upload-time"] = file.upload_time_text
    if file.size is not None:
        entry["size"] = file.size
    if file.metadata:
        entry["core-metadata"] = (
            {"sha256": file.metadata} if isinstance(file.metadata, str) else True
        )
    return entry


def dump_summary(
    files: Sequence[DistFile], others: Sequence[str], *, page_url: str
) -> bytes | None:
    """The summary of the page at ``page_url`` that gave ``files`` (kept) and ``others``
    (names only); None when it cannot be stored without the page URL's credentials."""
    entries = []
    for file in files:
        url = _stored_url(file.url, page_url)
        if url is None:
            return None
        entries.append(_entry(file, url))
    named = OtherFiles.of(others)
    return dumps(
        {
            "meta": {"reprolock-page-summary": FORMAT},
            "files": entries,
            "others": named.text,
            "other-versions": sorted(named.versions),
        }
    )


def load_summary(data: bytes, *, page_url: str, index: str) -> tuple[list[DistFile], OtherFiles]:
    """The files and other names a summary holds, checked as a page is; `PageError` when
    ``data`` is not a summary of this format."""
    document = decode_json(data)
    meta = document.get("meta") if isinstance(document, dict) else None
    if not isinstance(meta, dict) or meta.get("reprolock-page-summary") != FORMAT:
        raise PageError("not a page summary of this format")
    files = json_page_files(document, page_url=page_url, index=index, keep=lambda _name: True)
    return files, other_files(document.get("others"), document.get("other-versions"))


def other_files(text: object, versions: object) -> OtherFiles:
    """The other files' names (one text) and their version texts as a summary or a worker's
    answer holds them, checked: each name as a page's filename is (all at once), and each
    version text as a part of one (`PageError` otherwise)."""
    if type(text) is not str:
        raise PageError("the summary's other files are not a text of names")
    names = tuple(text.split("\n")) if text else ()
    # The rule for a page's filenames, checked for all the names at once (one regular
    # expression over the text for the lengths too tried every position: 15x slower).
    if names and (
        min(map(len, names)) == 0
        or max(map(len, names)) > 255
        or _UNSAFE_LINES.search(text)
        or "." in names
        or ".." in names
    ):
        raise PageError("the summary names a file that cannot be one")
    if not isinstance(versions, list) or not all(
        type(v) is str and 0 < len(v) <= 255 for v in versions
    ):
        raise PageError("the summary's other versions are not a list of version texts")
    if len(versions) > len(names) or (versions and _UNSAFE.search("".join(versions))):
        raise PageError("the summary's other versions cannot be those of its files")
    return OtherFiles(text, frozenset(versions), names)
