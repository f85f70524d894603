"""Resolution of a spec's layers for a target (Python wheels; later CUDA, base, apt)."""
