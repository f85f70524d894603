"""Read images without running them: sources, one-pass layer scans, the merged filesystem."""
