"""The one place that builds HTTP sessions, and the on-disk cache."""

from reprolock.net.cache import Cache
from reprolock.net.session import NetConfig, new_session, redact

__all__ = ["Cache", "NetConfig", "new_session", "redact"]
