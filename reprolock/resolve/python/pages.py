"""Pure parsers for simple-index project pages: PEP 691 JSON and PEP 503 HTML."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urldefrag, urljoin

from reprolock.resolve.python.index import DistFile

try:  # a fast decoder matters: large projects' pages are megabytes of JSON
    import orjson

    _loads: Callable[[bytes], Any] = orjson.loads
except ImportError:  # pragma: no cover - orjson is a dependency; keep working without it
    _loads = json.loads

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
HTML_TYPE = "application/vnd.pypi.simple.v1+html"
ACCEPT = f"{JSON_TYPE}, {HTML_TYPE};q=0.2, text/html;q=0.01"

FileFilter = Callable[[str], bool]
"""Decides from a filename alone whether a file is worth a record (cheap pre-filter)."""


_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_UNSAFE = re.compile(r"[\x00-\x20\x7f/\\]")  # controls, space, separators


class PageError(ValueError):
    """A project page that is not what PEP 503/691 describe (the caller adds where)."""


def safe_filename(filename: object) -> str | None:
    """The filename when it can name a file on disk (no separators, controls or dots
    only), else None: such entries are not distributions and are skipped."""
    if not isinstance(filename, str) or not filename or len(filename) > 255:
        return None
    if _UNSAFE.search(filename) or filename in (".", ".."):
        return None
    return filename


def _sha256(value: object, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _SHA256.match(value.lower()):
        raise PageError(f"{where}: the sha256 {str(value)[:80]!r} is not 64 hex digits")
    return value.lower()


def _url(value: object, page_url: str, where: str) -> str:
    if not isinstance(value, str) or not value or _CONTROL.search(value):
        raise PageError(f"{where}: the url is missing or not a clean string")
    url = value if value.startswith(("https://", "http://")) else urljoin(page_url, value)
    if not url.startswith(("https://", "http://")):
        raise PageError(f"{where}: the url {value[:80]!r} is not http(s)")
    return url


_CONTROL = re.compile(r"[\x00-\x20\x7f]")


def _yanked(value: object) -> str | None:
    if value is True:
        return ""
    if isinstance(value, str):
        return value[:1000]
    return None


def _metadata(value: object, where: str) -> bool | str:
    if isinstance(value, dict):
        digest = _sha256(value.get("sha256"), f"{where}.core-metadata")
        return digest or True
    return bool(value)


def decode_json(body: bytes) -> Any:
    """``body`` decoded as JSON; `PageError` when it is not JSON."""
    try:
        return _loads(body)
    except (ValueError, RecursionError) as exc:  # orjson's JSONDecodeError is a ValueError
        raise PageError(f"not valid JSON ({str(exc)[:200]})") from None


def parse_json_page(body: bytes, *, page_url: str, index: str, keep: FileFilter) -> list[DistFile]:
    """Files of a PEP 691 JSON project page; only those whose name passes ``keep``.

    Raises `PageError` for a page that is not PEP 691 (or a kept entry whose hash or URL
    is malformed); entries whose filename cannot be a distribution are skipped.
    """
    return json_page_files(decode_json(body), page_url=page_url, index=index, keep=keep)


def json_page_files(
    document: Any, *, page_url: str, index: str, keep: FileFilter
) -> list[DistFile]:
    """`parse_json_page` of an already decoded page.

    Large projects list thousands of files and a lock needs few of them, so the loop over
    entries does as little as it can before ``keep`` has spoken: an entry is checked in full
    (hash, URL) only when it is kept, absolute URLs are kept as they are, and upload times
    are parsed only on use.
    """
    files = document.get("files", ()) if isinstance(document, dict) else None
    if not isinstance(files, list | tuple):
        raise PageError("the page has no files list")
    out: list[DistFile] = []
    append = out.append
    unsafe = _UNSAFE.search
    for position, item in enumerate(files):
        if type(item) is not dict:  # a JSON decoder makes plain dicts only
            raise PageError(f"files[{position}] is not an object")
        filename = item.get("filename")
        if (
            type(filename) is not str
            or not 0 < len(filename) <= 255
            or unsafe(filename)
            or filename in (".", "..")
            or not keep(filename)
        ):
            continue
        append(_json_file(item, filename, position, page_url, index))
    return out


def _json_file(
    item: dict[str, Any], filename: str, position: int, page_url: str, index: str
) -> DistFile:
    # Run for every kept entry of every page and summary: the common, clean entry takes
    # the short way through each check; anything else goes through the full one.
    url = item.get("url")
    if type(url) is not str or not url.startswith(("https://", "http://")) or _CONTROL.search(url):
        url = _url(url, page_url, _where(position, filename))
    hashes = item.get("hashes") or {}
    if type(hashes) is not dict:
        raise PageError(f"{_where(position, filename)}: hashes is not an object")
    sha256 = hashes.get("sha256")
    if sha256 is not None and (type(sha256) is not str or not _SHA256.match(sha256)):
        sha256 = _sha256(sha256, _where(position, filename))  # upper case, or an error
    meta = (
        item["core-metadata"]
        if "core-metadata" in item
        else item.get("data-dist-info-metadata", False)
    )
    size = item.get("size")
    requires = item.get("requires-python")
    uploaded = item.get("upload-time")
    yanked = item.get("yanked")
    return DistFile(
        filename=filename,
        url=url,
        index=index,
        sha256=sha256,
        requires_python=requires if type(requires) is str and requires else None,
        yanked=None if yanked is None or yanked is False else _yanked(yanked),
        upload_time_text=uploaded if type(uploaded) is str else None,
        size=size if type(size) is int and 0 <= size < 1 << 48 else None,
        metadata=_metadata(meta, _where(position, filename)) if meta else False,
    )


def _where(position: int, filename: str) -> str:
    return f"files[{position}] ({filename})"


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.base: str | None = None
        self.anchors: list[tuple[dict[str, str | None], str]] = []
        self._open: dict[str, str | None] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "base" and self.base is None:
            self.base = dict(attrs).get("href")
        elif tag == "a":
            self._open, self._text = dict(attrs), []

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._open is not None:
            self.anchors.append((self._open, "".join(self._text).strip()))
            self._open = None


_HASH_FRAGMENT = re.compile(r"^sha256=([0-9a-fA-F]{64})$")


def parse_html_page(body: bytes, *, page_url: str, index: str, keep: FileFilter) -> list[DistFile]:
    """Files of a PEP 503 HTML project page (with PEP 592 yanking and PEP 658/714 metadata)."""
    parser = _Anchors()
    try:
        parser.feed(body.decode("utf-8", errors="replace"))
        parser.close()
    except (ValueError, AssertionError, RecursionError) as exc:
        raise PageError(f"not parseable HTML ({str(exc)[:200]})") from None
    base = urljoin(page_url, parser.base) if parser.base else page_url
    out: list[DistFile] = []
    for attrs, text in parser.anchors:
        href = attrs.get("href")
        if not href or _CONTROL.search(href.strip()):
            continue
        url, fragment = urldefrag(urljoin(base, href.strip()))
        if not url.startswith(("https://", "http://")):
            continue
        filename = safe_filename(text or url.rsplit("/", 1)[-1])
        if filename is None or not keep(filename):
            continue
        match = _HASH_FRAGMENT.match(fragment)
        meta_attr = attrs.get("data-core-metadata", attrs.get("data-dist-info-metadata"))
        meta: bool | str = False
        if meta_attr is not None:
            found = _HASH_FRAGMENT.match(meta_attr)
            meta = found.group(1).lower() if found else meta_attr != "false"
        requires = attrs.get("data-requires-python")
        yanked = attrs.get("data-yanked")
        out.append(
            DistFile(
                filename=filename,
                url=url,
                index=index,
                sha256=match.group(1).lower() if match else None,
                requires_python=html.unescape(requires) if requires else None,
                yanked=None if yanked is None else html.unescape(yanked),
                metadata=meta,
            )
        )
    return out


def parse_page(
    body: bytes, content_type: str, *, page_url: str, index: str, keep: FileFilter
) -> list[DistFile]:
    """Dispatch on the response's media type; `PageError` for a malformed page."""
    kind = content_type.split(";", maxsplit=1)[0].strip().lower()
    if kind == JSON_TYPE or kind.endswith("+json") or kind == "application/json":
        return parse_json_page(body, page_url=page_url, index=index, keep=keep)
    return parse_html_page(body, page_url=page_url, index=index, keep=keep)
