"""HTTP sessions: timeouts, retries with backoff, the system CA bundle, proxies, redaction."""

from __future__ import annotations

import os
import re
import ssl
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.utils import get_environ_proxies, get_netrc_auth
from urllib3.util.retry import Retry
from urllib3.util.ssl_ import create_urllib3_context

from reprolock import __version__, limits
from reprolock.net.config import NetConfig


class _CappedRetry(Retry):
    """urllib3's retry, honouring a server's ``Retry-After`` only up to a cap (a hostile
    or confused server could otherwise park a run for hours)."""

    def get_retry_after(self, response: Any) -> float | None:
        after = super().get_retry_after(response)
        if after is None:
            return None
        return min(after, limits.current().retry_after_seconds)


class _Adapter(HTTPAdapter):
    """Verifies TLS with one `ssl.SSLContext` for all its connections.

    Given a CA bundle path, requests has urllib3 build a context and load the bundle again
    for every new connection (about 18 ms of CPU for a system bundle, and a lock opens
    dozens of connections); here the bundle is loaded once, on first use.  Verification is
    the same: certificates must chain to the bundle and name the host.  A request with
    another ``verify`` than the session's is left to requests.
    """

    def __init__(self, ca_bundle: str | None, **kwargs: Any) -> None:
        self._bundle = ca_bundle
        self._context: ssl.SSLContext | None = None
        self._loading = threading.Lock()
        super().__init__(**kwargs)

    def _shared(self, verify: Any) -> ssl.SSLContext | None:
        """The session's context when ``verify`` is the session's bundle."""
        if not self._bundle or verify != self._bundle:
            return None
        with self._loading:
            if self._context is None:
                context = create_urllib3_context()  # urllib3's defaults: TLS 1.2+, names checked
                if Path(self._bundle).is_dir():
                    context.load_verify_locations(capath=self._bundle)
                else:
                    context.load_verify_locations(cafile=self._bundle)
                self._context = context
            return self._context

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: Any, cert: Any = None
    ) -> Any:
        host, pool = super().build_connection_pool_key_attributes(request, verify, cert)
        context = self._shared(verify) if host.get("scheme") == "https" else None
        if context is None:
            return host, pool
        kwargs: dict[str, Any] = dict(pool)
        kwargs.pop("ca_certs", None)
        kwargs.pop("ca_cert_dir", None)
        kwargs["ssl_context"] = context
        return host, kwargs

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        super().cert_verify(conn, url, verify, cert)  # type: ignore[no-untyped-call]
        if url.lower().startswith("https") and self._shared(verify) is not None:
            conn.ca_certs = None  # the shared context holds them: not loaded again
            conn.ca_cert_dir = None


class _Session(requests.Session):
    """Timeouts on every request; proxies from the environment; ``~/.netrc`` only for a
    request that carries no credential of its own.

    ``requests`` with ``trust_env`` lets netrc override the credentials of a URL and an
    explicit ``Authorization`` header; here an explicit credential always wins, and
    netrc is asked only when there is none.
    """

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._timeout = timeout
        self.trust_env = False
        self.max_redirects = limits.current().redirects
        # The environment's proxies and ~/.netrc's login, per scheme and host: the same for
        # every request of a run (reading them took a fifth of a request's CPU time).
        self._proxies: dict[tuple[str, str], dict[str, str]] = {}
        self._netrc: dict[tuple[str, str], tuple[str, str] | None] = {}

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", self._timeout)
        text = url.decode() if isinstance(url, bytes) else url
        parts = urlsplit(text)
        where = (parts.scheme, parts.netloc)
        if kwargs.get("proxies") is None:
            proxies = self._proxies.get(where)
            if proxies is None:
                proxies = self._proxies[where] = get_environ_proxies(text, no_proxy=None)
            kwargs["proxies"] = dict(proxies)
        headers = kwargs.get("headers") or {}
        explicit = (
            kwargs.get("auth") is not None
            or any(k.lower() == "authorization" for k in headers)
            or "@" in parts.netloc
        )
        if not explicit:
            if where not in self._netrc:
                self._netrc[where] = get_netrc_auth(text)
            netrc = self._netrc[where]
            if netrc is not None:
                kwargs["auth"] = netrc
        return super().request(method, url, *args, **kwargs)


def new_session(config: NetConfig) -> requests.Session:
    """A session with retries on connection errors, 429 and 5xx, and the CA bundle."""
    session = _Session(config.timeout)
    retry = _CappedRetry(
        total=config.retries,
        connect=config.retries,
        read=0,  # a read that timed out is not retried: the deadline is the request's
        status=config.retries,
        redirect=limits.current().redirects,
        backoff_factor=0.25,
        backoff_max=limits.current().retry_after_seconds,
        status_forcelist=(429, 500, 502, 503, 504),
        allowed_methods=frozenset({"GET", "HEAD"}),
        respect_retry_after_header=True,
        raise_on_status=False,
    )
    adapter = _Adapter(
        config.ca_bundle,
        max_retries=retry,
        pool_connections=config.pool_size,
        pool_maxsize=config.pool_size,
    )
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    if config.ca_bundle:
        session.verify = config.ca_bundle
    session.headers["User-Agent"] = f"reprolock/{__version__}"
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
