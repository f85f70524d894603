"""An OCI distribution (registry v2) client: pin images by digest, read manifests and blobs."""

from reprolock.registry.auth import CredentialStore, Login
from reprolock.registry.client import PinnedImage, RegistryClient, RegistryOptions

__all__ = ["CredentialStore", "Login", "PinnedImage", "RegistryClient", "RegistryOptions"]
