"""Compute capabilities: ``8.0`` ↔ ``sm_80``; ``9.0a`` ↔ ``sm_90a``."""

from __future__ import annotations

import re
from dataclasses import dataclass

_CC = re.compile(r"^(\d{1,2})\.(\d)([af]?)$")
_SM = re.compile(r"^(?:sm|compute)_(\d{1,2})(\d)([af]?)$")


@dataclass(frozen=True, slots=True, order=True)
class ComputeCapability:
    """A CUDA compute capability such as 8.0 (A100) or 9.0 (H100)."""

    major: int
    minor: int
    suffix: str = ""  # "a" (arch-specific) or "f" (family), as in sm_90a

    @classmethod
    def parse(cls, text: str) -> ComputeCapability:
        """Parse ``8.0``, ``8.6``, ``sm_90``, ``sm_90a`` or ``compute_80``."""
        raw = text.strip().lower()
        match = _CC.match(raw) or _SM.match(raw)
        if not match:
            raise ValueError(
                f'"{text}" is not a compute capability; write it like "8.0" or "sm_80"'
            )
        return cls(int(match.group(1)), int(match.group(2)), match.group(3))

    @classmethod
    def looks_like(cls, text: str) -> bool:
        """True when ``text`` is written as a compute capability, not a GPU name."""
        raw = text.strip().lower()
        return bool(_CC.match(raw) or _SM.match(raw))

    @property
    def sm(self) -> str:
        """The native target name, ``sm_80``."""
        return f"sm_{self.major}{self.minor}{self.suffix}"

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}{self.suffix}"
