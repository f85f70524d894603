"""A GPU host as `doctor` sees it, and whether it can run a locked target (pure)."""
