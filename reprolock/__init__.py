"""reprolock: lock an ML Docker environment into a fully pinned, checkable artifact."""

__version__ = "0.1.0"
