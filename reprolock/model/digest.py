"""Content digests as OCI writes them: ``sha256:<64 hex>``."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

_HEX_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}
_DIGEST = re.compile(r"^([a-z0-9]+(?:[.+_-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$")


@dataclass(frozen=True, slots=True, order=True)
class Digest:
    """A content digest, ``algorithm:hex``."""

    algorithm: str
    hex: str

    @classmethod
    def parse(cls, text: str) -> Digest:
        match = _DIGEST.match(text.strip())
        if not match:
            raise ValueError(f'"{text}" is not a digest; write it like "sha256:<64 hex digits>"')
        algorithm, value = match.group(1), match.group(2).lower()
        expected = _HEX_LENGTHS.get(algorithm)
        if expected is None:
            raise ValueError(f'unsupported digest algorithm "{algorithm}" in "{text}"')
        if len(value) != expected or not all(c in "0123456789abcdef" for c in value):
            raise ValueError(f'"{text}" is not a valid {algorithm} digest ({expected} hex digits)')
        return cls(algorithm, value)

    @classmethod
    def of(cls, data: bytes, algorithm: str = "sha256") -> Digest:
        """The digest of ``data``."""
        return cls(algorithm, hashlib.new(algorithm, data).hexdigest())

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"
