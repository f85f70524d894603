"""OCI image-spec values shared by the registry client and the image readers.

Parsers take the raw JSON bytes and return frozen values; they raise ValueError
with a message naming the bad field (``layers[2].size``, ``config.Env[0]``), which
the callers turn into a `SourceError` naming the image.  Every field is checked
for its type where it enters: the bytes may come from a hostile registry or file.
Docker's v2 schema 2 types are accepted beside the OCI ones (they have the same shape).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from reprolock import limits
from reprolock.model import grammar
from reprolock.model.digest import Digest
from reprolock.model.platform import Platform

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
ACCEPT_MANIFESTS = ", ".join((OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST))

MAX_SIZE = (1 << 63) - 1  # a descriptor's size is an int64


@dataclass(frozen=True, slots=True, kw_only=True)
class OciPlatform:
    os: str
    architecture: str
    variant: str | None = None

    def matches(self, wanted: Platform) -> bool:
        """True when this index entry is an image for ``wanted``."""
        if self.os != wanted.os or self.architecture != wanted.architecture:
            return False
        if wanted.architecture == "arm64":  # v8 is the only arm64 variant; often left out
            return self.variant in (None, "", "v8")
        return (self.variant or None) == (wanted.variant or None)

    def __str__(self) -> str:
        return f"{self.os}/{self.architecture}" + (f"/{self.variant}" if self.variant else "")


@dataclass(frozen=True, slots=True, kw_only=True)
class Descriptor:
    media_type: str
    digest: Digest
    size: int
    platform: OciPlatform | None = None
    annotations: tuple[tuple[str, str], ...] = ()

    def annotation(self, key: str) -> str | None:
        return next((v for k, v in self.annotations if k == key), None)


@dataclass(frozen=True, slots=True, kw_only=True)
class Manifest:
    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Index:
    media_type: str
    manifests: tuple[Descriptor, ...]

    def for_platform(self, platform: Platform) -> Descriptor | None:
        return next(
            (m for m in self.manifests if m.platform and m.platform.matches(platform)), None
        )

    def platforms(self) -> list[str]:
        return sorted(
            {
                str(m.platform)
                for m in self.manifests
                if m.platform and m.platform.architecture != "unknown"
            }
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageConfig:
    """What later stages need from an image config blob."""

    os: str
    architecture: str
    variant: str | None
    env: tuple[tuple[str, str], ...]
    user: str | None
    labels: tuple[tuple[str, str], ...]
    entrypoint: tuple[str, ...] | None
    cmd: tuple[str, ...] | None
    working_dir: str | None
    diff_ids: tuple[Digest, ...]
    history: tuple[str, ...] = ()  # created_by of each history entry, in order
    # created_by of the entries that made a layer, one per diff_id; () when the history
    # does not account for every layer
    layer_steps: tuple[str, ...] = ()


# -- checked JSON ---------------------------------------------------------------------------


def _show(value: object) -> str:
    """A JSON value for a message: strings escaped and cut, containers named."""
    if isinstance(value, str):
        return grammar.show(value)
    if isinstance(value, dict | list):
        return "an object" if isinstance(value, dict) else "an array"
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")


def load_json(data: bytes, what: str) -> object:
    """``data`` as JSON: UTF-8, no NaN/Infinity, nested at most ``limits.nesting`` deep.

    Anything else (including input that would exhaust the parser's recursion) is a
    ValueError naming ``what``.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"the {what} is not UTF-8 text (byte {exc.start})") from None
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError(f"the {what} nests too deeply") from None
    except ValueError as exc:
        raise ValueError(f"the {what} is not JSON ({exc})") from None
    depth = _depth(value)
    if depth > limits.current().nesting:
        raise ValueError(
            f"the {what} nests {depth} levels deep, more than reprolock's limit of "
            f"{limits.current().nesting} ({limits.ENV_PREFIX}NESTING)"
        )
    return value


def _depth(value: object) -> int:
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for v in item)
    return deepest


def _object(data: bytes, what: str) -> dict[str, Any]:
    value = load_json(data, what)
    if not isinstance(value, dict):
        raise ValueError(f"the {what} is not a JSON object")
    return value


def strict_digest(value: object, where: str) -> Digest:
    """A required digest: exactly ``sha256:`` and 64 lowercase hex digits."""
    if not isinstance(value, str):
        raise ValueError(f"{where} is not a digest: {_show(value)}")
    try:
        grammar.sha256_digest(value)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    return Digest("sha256", value[7:])


def _string(doc: dict[str, Any], key: str, where: str) -> str | None:
    """An optional string field (absent or null: None)."""
    value = doc.get(key)
    if value is None or isinstance(value, str):
        return value
    raise ValueError(f"{where}{key} is not a string: {_show(value)}")


def _mapping(doc: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    """An optional object field (absent or null: empty)."""
    value = doc.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{where}{key} is not an object: {_show(value)}")
    return value


def _array(doc: dict[str, Any], key: str, where: str) -> list[Any] | None:
    """An optional array field (absent or null: None)."""
    value = doc.get(key)
    if value is None or isinstance(value, list):
        return value
    raise ValueError(f"{where}{key} is not an array: {_show(value)}")


def _strings(doc: dict[str, Any], key: str, where: str) -> tuple[str, ...] | None:
    items = _array(doc, key, where)
    if items is None:
        return None
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise ValueError(f"{where}{key}[{i}] is not a string: {_show(item)}")
    return tuple(items)


def _string_map(doc: dict[str, Any], key: str, where: str) -> tuple[tuple[str, str], ...]:
    mapping = _mapping(doc, key, where)
    for name, value in mapping.items():
        if not isinstance(value, str):
            raise ValueError(f"{where}{key}[{json.dumps(name)}] is not a string: {_show(value)}")
    return tuple(sorted(mapping.items()))


# -- manifests and indexes ------------------------------------------------------------------


def _descriptor(value: object, where: str) -> Descriptor:
    if not isinstance(value, dict):
        raise ValueError(f"{where} is not an object")
    for key in ("digest", "size"):
        if key not in value:
            raise ValueError(f"{where} has no {key}")
    digest = strict_digest(value["digest"], f"{where}.digest")
    size = value["size"]
    if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= MAX_SIZE:
        raise ValueError(f"{where}.size is not a non-negative 64-bit integer: {_show(size)}")
    media_type = _string(value, "mediaType", f"{where}.") or ""
    platform = None
    if value.get("platform") is not None:
        p = _mapping(value, "platform", f"{where}.")
        at = f"{where}.platform."
        platform = OciPlatform(
            os=_string(p, "os", at) or "",
            architecture=_string(p, "architecture", at) or "",
            variant=_string(p, "variant", at) or None,
        )
    return Descriptor(
        media_type=media_type,
        digest=digest,
        size=size,
        platform=platform,
        annotations=_string_map(value, "annotations", f"{where}."),
    )


def parse_manifest(data: bytes, media_type: str) -> Manifest | Index:
    """An image manifest or an index (manifest list), by media type or by shape."""
    doc = _object(data, "manifest")
    kind = _string(doc, "mediaType", "") or media_type
    if kind in INDEX_TYPES or (not kind and "manifests" in doc):
        entries = doc.get("manifests")
        if not isinstance(entries, list):
            raise ValueError("the index has no manifests list")
        return Index(
            media_type=kind or OCI_INDEX,
            manifests=tuple(_descriptor(m, f"manifests[{i}]") for i, m in enumerate(entries)),
        )
    if kind in MANIFEST_TYPES or (not kind and "layers" in doc):
        layers = doc.get("layers")
        if not isinstance(layers, list):
            raise ValueError("the manifest has no layers list")
        return Manifest(
            media_type=kind or OCI_MANIFEST,
            config=_descriptor(doc.get("config"), "config"),
            layers=tuple(_descriptor(x, f"layers[{i}]") for i, x in enumerate(layers)),
        )
    raise ValueError(
        f"unsupported manifest media type {_show(kind)} (schema 1 manifests are obsolete)"
    )


# -- image config ---------------------------------------------------------------------------


def parse_config(data: bytes) -> ImageConfig:
    """The fields of an image config blob later stages use, each checked for its type."""
    doc = _object(data, "image config")
    config = _mapping(doc, "config", "")
    env = tuple(
        (name, value)  # an item without "=" has an empty value
        for name, _, value in (
            item.partition("=") for item in _strings(config, "Env", "config.") or ()
        )
    )
    rootfs = _mapping(doc, "rootfs", "")
    diff_ids = tuple(
        strict_digest(d, f"rootfs.diff_ids[{i}]")
        for i, d in enumerate(_array(rootfs, "diff_ids", "rootfs.") or ())
    )
    history: list[str] = []
    steps: list[str] = []
    for i, entry in enumerate(_array(doc, "history", "") or ()):
        if not isinstance(entry, dict):
            raise ValueError(f"history[{i}] is not an object: {_show(entry)}")
        history.append(_string(entry, "created_by", f"history[{i}].") or "")
        empty = entry.get("empty_layer", False)
        if not isinstance(empty, bool):
            raise ValueError(f"history[{i}].empty_layer is not a boolean: {_show(empty)}")
        if not empty:
            steps.append(history[-1])
    return ImageConfig(
        os=_string(doc, "os", "") or "",
        architecture=_string(doc, "architecture", "") or "",
        variant=_string(doc, "variant", "") or None,
        env=env,
        user=_string(config, "User", "config.") or None,
        labels=_string_map(config, "Labels", "config."),
        entrypoint=_strings(config, "Entrypoint", "config."),
        cmd=_strings(config, "Cmd", "config."),
        working_dir=_string(config, "WorkingDir", "config.") or None,
        diff_ids=diff_ids,
        history=tuple(history),
        layer_steps=tuple(steps) if len(steps) == len(diff_ids) else (),
    )
