"""The base image of a lock: the spec's ref pinned by digest for every target platform."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from reprolock.api.network import NetOptions
from reprolock.errors import SourceError
from reprolock.lock import LockedBase, LockedTarget
from reprolock.model import ImageRef, Platform
from reprolock.spec import Spec

if TYPE_CHECKING:  # the registry client is imported when a base is pinned (not every lock)
    from reprolock.registry import PinnedImage, RegistryClient, RegistryOptions


def registry_client(net: NetOptions, options: RegistryOptions) -> RegistryClient:
    """A client with the given mirrors and insecure registries and the user's logins."""
    from reprolock.net.session import new_session  # noqa: PLC0415
    from reprolock.registry import CredentialStore, RegistryClient  # noqa: PLC0415

    credentials = CredentialStore()
    if net.docker_config is not None:
        text, source = net.docker_config
        credentials = CredentialStore.from_text(text, source=source)
    return RegistryClient(new_session(net.config), credentials, options)


def spec_registry_options(spec: Spec) -> RegistryOptions:
    from reprolock.registry import RegistryOptions  # noqa: PLC0415

    return RegistryOptions(
        mirrors=dict(spec.registry.mirrors), insecure=frozenset(spec.registry.insecure)
    )


def locked_base(pinned: PinnedImage) -> LockedBase:
    config = pinned.config
    return LockedBase(
        ref=pinned.ref.familiar,
        index_digest=None if pinned.index_digest is None else str(pinned.index_digest),
        manifest_digest=str(pinned.manifest_digest),
        config_digest=str(pinned.config_digest),
        diff_ids=tuple(str(d) for d in config.diff_ids),
        env=config.env,
        user=config.user,
        labels=config.labels,
        size=min(sum(layer.size for layer in pinned.manifest.layers), (1 << 63) - 1),
    )


def pin_bases(
    spec: Spec,
    net: NetOptions,
    *,
    previous: Mapping[Platform, LockedTarget],
    refresh: bool,
) -> dict[Platform, LockedBase]:
    """The base per platform; a pin already in the lock for the same ref is kept
    unless ``refresh`` (tags move: the lock holds the digest until asked)."""
    ref = spec.base.ref
    if ref is None:
        return {}
    out: dict[Platform, LockedBase] = {}
    client: RegistryClient | None = None
    for platform in spec.environment.platforms:
        old = previous.get(platform)
        if (
            not refresh
            and old is not None
            and old.base is not None
            and old.base.ref == ref.familiar
        ):
            out[platform] = old.base
            continue
        if net.config.offline:
            raise SourceError(
                f"{ref.familiar} is not pinned for {platform} in the lock, and "
                "--offline forbids asking the registry."
            )
        client = client or registry_client(net, spec_registry_options(spec))
        out[platform] = locked_base(client.resolve(ref, platform))
    return out


def measure_beyond_os(
    spec: Spec, net: NetOptions, ref: ImageRef, *, platform: Platform
) -> int | None:
    """The compressed bytes of an image's layers above its first (the OS layer an
    ``nvidia/cuda`` image starts FROM): what choosing another base avoids.  Best effort,
    for ``explain``: None offline or when the registry cannot tell."""
    if net.config.offline:
        return None
    try:
        pinned = registry_client(net, spec_registry_options(spec)).resolve(ref, platform)
    except SourceError:
        return None
    return min(sum(layer.size for layer in pinned.manifest.layers[1:]), (1 << 63) - 1)
