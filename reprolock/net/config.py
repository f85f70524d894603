"""Network settings, kept apart from the HTTP stack so reading them imports no client."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SYSTEM_CA_BUNDLES = (
    "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu, Alpine
    "/etc/pki/tls/certs/ca-bundle.crt",  # Fedora, RHEL
    "/etc/ssl/cert.pem",  # macOS, BSD
)


@dataclass(frozen=True, slots=True, kw_only=True)
class NetConfig:
    """How to reach the network; built by the CLI from options and the environment."""

    ca_bundle: str | None = None
    timeout: float = 30.0
    retries: int = 4
    pool_size: int = 32
    offline: bool = False

    @classmethod
    def from_environment(cls, environ: dict[str, str], *, offline: bool = False) -> NetConfig:
        """CA bundle from ``REQUESTS_CA_BUNDLE``/``SSL_CERT_FILE``, else the system's."""
        bundle = environ.get("REQUESTS_CA_BUNDLE") or environ.get("SSL_CERT_FILE")
        if not bundle:
            bundle = next((b for b in SYSTEM_CA_BUNDLES if Path(b).is_file()), None)
        return cls(ca_bundle=bundle, offline=offline)
