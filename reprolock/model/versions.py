"""Version values that are not PEP 440: NVIDIA driver, CUDA toolkit, target Python."""

from __future__ import annotations

import re
from dataclasses import dataclass

_NUMERIC = re.compile(r"^\d+(\.\d+)*$")


def _components(text: str, what: str, example: str, max_parts: int) -> tuple[int, ...]:
    raw = text.strip()
    if raw.startswith("-"):
        raise ValueError(
            f'{what} "{text}" is negative; write it as a positive number like "{example}"'
        )
    if not _NUMERIC.match(raw) or raw.count(".") >= max_parts:
        raise ValueError(f'"{text}" is not a {what}; write it like "{example}"')
    return tuple(int(p) for p in raw.split("."))


@dataclass(frozen=True, slots=True, order=True)
class DriverVersion:
    """An NVIDIA Linux driver version as nvidia-smi prints it, e.g. ``535.104.05``.

    The text is kept, since the last component is zero-padded (``.05``).
    """

    parts: tuple[int, ...]
    text: str

    @classmethod
    def parse(cls, text: str) -> DriverVersion:
        """Parse ``535``, ``535.104`` or ``535.104.05``; ValueError otherwise."""
        parts = _components(text, "driver version", "535.104.05", 3)
        return cls(parts, text.strip())

    @property
    def major(self) -> int:
        return self.parts[0]

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True, order=True)
class CudaVersion:
    """A CUDA toolkit version: ``12.4`` or ``12.4.1``."""

    parts: tuple[int, ...]

    @classmethod
    def parse(cls, text: str) -> CudaVersion:
        parts = _components(text, "CUDA version", "12.4.1", 3)
        if len(parts) < 2:
            raise ValueError(f'"{text}" is not a CUDA version; write major.minor like "12.4"')
        return cls(parts)

    @property
    def major(self) -> int:
        return self.parts[0]

    @property
    def minor(self) -> int:
        return self.parts[1]

    def __str__(self) -> str:
        return ".".join(str(p) for p in self.parts)


_PRE = re.compile(r"^(\d+\.\d+\.\d+)((?:a|b|rc)\d+)$")


@dataclass(frozen=True, slots=True, order=True)
class PythonVersion:
    """The target CPython: ``3.11`` (feature release) or ``3.11.2`` (exact); an exact
    interpreter may be a pre-release (``3.11.0rc1``: a distribution's, when asked for)."""

    parts: tuple[int, ...]
    pre: str = ""  # "rc1", "b2": only for an interpreter found to be a pre-release

    @classmethod
    def parse(cls, text: str) -> PythonVersion:
        parts = _components(text, "Python version", "3.11", 3)
        if len(parts) < 2 or parts[0] != 3 or parts[1] < 8:
            raise ValueError(
                f'Python "{text}" is not supported; reprolock targets CPython 3.8 or newer, '
                'written like "3.11" or "3.11.2"'
            )
        return cls(parts)

    @classmethod
    def parse_exact(cls, text: str) -> PythonVersion:
        """An interpreter's version: as `parse`, or ``X.Y.Z`` with ``aN``/``bN``/``rcN``."""
        found = _PRE.match(text.strip())
        if found is None:
            return cls.parse(text)
        return cls(cls.parse(found.group(1)).parts, found.group(2))

    @property
    def feature(self) -> str:
        """``3.11`` for both ``3.11`` and ``3.11.2``."""
        return f"{self.parts[0]}.{self.parts[1]}"

    @property
    def full(self) -> str:
        """The full version; ``X.Y.0`` when only ``X.Y`` is known (as uv assumes)."""
        parts = (*self.parts, 0) if len(self.parts) == 2 else self.parts
        return ".".join(str(p) for p in parts) + self.pre

    def __str__(self) -> str:
        return ".".join(str(p) for p in self.parts) + self.pre
