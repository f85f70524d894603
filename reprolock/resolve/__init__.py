"""Resolution of a spec's layers for a target: Python wheels (and later the CUDA stack, base, apt)."""
