"""What the lock reads from a pinned base image's filesystem: its facts (interpreters, C
library, CUDA, users) and its apt files (dpkg status, sources, keys).

The image is read once per manifest digest: its layers are streamed from the registry
(never extracted), and both results are cached under the digest, which pins the content.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass

from reprolock import limits
from reprolock.api.base_layer import registry_client, spec_registry_options
from reprolock.api.network import NetOptions
from reprolock.errors import SourceError
from reprolock.image.read import read_image
from reprolock.image.registry_source import RegistryImage
from reprolock.inventory import base_facts as facts_cataloger
from reprolock.lock import BaseFacts, LockedBase
from reprolock.lock.codec import facts_from_dict, facts_to_dict
from reprolock.model import Digest, ImageRef, Platform
from reprolock.net.cache import Cache
from reprolock.spec import Spec

STATUS = "var/lib/dpkg/status"
_FACTS = "base-facts-1"  # the cache kind; the suffix changes when the cataloger does
_APT = "apt-base"


def apt_file(path: str) -> bool:
    """The files the apt layer needs: dpkg status, apt sources and keys."""
    if path in (STATUS, "etc/apt/sources.list", "etc/apt/trusted.gpg"):
        return True
    if path.startswith(("etc/apt/sources.list.d/", "etc/apt/trusted.gpg.d/")):
        return True
    return path.startswith("usr/share/keyrings/") and path.endswith((".gpg", ".asc"))


@dataclass(frozen=True, slots=True, kw_only=True)
class BaseFiles:
    """What the apt layer needs from the base image: dpkg status, sources, keys."""

    files: Mapping[str, bytes]

    def text(self, path: str) -> str:
        return self.files.get(path, b"").decode("utf-8", "replace")

    def sources(self) -> dict[str, str]:
        return {
            p: self.text(p)
            for p in self.files
            if p == "etc/apt/sources.list" or p.startswith("etc/apt/sources.list.d/")
        }

    def keyrings(self) -> dict[str, bytes]:
        return {
            p: v
            for p, v in self.files.items()
            if p == "etc/apt/trusted.gpg"
            or p.startswith(("etc/apt/trusted.gpg.d/", "usr/share/keyrings/"))
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class BaseContents:
    facts: BaseFacts
    files: BaseFiles


def read_base(base: LockedBase, platform: Platform, spec: Spec, net: NetOptions) -> BaseContents:
    """The facts and apt files of the pinned ``base`` for ``platform``: from the cache, or
    read from its registry (through the spec's mirrors) and cached."""
    cache = Cache(net.cache_dir)
    key = Digest.parse(base.manifest_digest).hex
    cap = limits.current().catalog_total_bytes * 2
    facts = _cached_facts(cache.get_ref(_FACTS, key, cap=cap), base.manifest_digest)
    files = _decode_files(cache.get_ref(_APT, key, cap=cap))
    if facts is not None and files is not None:
        return BaseContents(facts=facts, files=BaseFiles(files=files))
    if net.config.offline:
        raise SourceError(
            f"{base.ref}: what the lock reads from the base image (its interpreters, C "
            "library, users, apt files) is not cached, and --offline forbids reading the image.",
            hint="Run `reprolock lock` once online.",
        )
    ref = ImageRef.parse(base.ref)
    pinned = ImageRef(
        registry=ref.registry,
        repository=ref.repository,
        tag=ref.tag,
        digest=Digest.parse(base.manifest_digest),
    )
    client = registry_client(net, spec_registry_options(spec))
    image = RegistryImage(client, pinned, platform)
    read = read_image(
        image,
        want_content=lambda p: apt_file(p) or facts_cataloger.want_content(p),
        want_hash=lambda _p: False,
    )
    found: dict[str, bytes] = {}
    for node in read.view.walk():
        path = node.entry.path
        if apt_file(path) and (content := read.view.read(path)) is not None:
            found[path] = content
    config = read.config
    env = dict(config.env) if config is not None else {}
    facts = facts_cataloger.base_facts(read.view, env)
    cache.put_ref(_FACTS, key, json.dumps(facts_to_dict(facts), sort_keys=True).encode())
    cache.put_ref(
        _APT,
        key,
        json.dumps({k: base64.b64encode(v).decode() for k, v in sorted(found.items())}).encode(),
    )
    return BaseContents(facts=facts, files=BaseFiles(files=found))


def _cached_facts(data: bytes | None, digest: str) -> BaseFacts | None:
    """Cached facts, checked as the lock's are; None (a miss) when damaged."""
    if data is None:
        return None
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):
        return None
    return facts_from_dict(value, source=f"cached facts of {digest}")


def _decode_files(data: bytes | None) -> dict[str, bytes] | None:
    """The cached apt files of a base image; None when absent or damaged (a miss)."""
    if data is None:
        return None
    try:
        value = json.loads(data)
        if not isinstance(value, dict):
            return None
        return {
            str(k): base64.b64decode(v, validate=True)
            for k, v in value.items()
            if isinstance(k, str) and isinstance(v, str) and apt_file(k)
        }
    except (ValueError, RecursionError, binascii.Error):
        return None
