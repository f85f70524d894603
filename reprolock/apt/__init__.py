"""The apt layer: archives, their indexes and an apt-like resolver, pure where it can be."""
