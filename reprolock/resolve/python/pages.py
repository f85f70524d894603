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


def _yanked(value: object) -> str | None:
    if value is True:
        return ""
    if isinstance(value, str):
        return value
    return None


def _metadata(value: object) -> bool | str:
    if isinstance(value, dict):
        return value.get("sha256") or True
    return bool(value)


def parse_json_page(body: bytes, *, page_url: str, index: str, keep: FileFilter) -> list[DistFile]:
    """Files of a PEP 691 JSON project page; only those whose name passes ``keep``.

    Large projects list thousands of files, so this loop avoids work per file:
    absolute URLs are kept as they are and upload times are parsed only on use.
    """
    data = _loads(body)
    out: list[DistFile] = []
    append = out.append
    for item in data.get("files", ()):
        filename = item.get("filename", "")
        if not keep(filename):
            continue
        url = item["url"]
        if not url.startswith(("https://", "http://")):
            url = urljoin(page_url, url)
        hashes = item.get("hashes") or {}
        meta = item.get("core-metadata", item.get("data-dist-info-metadata", False))
        size = item.get("size")
        append(
            DistFile(
                filename=filename,
                url=url,
                index=index,
                sha256=hashes.get("sha256"),
                requires_python=item.get("requires-python") or None,
                yanked=_yanked(item.get("yanked")),
                upload_time_text=item.get("upload-time"),
                size=size if isinstance(size, int) else None,
                metadata=_metadata(meta) if meta else False,
            )
        )
    return out


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
    parser.feed(body.decode("utf-8", errors="replace"))
    base = urljoin(page_url, parser.base) if parser.base else page_url
    out: list[DistFile] = []
    for attrs, text in parser.anchors:
        href = attrs.get("href")
        if not href:
            continue
        url, fragment = urldefrag(urljoin(base, href))
        filename = text or url.rsplit("/", 1)[-1]
        if not keep(filename):
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
    """Dispatch on the response's media type."""
    kind = content_type.split(";", maxsplit=1)[0].strip().lower()
    if kind == JSON_TYPE or kind.endswith("+json") or kind == "application/json":
        return parse_json_page(body, page_url=page_url, index=index, keep=keep)
    return parse_html_page(body, page_url=page_url, index=index, keep=keep)
