"""Artifacts emitted from a lock (never from the spec): requirements.txt, pylock.toml, …"""
