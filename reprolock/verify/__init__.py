"""Comparing environments: what changed between two locks, two images, or a lock and an image."""
