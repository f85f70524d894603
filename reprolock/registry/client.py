"""The registry v2 client: endpoints, auth challenges, manifests and blobs by digest."""

from __future__ import annotations

import base64
import difflib
import hashlib
import ipaddress
import json
import re
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests

from reprolock.errors import SourceError
from reprolock.model import Digest, ImageRef, Platform
from reprolock.model.oci import (
    ACCEPT_MANIFESTS,
    ImageConfig,
    Index,
    Manifest,
    parse_config,
    parse_manifest,
)
from reprolock.net.session import describe_failure
from reprolock.registry.auth import CredentialStore

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


def is_loopback(host: str) -> bool:
    """True for ``localhost``, ``127.0.0.1:5000``, ``[::1]:5000`` and the like."""
    if host.startswith("["):
        name = host[1:].partition("]")[0]
    else:
        name = host.rpartition(":")[0] if host.count(":") == 1 else host
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


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
        config_bytes = self.blob(ref, document.config.digest, endpoint=endpoint)
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
                    endpoint, ref, f"manifests/{reference}", {"Accept": ACCEPT_MANIFESTS}
                )
            except SourceError as exc:  # unreachable: try the next endpoint
                last = exc
                continue
            if response.status_code >= 500 and endpoint.is_mirror:
                last = self._error(response, ref, endpoint, reference)
                continue
            if response.status_code == 404 and not reference.startswith("sha256:"):
                raise self._unknown_tag(ref, endpoint, reference, response)
            if response.status_code != 200:
                raise self._error(response, ref, endpoint, reference)
            body = response.content
            actual = Digest.of(body)
            claimed = response.headers.get("Docker-Content-Digest")
            expected = reference if reference.startswith("sha256:") else claimed
            if expected and Digest.parse(expected) != actual:
                raise SourceError(
                    f"{ref.familiar}: the manifest from {endpoint.base} does not match its "
                    f"digest (expected {expected}, got {actual}).",
                    hint="The registry or a proxy altered it; do not use this image.",
                )
            media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
            return endpoint, body, media_type, actual
        assert last is not None
        raise last

    def blob(self, ref: ImageRef, digest: Digest, *, endpoint: _Endpoint | None = None) -> bytes:
        """A whole blob, checked against ``digest`` (for configs; use `open_blob` for layers)."""
        return b"".join(self.open_blob(ref, digest, endpoint=endpoint))

    def open_blob(
        self,
        ref: ImageRef,
        digest: Digest,
        *,
        endpoint: _Endpoint | None = None,
        chunk: int = 1 << 20,
    ) -> Iterator[bytes]:
        """Stream a blob; raises `SourceError` at the end if the content is not ``digest``."""
        endpoint = endpoint or self.endpoints(ref.registry)[0]
        response = self._get(endpoint, ref, f"blobs/{digest}", {}, stream=True)
        if response.status_code != 200:
            raise self._error(response, ref, endpoint, str(digest))
        hasher = hashlib.new(digest.algorithm)
        try:
            for data in response.iter_content(chunk):
                hasher.update(data)
                yield data
        except requests.RequestException as exc:
            raise SourceError(
                f"{ref.familiar}: reading blob {digest} failed: {describe_failure(exc)}."
            ) from None
        finally:
            response.close()
        if hasher.hexdigest() != digest.hex:
            raise SourceError(
                f"{ref.familiar}: blob {digest} from {endpoint.base} does not match its digest "
                f"(got {digest.algorithm}:{hasher.hexdigest()}).",
                hint="The registry or a proxy altered it; do not use this image.",
            )

    # -- HTTP and auth ---------------------------------------------------------------------------
    def _get(
        self,
        endpoint: _Endpoint,
        ref: ImageRef,
        path: str,
        headers: dict[str, str],
        *,
        stream: bool = False,
    ) -> requests.Response:
        url = f"{endpoint.base}/v2/{ref.repository}/{path}"
        key = (endpoint.base, ref.repository)
        for attempt in range(2):
            with self._lock:
                token = self._tokens.get(key)
            sent = dict(headers)
            if token:
                sent["Authorization"] = token
            try:
                response = self.session.get(url, headers=sent, stream=stream)
            except requests.RequestException as exc:
                raise SourceError(
                    f"cannot reach the registry {endpoint.base}: {describe_failure(exc)}.",
                    hint="Check the network, or set a mirror in [registry] mirrors.",
                ) from None
            if response.status_code != 401 or attempt == 1:
                return response
            challenge = response.headers.get("WWW-Authenticate", "")
            response.close()
            authorization = self._authorize(endpoint, ref, challenge)
            if authorization is None:
                return response
            with self._lock:
                self._tokens[key] = authorization
        raise AssertionError("unreachable")  # pragma: no cover

    def _authorize(self, endpoint: _Endpoint, ref: ImageRef, challenge: str) -> str | None:
        scheme, params = parse_challenge(challenge)
        host = urlsplit(endpoint.base).netloc
        registry = ref.registry if not endpoint.is_mirror else host
        login = self.credentials.login_for(registry) or (
            self.credentials.login_for(host) if host != registry else None
        )
        if scheme == "basic":
            if login is None:
                return None
            raw = f"{login.username}:{login.secret}".encode()
            return "Basic " + base64.b64encode(raw).decode()
        if scheme != "bearer" or "realm" not in params:
            return None
        query = {
            "service": params.get("service", ""),
            "scope": params.get("scope") or f"repository:{ref.repository}:pull",
        }
        auth = (login.username, login.secret) if login else None
        try:
            response = self.session.get(params["realm"], params=query, auth=auth)
        except requests.RequestException as exc:
            raise SourceError(
                f"cannot reach the token service {params['realm']}: {describe_failure(exc)}."
            ) from None
        if response.status_code != 200:
            raise SourceError(
                f"the token service {params['realm']} refused a token for {ref.repository} "
                f"({response.status_code}).",
                hint="Check your login for this registry (docker login, ~/.docker/config.json).",
            )
        try:
            data = response.json()
            token = data.get("token") or data.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not token:
            raise SourceError(f"the token service {params['realm']} sent no token.")
        return f"Bearer {token}"

    # -- errors ----------------------------------------------------------------------------------
    def _unknown_tag(
        self, ref: ImageRef, endpoint: _Endpoint, tag: str, response: requests.Response
    ) -> SourceError:
        """A missing tag, or a missing repository (registries say MANIFEST_UNKNOWN for both);
        the tag list tells which, and offers close tags."""
        listing = self._get(endpoint, ref, "tags/list", {})
        if listing.status_code == 404:
            return self._error(listing, ref, endpoint, tag)
        tags: list[str] = []
        if listing.status_code == 200:
            try:
                tags = [str(t) for t in listing.json().get("tags") or ()]
            except (ValueError, AttributeError):
                tags = []
        error = self._error(response, ref, endpoint, tag)
        close = difflib.get_close_matches(tag, tags, n=3, cutoff=0.6)
        if close:
            error.hint = "Tags with close names: " + ", ".join(close) + ". " + (error.hint or "")
        return error

    def _error(
        self, response: requests.Response, ref: ImageRef, endpoint: _Endpoint, reference: str
    ) -> SourceError:
        code = response.status_code
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


def _error_codes(response: requests.Response) -> set[str]:
    try:
        body = json.loads(response.content or b"{}")
        return {str(e.get("code")) for e in body.get("errors", []) if isinstance(e, dict)}
    except (ValueError, AttributeError):
        return set()
