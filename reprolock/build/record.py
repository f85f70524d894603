"""What ``reprolock build`` records of the images it built: ``reprolock.build.toml``.

The lock never depends on a build (a lock is the input of every build), so the digests go
to a file beside it, one entry per target, tied to the lock's digest: an entry of
another lock is stale and ignored.  ``verify image`` compares an image's config digest
(which fixes every layer's content, by diff_id, and the config) and its manifest digest
(which also fixes the compression) with the entry of its target: the same config digest
proves the image is the one this build made from this lock, in milliseconds.

The record is an assertion of whoever ran the build, as trustworthy as the lock it sits
beside; anyone can check it by building again (the digests must come out the same).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field

import tomli_w

from reprolock.errors import InputError
from reprolock.model import grammar

NAME = "reprolock.build.toml"
FORMAT = "1"


@dataclass(frozen=True, slots=True, kw_only=True)
class Built:
    """One target's build."""

    platform: str
    manifest_digest: str
    config_digest: str
    compression: str
    bytecode: str  # "cpython-311", or "none"
    epoch: int
    built_by: str


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildRecord:
    lock_digest: str
    targets: dict[str, Built] = field(default_factory=dict)


def to_text(record: BuildRecord) -> str:
    data = {
        "format": FORMAT,
        "lock-digest": record.lock_digest,
        "targets": {
            target: {
                "platform": b.platform,
                "manifest-digest": b.manifest_digest,
                "config-digest": b.config_digest,
                "compression": b.compression,
                "bytecode": b.bytecode,
                "epoch": b.epoch,
                "built-by": b.built_by,
            }
            for target, b in sorted(record.targets.items())
        },
    }
    header = (
        "# Written by `reprolock build`: the digests of the images it built from the lock\n"
        "# beside this file. `reprolock verify image` compares an image with them.\n"
    )
    return header + tomli_w.dumps(data)


def _string(table: dict[str, object], key: str, where: str) -> str:
    value = table.get(key)
    if not isinstance(value, str):
        raise InputError(f"{where}.{key} is missing or not a string.", hint=_HINT)
    return value


_HINT = "Delete the file and run `reprolock build` again; it is written by reprolock only."


def parse(text: str, where: str) -> BuildRecord:
    """A record file's content, every field checked (`InputError` naming the bad one)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{where}: not TOML ({exc}).", hint=_HINT) from None
    if data.get("format") != FORMAT:
        raise InputError(f"{where}: format {data.get('format')!r} is not {FORMAT}.", hint=_HINT)
    lock_digest = _checked(
        _string(data, "lock-digest", where), grammar.sha256_digest, f"{where}: lock-digest"
    )
    targets: dict[str, Built] = {}
    raw = data.get("targets", {})
    if not isinstance(raw, dict):
        raise InputError(f"{where}: targets is not a table.", hint=_HINT)
    for target, table in raw.items():
        at = f"{where}: targets.{grammar.show(str(target))}"
        _checked(str(target), grammar.target_id, at)
        if not isinstance(table, dict):
            raise InputError(f"{at} is not a table.", hint=_HINT)
        epoch = table.get("epoch")
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise InputError(f"{at}.epoch is not a time.", hint=_HINT)

        def field(
            key: str, check: grammar.Grammar, table: dict[str, object] = table, at: str = at
        ) -> str:
            return _checked(_string(table, key, at), check, f"{at}.{key}")

        targets[str(target)] = Built(
            platform=field("platform", grammar.label_text),
            manifest_digest=field("manifest-digest", grammar.sha256_digest),
            config_digest=field("config-digest", grammar.sha256_digest),
            compression=field("compression", grammar.label_text),
            bytecode=field("bytecode", grammar.label_text),
            epoch=epoch,
            built_by=field("built-by", grammar.label_text),
        )
    return BuildRecord(lock_digest=lock_digest, targets=targets)


def _checked(value: str, check: grammar.Grammar, where: str) -> str:
    try:
        return check(value)
    except ValueError as exc:
        raise InputError(f"{where}: {exc}.", hint=_HINT) from None
