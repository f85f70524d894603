"""Checked reading of TOML documents: key paths, their lines, and located problems."""
