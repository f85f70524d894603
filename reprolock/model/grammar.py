"""The grammars of values that come from outside: each validator returns its value or
raises ValueError with a message that says what was expected.

Every value a lock, a spec, an index or a registry hands reprolock is checked against one
of these where it enters, before it becomes a path, a Dockerfile word or a URL.  The
charsets are deliberately narrower than what the underlying formats allow where a value
ends up in a Dockerfile or a path: no whitespace, quotes, ``$``, backslashes or control
characters there, so that no value needs escaping except where the emitter quotes it.
docs/spec.md and docs/lock.md document them.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Callable
from urllib.parse import SplitResult, urlsplit

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

Grammar = Callable[[str], str]
"""A validator: returns its argument, or raises ValueError saying what was expected."""

SHOWN = 120  # characters of a bad value repeated in a message


def show(text: str) -> str:
    """``text`` quoted for a message: control characters escaped, long values cut."""
    escaped = "".join(_escape(c) for c in text[:SHOWN])
    if len(text) > SHOWN:
        escaped += f"… ({len(text)} characters)"
    return f'"{escaped}"'


_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", '"': '\\"', "\\": "\\\\"}


def _escape(c: str) -> str:
    if c in _NAMED:
        return _NAMED[c]
    if _is_control(c):
        return f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"
    return c


def _is_control(c: str) -> bool:
    # Cc: C0/C1 controls and DEL; Zl/Zp: line and paragraph separators; Cf: bidi overrides.
    return unicodedata.category(c) in ("Cc", "Zl", "Zp", "Cf")


def has_control(text: str) -> bool:
    """Whether ``text`` holds a control character (newline, CR, NUL, DEL, bidi, …)."""
    return any(_is_control(c) for c in text)


def _full(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.ASCII)


# -- digests ---------------------------------------------------------------------------
_HEX64 = _full(r"[0-9a-f]{64}")


def sha256_digest(text: str) -> str:
    """``sha256:`` and 64 lowercase hex digits."""
    if not (text.startswith("sha256:") and _HEX64.fullmatch(text[7:])):
        raise ValueError(f'{show(text)} is not a sha256 digest ("sha256:" and 64 lowercase hex)')
    return text


def sha256_hex(text: str) -> str:
    """64 lowercase hex digits (a bare sha256)."""
    if not _HEX64.fullmatch(text):
        raise ValueError(f"{show(text)} is not a sha256 hex digest (64 lowercase hex digits)")
    return text


# -- Python distributions ------------------------------------------------------------
_FILE_CHARS = _full(r"[A-Za-z0-9._+!-]+")
_PROJECT = _full(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?")


def _file_name(text: str, what: str) -> None:
    if not _FILE_CHARS.fullmatch(text) or text.startswith("."):
        raise ValueError(
            f"{show(text)} is not a {what}: a file name holds letters, digits and . _ + ! - "
            "only (no folders)"
        )


def _reason(exc: Exception) -> str:
    """packaging's reason, without the file name it repeats: `` (invalid version)``."""
    found = re.search(r"\(([^)]*)\)", str(exc))
    return f" ({found.group(1)})" if found else ""


def wheel_filename(text: str) -> str:
    """A PEP 427 wheel file name (``name-version[-build]-python-abi-platform.whl``)."""
    _file_name(text, "wheel file name")
    if not text.endswith(".whl"):
        raise ValueError(f"{show(text)} is not a wheel file name (it must end in .whl)")
    try:
        parse_wheel_filename(text)
    except InvalidWheelFilename as exc:
        raise ValueError(f"{show(text)} is not a wheel file name{_reason(exc)}") from None
    return text


def sdist_filename(text: str) -> str:
    """A PEP 625 source distribution file name (``name-version.tar.gz``)."""
    _file_name(text, "source distribution file name")
    try:
        parse_sdist_filename(text)
    except InvalidSdistFilename as exc:
        raise ValueError(
            f"{show(text)} is not a source distribution file name{_reason(exc)}"
        ) from None
    return text


def project_name(text: str) -> str:
    """A PEP 508 project name (``Typing_Extensions``)."""
    if not _PROJECT.fullmatch(text):
        raise ValueError(
            f"{show(text)} is not a Python project name (letters, digits, . _ -; "
            "starting and ending with a letter or digit)"
        )
    return text


def canonical_name(text: str) -> str:
    """A project name in PEP 503 normal form (``typing-extensions``)."""
    project_name(text)
    if canonicalize_name(text) != text:
        raise ValueError(
            f'{show(text)} is not a normalized project name (write "{canonicalize_name(text)}")'
        )
    return text


def package_version(text: str) -> str:
    """A PEP 440 version."""
    if len(text) > 128 or has_control(text):
        raise ValueError(f"{show(text)} is not a PEP 440 version")
    try:
        Version(text)
    except InvalidVersion:
        raise ValueError(f"{show(text)} is not a PEP 440 version") from None
    return text


# -- Debian ----------------------------------------------------------------------------
_DEB_NAME = _full(r"[a-z0-9][a-z0-9+.-]+")
_DEB_VERSION = _full(r"(?:[0-9]{1,9}:)?[A-Za-z0-9][A-Za-z0-9.+~-]*(?<=[A-Za-z0-9.+~])")
_DEB_ARCH = _full(r"[a-z0-9][a-z0-9-]{0,31}")


def deb_name(text: str) -> str:
    """A Debian package name (policy 5.6.1): lowercase letters, digits, ``+ - .``."""
    if not _DEB_NAME.fullmatch(text) or len(text) > 128:
        raise ValueError(
            f"{show(text)} is not a Debian package name (lowercase letters, digits and + - ., "
            "starting with a letter or digit, at least two characters)"
        )
    return text


def deb_version(text: str) -> str:
    """A Debian version, ``[epoch:]upstream[-revision]`` (letters, digits, ``. + ~ -``)."""
    if not _DEB_VERSION.fullmatch(text) or len(text) > 128:
        raise ValueError(
            f"{show(text)} is not a Debian version ([epoch:]upstream[-revision]: letters, "
            "digits and . + ~ -)"
        )
    return text


def deb_architecture(text: str) -> str:
    """A Debian architecture (``amd64``, ``arm64``, ``all``)."""
    if not _DEB_ARCH.fullmatch(text):
        raise ValueError(f"{show(text)} is not a Debian architecture (like amd64, arm64, all)")
    return text


def deb_snapshot(text: str) -> str:
    """A snapshot archive id, ``20250520T000000Z``."""
    if not _full(r"\d{8}T\d{6}Z").fullmatch(text):
        raise ValueError(f'{show(text)} is not a snapshot id (like "20250520T000000Z")')
    return text


# -- reprolock's own values ------------------------------------------------------------
_TARGET_ID = _full(r"[a-z0-9][a-z0-9._-]{0,127}")


def target_id(text: str) -> str:
    """A target id, ``py3.11-amd64``: ``[a-z0-9][a-z0-9._-]{0,127}``."""
    if not _TARGET_ID.fullmatch(text) or ".." in text:
        raise ValueError(
            f"{show(text)} is not a target id (lowercase letters, digits and . _ -, starting "
            'with a letter or digit, at most 128 characters, like "py3.11-amd64")'
        )
    return text


def python_version(text: str) -> str:
    """A CPython version, ``X.Y`` or ``X.Y.Z``, or a release candidate ``X.Y.ZrcN``
    (also ``aN``/``bN``: a distribution's pre-release interpreter, when the spec asks)."""
    if not _full(r"[0-9]{1,3}\.[0-9]{1,3}(\.[0-9]{1,3}((a|b|rc)[0-9]{1,3})?)?").fullmatch(text):
        raise ValueError(f'{show(text)} is not a Python version (like "3.11" or "3.11.2")')
    return text


def os_release_id(text: str) -> str:
    """An os-release ``ID`` or ``VERSION_ID``: ``debian``, ``12``, ``22.04``, ``3.20.3``."""
    if not _full(r"[A-Za-z0-9][A-Za-z0-9._~+-]{0,63}").fullmatch(text):
        raise ValueError(
            f'{show(text)} is not an os-release ID or VERSION_ID (like "debian" or "22.04")'
        )
    return text


def account_name(text: str) -> str:
    """A user or group name of an image's /etc/passwd or /etc/group, as reprolock records
    it: letters, digits and ``. _ -``, not starting with ``-`` (at most 32)."""
    if not _full(r"[A-Za-z0-9_.][A-Za-z0-9_.-]{0,31}").fullmatch(text):
        raise ValueError(f"{show(text)} is not a user or group name")
    return text


def uid_gid(text: str) -> str:
    """``uid:gid``, two decimal ids (``1000:1000``)."""
    if not _full(r"[0-9]{1,10}:[0-9]{1,10}").fullmatch(text):
        raise ValueError(f'{show(text)} is not "uid:gid" (like "1000:1000")')
    return text


def numeric_id(text: str) -> str:
    """A decimal uid or gid."""
    if not _full(r"[0-9]{1,10}").fullmatch(text):
        raise ValueError(f"{show(text)} is not a numeric id")
    return text


def dotted_version(text: str) -> str:
    """A numeric version, ``12.4.1`` or ``9.1.0.70`` (CUDA, cuDNN, NCCL, driver)."""
    if not _full(r"[0-9]{1,9}(\.[0-9]{1,9}){0,5}").fullmatch(text):
        raise ValueError(f'{show(text)} is not a numeric version (like "12.4.1")')
    return text


def label_text(text: str, *, limit: int = 256) -> str:
    """A short informative string (a tool name, a matrices version): printable, one line."""
    if not text or has_control(text) or len(text) > limit:
        raise ValueError(
            f"{show(text)} is not a one-line text of at most {limit} printable characters"
        )
    return text


# -- URLs and hosts ----------------------------------------------------------------------
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST = _full(rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{{1,5}})?")
_URL_CHARS = _full(r"[A-Za-z0-9._~:/?#\[\]@!&'()*+,;=%-]+")


def _split(text: str, what: str, schemes: tuple[str, ...]) -> SplitResult:
    if len(text) > 4096 or not _URL_CHARS.fullmatch(text):
        raise ValueError(
            f"{show(text)} is not {what}: no spaces, quotes, backslashes or control "
            "characters (percent-encode them)"
        )
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise ValueError(f"{show(text)} is not {what}") from None
    if parts.scheme not in schemes:
        raise ValueError(f"{show(text)} is not {what} ({', '.join(schemes)})")
    if parts.scheme != "file" and (
        not parts.hostname or not _HOST.fullmatch(parts.netloc.rpartition("@")[2])
    ):
        raise ValueError(f"{show(text)} is not {what}: it has no valid host")
    return parts


def http_url(text: str) -> str:
    """An ``http://`` or ``https://`` URL with a host, without whitespace or control
    characters."""
    _split(text, "an http(s) URL", ("http", "https"))
    return text


def index_url(text: str) -> str:
    """A simple-index URL: ``http(s)://`` with a host, or ``file:``."""
    _split(text, "an index URL", ("http", "https", "file"))
    return text


def is_loopback(host: str) -> bool:
    """Whether the host name ``host`` (no port) is this machine: ``localhost``,
    ``127.0.0.0/8``, ``::1``."""
    name = host.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def netloc_is_loopback(netloc: str) -> bool:
    """`is_loopback` for ``host[:port]`` (``127.0.0.1:5000``, ``[::1]:5000``, ``localhost``)."""
    if netloc.startswith("["):
        return is_loopback(netloc[1:].partition("]")[0])
    return is_loopback(netloc.rpartition(":")[0] if netloc.count(":") == 1 else netloc)


def cleartext_credentials(text: str) -> bool:
    """Whether the URL ``text`` carries credentials over plain http to another machine."""
    parts = urlsplit(text)
    return (
        parts.scheme == "http"
        and (parts.username is not None or parts.password is not None)
        and not is_loopback(parts.hostname or "")
    )


def registry_host(text: str) -> str:
    """A registry host, ``registry.example.com[:port]`` (no scheme, no path)."""
    if not _HOST.fullmatch(text) or len(text) > 255:
        raise ValueError(
            f'{show(text)} is not a registry host (like "registry.example.com" or '
            '"localhost:5000": no scheme, no path)'
        )
    return text


def registry_mirror(text: str) -> str:
    """A registry mirror: a host (``mirror.example.com[:port]``) or an http(s) URL."""
    if "://" in text:
        parts = _split(text, "a mirror URL", ("http", "https"))
        if parts.username is not None or parts.password is not None:
            raise ValueError(
                f"{show(text)}: a mirror URL carries no credentials (docker logins apply)"
            )
        return text
    return registry_host(text)


# -- Dockerfile words --------------------------------------------------------------------
_PATH_CHARS = "A-Za-z0-9._@%+=,~-"
_ABSOLUTE = _full(rf"/(?:[{_PATH_CHARS}]+/)*(?:[{_PATH_CHARS}]+/?)?")
_CONTEXT = _full(rf"[*?{_PATH_CHARS}]+(?:/[*?{_PATH_CHARS}]+)*/?")
PATH_CHARSET = "letters, digits and . _ @ % + = , ~ - /"


def absolute_path(text: str) -> str:
    """An absolute POSIX path for the image (workdir, venv, COPY destination): ``/`` and
    components of letters, digits and ``. _ @ % + = , ~ -``; no ``.``/``..`` components."""
    parts = text.split("/")
    if len(text) > 4096 or not _ABSOLUTE.fullmatch(text) or any(p in (".", "..") for p in parts):
        raise ValueError(
            f"{show(text)} is not an absolute path made of {PATH_CHARSET} "
            '(no spaces, quotes, $, backslashes, "." or ".." parts; like "/app")'
        )
    return text


def context_path(text: str) -> str:
    """A path inside the build context (a COPY source): relative, components of letters,
    digits and ``. _ @ % + = , ~ -`` and the globs ``* ?``; no ``..``, no leading ``-``."""
    parts = text.rstrip("/").split("/")
    if len(text) > 4096 or not _CONTEXT.fullmatch(text) or ".." in parts or text.startswith("-"):
        raise ValueError(
            f"{show(text)} is not a path inside the build context: relative, made of "
            f"{PATH_CHARSET} and the globs * ?, without '..' (like \"src\")"
        )
    return text


def relative_file(text: str) -> str:
    """A file named relative to the spec (requirements files, keyrings): not absolute, no
    control characters, no backslashes.  Whether it stays inside the project is decided
    where the file is opened."""
    if not text or text.startswith("/") or "\\" in text or has_control(text) or len(text) > 4096:
        raise ValueError(
            f"{show(text)} is not a relative file path (write it relative to the spec's folder, "
            'like "requirements.txt")'
        )
    return text


def env_name(text: str) -> str:
    """An environment variable name, ``[A-Za-z_][A-Za-z0-9_]*``."""
    if not _full(r"[A-Za-z_][A-Za-z0-9_]{0,255}").fullmatch(text):
        raise ValueError(
            f"{show(text)} is not an environment variable name (letters, digits and _, not "
            "starting with a digit)"
        )
    return text


def label_key(text: str) -> str:
    """An image label key, ``[A-Za-z0-9][A-Za-z0-9._/-]*`` (``org.opencontainers.image.title``)."""
    if not _full(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,255}").fullmatch(text):
        raise ValueError(
            f"{show(text)} is not a label key (letters, digits and . _ / -, starting with a "
            'letter or digit, like "org.opencontainers.image.title")'
        )
    return text


def env_value(text: str) -> str:
    """An ENV or LABEL value: anything on one line (no newline, CR, NUL or other control
    characters); the emitter quotes it."""
    if has_control(text):
        raise ValueError(
            f"{show(text)} holds a control character (newline, tab, NUL, …), which an image's "
            "ENV or LABEL cannot carry"
        )
    return text


def argument(text: str) -> str:
    """One argument of an exec-form command (CMD, ENTRYPOINT, HEALTHCHECK): no NUL."""
    if "\x00" in text:
        raise ValueError(f"{show(text)} holds a NUL character, which no argument can carry")
    return text


def user(text: str) -> str:
    """The image's user: a name (``[a-z_][a-z0-9_-]{0,31}``) or a numeric uid."""
    if not _full(r"[a-z_][a-z0-9_-]{0,31}|[0-9]{1,10}").fullmatch(text):
        raise ValueError(
            f'{show(text)} is not a user (a lowercase name like "app", or a numeric uid)'
        )
    return text


def port(text: str) -> str:
    """An exposed port, ``N`` or ``N/tcp|udp|sctp`` with N in 1-65535."""
    match = _full(r"([0-9]{1,5})(/(tcp|udp|sctp))?").fullmatch(text)
    if match is None or not 1 <= int(match.group(1)) <= 65535:
        raise ValueError(
            f'{show(text)} is not a port (1-65535, optionally "/tcp", "/udp" or "/sctp")'
        )
    return text


def duration(text: str) -> str:
    """A healthcheck duration, ``30s``, ``1m30s``, ``500ms``."""
    if not _full(r"(?:[0-9]{1,9}(?:\.[0-9]{1,9})?(?:ms|s|m|h)){1,4}").fullmatch(text):
        raise ValueError(f'{show(text)} is not a duration (like "30s" or "1m30s")')
    return text


_PATH_GLOB = _full(rf"/(?:[*?{_PATH_CHARS}]+/)*[*?{_PATH_CHARS}]*")


def path_glob(text: str) -> str:
    """A pattern of absolute paths in an image (``[image] allow-data``): ``/`` and
    components of letters, digits, ``. _ @ % + = , ~ -`` and the globs ``* ?`` (``*``
    spans folders); no ``.``/``..`` components."""
    parts = text.split("/")
    if len(text) > 4096 or not _PATH_GLOB.fullmatch(text) or any(p in (".", "..") for p in parts):
        raise ValueError(
            f"{show(text)} is not a pattern of absolute paths made of {PATH_CHARSET} "
            'and the globs * ? (like "/models/*.safetensors")'
        )
    return text
