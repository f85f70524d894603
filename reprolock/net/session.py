"""HTTP sessions: timeouts, retries with backoff, the system CA bundle, proxies, redaction."""

from __future__ import annotations

import os
import re
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from reprolock import __version__
from reprolock.net.config import NetConfig

SYSTEM_CA_BUNDLES = (
    "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu, Alpine
    "/etc/pki/tls/certs/ca-bundle.crt",  # Fedora, RHEL
    "/etc/ssl/cert.pem",  # macOS, BSD
)


class _TimeoutSession(requests.Session):
    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._timeout = timeout

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", self._timeout)
        return super().request(method, url, *args, **kwargs)


def new_session(config: NetConfig) -> requests.Session:
    """A session with retries on connection errors, 429 and 5xx, and the CA bundle."""
    session = _TimeoutSession(config.timeout)
    retry = Retry(
        total=config.retries,
        connect=config.retries,
        read=config.retries,
        status=config.retries,
        backoff_factor=0.25,
        status_forcelist=(429, 500, 502, 503, 504),
        allowed_methods=frozenset({"GET", "HEAD"}),
        respect_retry_after_header=True,
        raise_on_status=False,
    )
    adapter = HTTPAdapter(
        max_retries=retry, pool_connections=config.pool_size, pool_maxsize=config.pool_size
    )
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    if config.ca_bundle:
        session.verify = config.ca_bundle
    session.headers["User-Agent"] = f"reprolock/{__version__}"
    session.trust_env = True  # proxies from the environment, ~/.netrc credentials
    return session


_USERINFO = re.compile(r"(?<=://)([^/@\s:]+)(:[^/@\s]*)?@")


def redact(text: str) -> str:
    """``text`` with credentials in any URL replaced: ``https://user:***@host``."""
    return _USERINFO.sub(lambda m: f"{m.group(1)}:***@" if m.group(2) else "***@", text)


def host_of(url: str) -> str:
    return urlsplit(url).netloc.rpartition("@")[2]


def environ() -> dict[str, str]:
    """A copy of the process environment (read only by the CLI layer's callers)."""
    return dict(os.environ)


def describe_failure(exc: requests.RequestException) -> str:
    """A short reason for a failed request, without urllib3's nested reprs."""
    text = str(exc)
    host = host_of(getattr(exc.request, "url", "") or "") if exc.request is not None else ""
    if isinstance(exc, requests.Timeout):
        return "timed out"
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS verification failed (set REQUESTS_CA_BUNDLE to the CA bundle your network uses)"
    if "NameResolutionError" in text or "Name or service not known" in text:
        return f"cannot resolve host {host}" if host else "cannot resolve the host name"
    if "Connection refused" in text:
        return "connection refused"
    if isinstance(exc, requests.ConnectionError):
        return "connection failed"
    return redact(text)
