"""The registry v2 client: endpoints, auth challenges, manifests and blobs by digest."""

from __future__ import annotations

import base64
import contextlib
import difflib
import hashlib
import json
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO
from urllib.parse import urlsplit

import requests

from reprolock import limits
from reprolock.errors import SourceError
from reprolock.model import Digest, ImageRef, Platform
from reprolock.model.grammar import netloc_is_loopback as is_loopback
from reprolock.model.oci import (
    ACCEPT_MANIFESTS,
    ImageConfig,
    Index,
    Manifest,
    parse_config,
    parse_manifest,
)
from reprolock.net import http
from reprolock.registry.auth import CredentialStore, Login

_UNREACHABLE = "Check the network, or set a mirror in [registry] mirrors."
_TOKEN = re.compile(r"^[\x21-\x7e]{1,16384}$")  # printable, no spaces: safe in a header
# Token services that belong to a registry on another host of the same operator: the
# registry's login may go there (any other realm host gets only its own login, if any).
TOKEN_SERVICES = {
    "docker.io": frozenset({"auth.docker.io"}),
    "registry-1.docker.io": frozenset({"auth.docker.io"}),
    "registry.gitlab.com": frozenset({"gitlab.com"}),
}

DOCKER_HUB_ENDPOINT = "registry-1.docker.io"
_PARAM = re.compile(r'(\w+)="([^"]*)"|(\w+)=([^,\s]+)')


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """``Bearer realm="…",service="…"`` → ``("bearer", {"realm": …, "service": …})``."""
    scheme, _, rest = header.strip().partition(" ")
    params = {}
    for match in _PARAM.finditer(rest):
        key = match.group(1) or match.group(3)
        params[key.lower()] = match.group(2) if match.group(1) else match.group(4)
    return scheme.lower(), params


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistryOptions:
    mirrors: Mapping[str, str] = field(default_factory=dict)  # registry -> mirror host or URL
    insecure: frozenset[str] = frozenset()  # hosts reached over plain HTTP


@dataclass(frozen=True, slots=True, kw_only=True)
class PinnedImage:
    """An image reference resolved to digests for one platform."""

    ref: ImageRef
    endpoint: str  # the registry URL that answered (a mirror, or the origin)
    index_digest: Digest | None
    manifest_digest: Digest
    manifest: Manifest
    config: ImageConfig
    config_bytes: bytes  # the config blob as read (its digest was checked)
    manifest_bytes: bytes = b""  # the image manifest as read (its digest was checked)

    @property
    def config_digest(self) -> Digest:
        return self.manifest.config.digest


@dataclass(frozen=True, slots=True)
class _Endpoint:
    base: str  # scheme://host
    is_mirror: bool


class RegistryClient:
    """Reads manifests and blobs, verifying every digest; thread-safe."""

    def __init__(
        self,
        session: requests.Session,
        credentials: CredentialStore | None = None,
        options: RegistryOptions | None = None,
    ) -> None:
        self.session = session
        self.credentials = credentials or CredentialStore()
        self.options = options or RegistryOptions()
        self._tokens: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    # -- endpoints -----------------------------------------------------------------------
    def _base(self, host_or_url: str) -> str:
        if "://" in host_or_url:
            return host_or_url.rstrip("/")
        host = DOCKER_HUB_ENDPOINT if host_or_url == "docker.io" else host_or_url
        plain = is_loopback(host) or host in self.options.insecure
        return f"{'http' if plain else 'https'}://{host}"

    def endpoints(self, registry: str) -> list[_Endpoint]:
        out = []
        mirror = self.options.mirrors.get(registry)
        if mirror:
            out.append(_Endpoint(self._base(mirror), True))
        out.append(_Endpoint(self._base(registry), False))
        return out

    # -- high level ----------------------------------------------------------------------
    def resolve(self, ref: ImageRef, platform: Platform) -> PinnedImage:
        """Pin ``ref`` for ``platform``: index digest, manifest digest, config."""
        reference = str(ref.digest) if ref.digest else (ref.tag or "latest")
        endpoint, body, media_type, digest = self._manifest(ref, reference)
        index_digest = None
        document = self._parse(body, media_type, ref, digest)
        if isinstance(document, Index):
            index_digest = digest
            entry = document.for_platform(platform)
            if entry is None:
                have = ", ".join(document.platforms()) or "none"
                raise SourceError(
                    f"{ref.familiar} has no image for {platform}; it has {have}.",
                    hint="Choose another platform in environment.platforms, or another image.",
                )
            _endpoint, body, media_type, digest = self._manifest(
                ref, str(entry.digest), only=endpoint
            )
            document = self._parse(body, media_type, ref, digest)
            if not isinstance(document, Manifest):
                raise SourceError(
                    f"{ref.familiar}: the index entry for {platform} is not an image manifest."
                )
        config_bytes = self.blob(
            ref, document.config.digest, size=document.config.size, endpoint=endpoint
        )
        try:
            config = parse_config(config_bytes)
        except ValueError as exc:
            raise SourceError(f"{ref.familiar}: bad image config: {exc}.") from None
        if index_digest is None and (config.os, config.architecture) != (
            platform.os,
            platform.architecture,
        ):
            raise SourceError(
                f"{ref.familiar} is a single-platform image for {config.os}/"
                f"{config.architecture}, not {platform}.",
                hint="Use a multi-platform tag, or only this image's platform.",
            )
        return PinnedImage(
            ref=ref,
            endpoint=endpoint.base,
            index_digest=index_digest,
            manifest_digest=digest,
            manifest=document,
            config=config,
            config_bytes=config_bytes,
            manifest_bytes=body,
        )

    def _parse(
        self, body: bytes, media_type: str, ref: ImageRef, digest: Digest
    ) -> Manifest | Index:
        try:
            return parse_manifest(body, media_type)
        except ValueError as exc:
            raise SourceError(
                f"{ref.familiar}: the manifest {digest} is malformed: {exc}."
            ) from None

    # -- manifests and blobs ----------------------------------------------------------------
    def _manifest(
        self, ref: ImageRef, reference: str, only: _Endpoint | None = None
    ) -> tuple[_Endpoint, bytes, str, Digest]:
        endpoints = [only] if only else self.endpoints(ref.registry)
        last: SourceError | None = None
        for endpoint in endpoints:
            try:
                response = self._get(
                    endpoint,
                    ref,
                    f"manifests/{reference}",
                    {"Accept": ACCEPT_MANIFESTS},
                    cap=limits.current().manifest_bytes,
                    limit_name="manifest_bytes",
                )
            except SourceError as exc:  # unreachable: try the next endpoint
                last = exc
                continue
            if response.status >= 500 and endpoint.is_mirror:
                last = self._error(response, ref, endpoint, reference)
                continue
            if response.status == 404 and not reference.startswith("sha256:"):
                raise self._unknown_tag(ref, endpoint, reference, response)
            if response.status != 200:
                raise self._error(response, ref, endpoint, reference)
            body = response.body
            actual = Digest.of(body)
            claimed = response.header("Docker-Content-Digest").strip()
            expected = reference if reference.startswith("sha256:") else claimed
            try:
                wanted = Digest.parse(expected) if expected else None
            except ValueError:
                raise SourceError(
                    f"{ref.familiar}: {endpoint.base} sent a malformed Docker-Content-Digest "
                    f"header ({expected[:100]!r}).",
                    hint="The registry or a proxy is broken or hostile; do not use this image.",
                ) from None
            if wanted is not None and wanted != actual:
                raise SourceError(
                    f"{ref.familiar}: the manifest from {endpoint.base} does not match its "
                    f"digest (expected {expected}, got {actual}).",
                    hint="The registry or a proxy altered it; do not use this image.",
                )
            media_type = response.header("Content-Type").split(";")[0].strip()[:200]
            return endpoint, body, media_type, actual
        assert last is not None
        raise last

    def blob(
        self,
        ref: ImageRef,
        digest: Digest,
        *,
        size: int | None = None,
        endpoint: _Endpoint | None = None,
    ) -> bytes:
        """A whole blob of at most ``limits.config_bytes`` (and of its descriptor's
        ``size``), checked against ``digest``; for configs (`open_blob` streams layers)."""
        cap = limits.current().config_bytes
        if size is not None and size > cap:
            raise limits.exceeded(
                f"{ref.familiar}: blob {digest}", "config_bytes", actual=f"{size} bytes declared"
            )
        return b"".join(
            self.open_blob(
                ref, digest, size=size, endpoint=endpoint, cap=cap, limit_name="config_bytes"
            )
        )

    def open_blob(
        self,
        ref: ImageRef,
        digest: Digest,
        *,
        size: int | None = None,
        endpoint: _Endpoint | None = None,
        cap: int | None = None,
        limit_name: str = "layer_bytes",
    ) -> Iterator[bytes]:
        """Stream a blob: never more than its descriptor's ``size`` (or ``cap``); raises
        `SourceError` at the end if it is shorter or its content is not ``digest``."""
        endpoint = endpoint or self.endpoints(ref.registry)[0]
        bound = cap if cap is not None else limits.current().layer_bytes
        if size is not None:
            bound = min(bound, size)
        with self._open(
            endpoint,
            ref,
            f"blobs/{digest}",
            {},
            cap=bound,
            limit_name=limit_name
            if size is None or bound < size
            else f"its descriptor's size ({size} bytes)",
            what=f"{ref.familiar}: blob {digest} from {endpoint.base}",
        ) as response:
            if response.status != 200:
                body = response.read()
                raise self._error(
                    http.Reply(response.status, response.headers, response.url, body),
                    ref,
                    endpoint,
                    str(digest),
                )
            hasher = hashlib.new(digest.algorithm)
            received = 0
            for data in response.chunks():
                hasher.update(data)
                received += len(data)
                yield data
        if hasher.hexdigest() != digest.hex:
            raise SourceError(
                f"{ref.familiar}: blob {digest} from {endpoint.base} does not match its digest "
                f"(got {digest.algorithm}:{hasher.hexdigest()}).",
                hint="The registry or a proxy altered it; do not use this image.",
            )
        if size is not None and received != size:
            raise SourceError(
                f"{ref.familiar}: blob {digest} from {endpoint.base} is {received} bytes, its "
                f"descriptor says {size}.",
                hint="The registry or a proxy altered it; do not use this image.",
            )

    # -- pushing ---------------------------------------------------------------------------
    def _origin(self, ref: ImageRef) -> _Endpoint:
        """Where a push goes: the registry itself, never a mirror."""
        return self.endpoints(ref.registry)[-1]

    def _request(
        self,
        method: str,
        ref: ImageRef,
        url: str,
        *,
        what: str,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        body: Callable[[], bytes | IO[bytes]] | None = None,
        size: int = 0,
    ) -> http.Reply:
        """``method`` to ``url`` (on the registry's own host), answering one auth
        challenge (a push asks for its own scope)."""
        endpoint = self._origin(ref)
        key = (endpoint.base, ref.repository)
        for attempt in range(2):
            with self._lock:
                token = self._tokens.get(key)
            sent = dict(headers or {})
            if token:
                sent["Authorization"] = token
            data = body() if body is not None else None
            try:
                reply = http.send(
                    self.session,
                    method,
                    url,
                    what=what,
                    headers=sent,
                    params=params,
                    body=data,
                    size=size,
                    unreachable_hint=_UNREACHABLE,
                )
            finally:
                if data is not None and not isinstance(data, bytes):
                    data.close()
            if reply.status == 401 and attempt == 0:
                challenge = reply.header("WWW-Authenticate")[:4096]
                authorization = self._authorize(endpoint, ref, challenge)
                if authorization is not None:
                    with self._lock:
                        self._tokens[key] = authorization
                    continue
            return reply
        raise AssertionError("unreachable")  # pragma: no cover

    def _push_error(self, reply: http.Reply, ref: ImageRef, what: str) -> SourceError:
        if reply.status in (401, 403):
            return SourceError(
                f"{ref.familiar}: {urlsplit(self._origin(ref).base).netloc} refused to let you "
                f"push {what} ({reply.status}).",
                hint=f"Log in with push rights: `docker login "
                f"{urlsplit(self._origin(ref).base).netloc}`.",
            )
        codes = ", ".join(sorted(_error_codes(reply))) or "no error code"
        return SourceError(
            f"{ref.familiar}: the registry answered {reply.status} ({codes}) to the push of "
            f"{what}.",
            hint="The registry refused the upload; check its logs and your rights.",
        )

    def _same_host(self, ref: ImageRef, location: str) -> str:
        """An upload ``Location`` made absolute; `SourceError` unless it is on the
        registry's own host (credentials go nowhere else)."""
        base = self._origin(ref).base
        url = base + location if location.startswith("/") else location
        if urlsplit(url)[:2] != urlsplit(base)[:2]:
            raise SourceError(
                f"{ref.familiar}: the registry sends the upload to another host "
                f"({location[:100]!r}); refusing.",
                hint="A registry that uploads elsewhere is misconfigured or hostile.",
            )
        return url

    def has_blob(self, ref: ImageRef, digest: Digest) -> bool:
        base = self._origin(ref).base
        reply = self._request(
            "HEAD",
            ref,
            f"{base}/v2/{ref.repository}/blobs/{digest}",
            what=f"{ref.familiar}: blob {digest}",
        )
        return reply.status == 200

    def push_blob(
        self,
        ref: ImageRef,
        digest: Digest,
        size: int,
        opener: Callable[[], IO[bytes]],
        *,
        mount_from: str | None = None,
    ) -> str:
        """Upload a blob unless the repository has it: "present", "mounted" (from
        ``mount_from``, a repository of the same registry) or "uploaded"."""
        if self.has_blob(ref, digest):
            return "present"
        base = self._origin(ref).base
        what = f"blob {digest}"
        params = {"mount": str(digest), "from": mount_from} if mount_from else None
        start = self._request(
            "POST",
            ref,
            f"{base}/v2/{ref.repository}/blobs/uploads/",
            what=f"{ref.familiar}: {what}",
            params=params,
            headers={"Content-Length": "0"},
        )
        if start.status == 201 and mount_from:
            return "mounted"
        if start.status != 202 or not start.header("Location"):
            raise self._push_error(start, ref, what)
        location = self._same_host(ref, start.header("Location"))
        parts = urlsplit(location)
        query = [q for q in parts.query.split("&") if q and not q.startswith("digest=")]
        query.append(f"digest={digest}")
        url = parts._replace(query="&".join(query)).geturl()
        put = self._request(
            "PUT",
            ref,
            url,
            what=f"{ref.familiar}: {what}",
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
            body=opener,
            size=size,
        )
        if put.status != 201:
            raise self._push_error(put, ref, what)
        return "uploaded"

    def push_manifest(self, ref: ImageRef, reference: str, body: bytes, media_type: str) -> Digest:
        """PUT a manifest (or an index) as ``reference`` (a tag or its digest); the
        registry must answer with the digest of these bytes."""
        base = self._origin(ref).base
        digest = Digest.of(body)
        reply = self._request(
            "PUT",
            ref,
            f"{base}/v2/{ref.repository}/manifests/{reference}",
            what=f"{ref.familiar}: manifest {digest}",
            headers={"Content-Type": media_type, "Content-Length": str(len(body))},
            body=lambda: body,
            size=len(body),
        )
        if reply.status != 201:
            raise self._push_error(reply, ref, f"the manifest {digest}")
        claimed = reply.header("Docker-Content-Digest").strip()
        if claimed and claimed != str(digest):
            raise SourceError(
                f"{ref.familiar}: the registry stored the manifest as {claimed[:100]}, "
                f"not {digest}.",
                hint="The registry altered the manifest; do not use it.",
            )
        return digest

    # -- HTTP and auth ---------------------------------------------------------------------------
    def _get(
        self,
        endpoint: _Endpoint,
        ref: ImageRef,
        path: str,
        headers: dict[str, str],
        *,
        cap: int,
        limit_name: str,
    ) -> http.Reply:
        """A response read whole within ``cap`` (error bodies within ``token_bytes``)."""
        with self._open(endpoint, ref, path, headers, cap=cap, limit_name=limit_name) as response:
            body = response.read()
            return http.Reply(response.status, response.headers, response.url, body)

    @contextlib.contextmanager
    def _open(
        self,
        endpoint: _Endpoint,
        ref: ImageRef,
        path: str,
        headers: dict[str, str],
        *,
        cap: int,
        limit_name: str,
        what: str | None = None,
    ) -> Iterator[http.Streamed]:
        """GET ``/v2/<repository>/<path>``, answering one auth challenge."""
        url = f"{endpoint.base}/v2/{ref.repository}/{path}"
        key = (endpoint.base, ref.repository)
        for attempt in range(2):
            with self._lock:
                token = self._tokens.get(key)
            sent = dict(headers)
            if token:
                sent["Authorization"] = token
            with http.stream(
                self.session,
                url,
                what=what or f"{ref.familiar}: {path}",
                cap=cap,
                limit_name=limit_name,
                headers=sent,
                unreachable_hint=_UNREACHABLE,
            ) as response:
                if response.status == 401 and attempt == 0:
                    challenge = response.headers.get("WWW-Authenticate", "")[:4096]
                    authorization = self._authorize(endpoint, ref, challenge)
                    if authorization is not None:
                        with self._lock:
                            self._tokens[key] = authorization
                        continue
                yield response
                return
        raise AssertionError("unreachable")  # pragma: no cover

    def _login(self, endpoint: _Endpoint, ref: ImageRef) -> Login | None:
        host = urlsplit(endpoint.base).netloc
        registry = ref.registry if not endpoint.is_mirror else host
        return self.credentials.login_for(registry) or (
            self.credentials.login_for(host) if host != registry else None
        )

    def _realm_login(self, endpoint: _Endpoint, ref: ImageRef, realm: str) -> Login | None:
        """The login to send to a token service: the registry's own login only to the
        registry's host or its operator's known token service; any other host gets only
        a login configured for that host itself."""
        host = urlsplit(endpoint.base).netloc
        realm_host = urlsplit(realm).netloc
        registry = ref.registry if not endpoint.is_mirror else host
        if (
            realm_host in (host, registry)
            or realm_host in TOKEN_SERVICES.get(registry, ())
            or (realm_host in TOKEN_SERVICES.get(host, ()))
        ):
            return self._login(endpoint, ref)
        return self.credentials.login_for(realm_host)

    def _authorize(self, endpoint: _Endpoint, ref: ImageRef, challenge: str) -> str | None:
        scheme, params = parse_challenge(challenge)
        if scheme == "basic":
            login = self._login(endpoint, ref)
            if login is None:
                return None
            raw = f"{login.username}:{login.secret}".encode()
            return "Basic " + base64.b64encode(raw).decode()
        if scheme != "bearer" or "realm" not in params:
            return None
        realm = params["realm"]
        parts = urlsplit(realm)
        if parts.scheme not in ("https", "http") or not parts.netloc or parts.username:
            raise SourceError(
                f"{ref.familiar}: {endpoint.base} names a token service that is not a URL "
                f"({realm[:100]!r}).",
                hint="The registry is broken or hostile; do not use it.",
            )
        if parts.scheme == "http" and not (
            is_loopback(parts.netloc)
            or parts.netloc in self.options.insecure
            or (
                parts.netloc == urlsplit(endpoint.base).netloc and endpoint.base.startswith("http:")
            )
        ):
            raise SourceError(
                f"{ref.familiar}: {endpoint.base} sends logins to the token service {realm} "
                "over plain http; refusing.",
                hint="Use the registry over https, or list the host in [registry] insecure if "
                "it is a trusted local registry.",
            )
        login = self._realm_login(endpoint, ref, realm)
        query = {
            "service": params.get("service", ""),
            "scope": params.get("scope") or f"repository:{ref.repository}:pull",
        }
        reply = http.get(
            self.session,
            realm,
            what=f"the token service {realm}",
            cap=limits.current().token_bytes,
            limit_name="token_bytes",
            params=query,
            auth=(login.username, login.secret) if login else None,
            unreachable_hint=_UNREACHABLE,
        )
        if reply.status != 200:
            raise SourceError(
                f"the token service {realm} refused a token for {ref.repository} ({reply.status}).",
                hint="Check your login for this registry (docker login, ~/.docker/config.json).",
            )
        try:
            data = json.loads(reply.body)
            token = data.get("token") or data.get("access_token")
        except (ValueError, AttributeError, RecursionError):
            token = None
        if not isinstance(token, str) or not _TOKEN.match(token):
            raise SourceError(f"the token service {realm} sent no usable token.")
        return f"Bearer {token}"

    # -- errors ----------------------------------------------------------------------------------
    def _unknown_tag(
        self, ref: ImageRef, endpoint: _Endpoint, tag: str, response: http.Reply
    ) -> SourceError:
        """A missing tag, or a missing repository (registries say MANIFEST_UNKNOWN for both);
        the tag list tells which, and offers close tags."""
        listing = self._get(
            endpoint,
            ref,
            "tags/list",
            {},
            cap=limits.current().manifest_bytes,
            limit_name="manifest_bytes",
        )
        if listing.status == 404:
            return self._error(listing, ref, endpoint, tag)
        tags: list[str] = []
        if listing.status == 200:
            try:
                tags = [str(t)[:200] for t in json.loads(listing.body).get("tags") or ()][:100000]
            except (ValueError, AttributeError, TypeError, RecursionError):
                tags = []
        error = self._error(response, ref, endpoint, tag)
        close = difflib.get_close_matches(tag, tags, n=3, cutoff=0.6)
        if close:
            error.hint = "Tags with close names: " + ", ".join(close) + ". " + (error.hint or "")
        return error

    def _error(
        self, response: http.Reply, ref: ImageRef, endpoint: _Endpoint, reference: str
    ) -> SourceError:
        code = response.status
        errors = _error_codes(response)
        where = f"{endpoint.base}/{ref.repository}"
        via = " (through the mirror)" if endpoint.is_mirror else ""
        if code == 401:
            return SourceError(
                f"{ref.familiar}: the registry {endpoint.base} requires a login for "
                f"{ref.repository} (401 Unauthorized){via}.",
                hint=f"Run `docker login {urlsplit(endpoint.base).netloc}` or add the login to "
                "~/.docker/config.json.",
            )
        if code == 403:
            return SourceError(
                f"{ref.familiar}: access to {where} is forbidden (403){via}.",
                hint="Your login lacks pull rights on this repository.",
            )
        if code == 404:
            if "NAME_UNKNOWN" in errors:
                return SourceError(
                    f"{ref.familiar}: no repository {ref.repository} on {endpoint.base}{via}.",
                    hint="Check the image name, or the mirror's contents.",
                )
            if "BLOB_UNKNOWN" in errors or reference.startswith("sha256:"):
                return SourceError(
                    f"{ref.familiar}: {reference} is not in {where}{via}.",
                    hint="The image was deleted; lock again with --refresh-base.",
                )
            return SourceError(
                f'{ref.familiar}: unknown tag "{reference}" in {where}{via}.',
                hint="Check the tag; registries delete old tags "
                "(NVIDIA removes end-of-life CUDA tags).",
            )
        if code == 429:
            return SourceError(
                f"{ref.familiar}: {endpoint.base} is rate-limiting requests (429 Too Many "
                "Requests).",
                hint="Log in (anonymous Docker Hub pulls are limited), wait, or use a mirror.",
            )
        return SourceError(
            f"{ref.familiar}: {endpoint.base} answered {code} for {reference}.",
            hint="The registry is failing; retry later.",
        )


def _error_codes(response: http.Reply) -> set[str]:
    try:
        body = json.loads(response.body or b"{}")
        return {str(e.get("code"))[:100] for e in body.get("errors", []) if isinstance(e, dict)}
    except (ValueError, AttributeError, TypeError, RecursionError):
        return set()
