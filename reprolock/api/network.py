"""Network settings of one command: built by the CLI, used by every layer that fetches."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from reprolock.errors import InputError
from reprolock.model.grammar import is_loopback
from reprolock.net.cache import public_url
from reprolock.net.config import NetConfig


@dataclass(frozen=True, slots=True, kw_only=True)
class NetOptions:
    """How to reach indexes and registries, and where to cache."""

    config: NetConfig
    cache_dir: Path | None
    refresh: bool = False  # revalidate every cached index page, however young
    # index name -> (username, password), from REPROLOCK_INDEX_<NAME>_USERNAME/_PASSWORD
    credentials: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    # the docker config.json (text, path) with registry logins, when there is one
    docker_config: tuple[str, str] | None = None


def credential_key(index_name: str) -> str:
    """How an index name appears in credential variables: ``pytorch-cu124`` → ``PYTORCH_CU124``."""
    return re.sub(r"[^A-Za-z0-9]", "_", index_name).upper()


def with_credentials(url: str, credentials: tuple[str, str] | None) -> str:
    """``url`` with user and password inserted, unless it already carries some.

    Credentials travel only over https, or to a loopback host: `InputError` otherwise.
    """
    parts = urlsplit(url)
    if credentials is None and not parts.password:
        return url
    host = parts.hostname or ""
    if parts.scheme != "https" and not is_loopback(host):
        raise InputError(
            f"{public_url(url)}: refusing to send index credentials over plain "
            f"{parts.scheme}:// to {host}.",
            hint="Use the index's https:// URL (or a loopback proxy); credentials are never "
            "sent in clear over the network.",
        )
    if credentials is None or "@" in parts.netloc:
        return url
    user, password = (quote(c, safe="") for c in credentials)
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{parts.netloc}"))
