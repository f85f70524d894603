"""CycloneDX 1.6 JSON SBOMs, through cyclonedx-python-lib: the base image, apt packages,
the interpreter, Python packages and the CUDA stack, with versions, hashes and package URLs.

Deterministic: the serial number is derived from the content, and there is no timestamp.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from cyclonedx.model import HashAlgorithm, HashType, Property
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.output.json import JsonV1Dot6
from packageurl import PackageURL

from reprolock.lock import LockedTarget
from reprolock.model import ImageRef

_NAMESPACE = uuid.UUID("6f2f7a3e-2b1c-4b8e-9a51-7e0d1c2a9b10")  # reprolock's SBOM serials


@dataclass(frozen=True, slots=True, kw_only=True)
class Item:
    """One component, before it becomes a cyclonedx Component."""

    kind: str  # "container", "deb", "interpreter", "pypi", "cuda"
    name: str
    version: str
    purl: PackageURL | None = None
    sha256: tuple[str, ...] = ()
    properties: tuple[tuple[str, str], ...] = field(default=())

    @property
    def ref(self) -> str:
        return f"{self.kind}:{self.name}@{self.version}"


def oci_purl(ref: str, digest: str | None) -> PackageURL:
    parsed = ImageRef.parse(ref)
    qualifiers = {"repository_url": f"{parsed.registry}/{parsed.repository}"}
    if parsed.tag:
        qualifiers["tag"] = parsed.tag
    return PackageURL(
        "oci", None, parsed.repository.rsplit("/", 1)[-1], digest, qualifiers=qualifiers
    )


def deb_purl(name: str, version: str, arch: str, distro: str) -> PackageURL:
    return PackageURL("deb", distro, name, version, qualifiers={"arch": arch} if arch else None)


def pypi_purl(name: str, version: str) -> PackageURL:
    return PackageURL("pypi", None, name.lower().replace("_", "-"), version)


def _distro(urls: Iterable[str]) -> str:
    return "ubuntu" if any("ubuntu" in u for u in urls) else "debian"


def lock_items(target: LockedTarget) -> list[Item]:
    items: list[Item] = []
    base = target.base
    if base is not None:
        items.append(
            Item(
                kind="container",
                name=base.ref,
                version=base.manifest_digest,
                purl=oci_purl(base.ref, base.manifest_digest),
                properties=(("reprolock:role", "base-image"),),
            )
        )
    distro = _distro(p.url for p in target.apt)
    for deb in target.apt:
        items.append(
            Item(
                kind="deb",
                name=deb.name,
                version=deb.version,
                purl=deb_purl(deb.name, deb.version, deb.architecture, distro),
                sha256=(deb.sha256,),
                properties=(("reprolock:url", deb.url),),
            )
        )
    interpreter = target.interpreter
    if interpreter is not None:
        props = [
            ("reprolock:interpreter-source", str(interpreter.source)),
            ("reprolock:path", interpreter.path),
        ]
        props.extend(("reprolock:deb", name) for name in interpreter.packages)
        if interpreter.url:
            props.append(("reprolock:url", interpreter.url))
        items.append(
            Item(
                kind="interpreter",
                name="cpython",
                version=interpreter.version,
                purl=PackageURL(
                    "generic",
                    None,
                    "cpython",
                    interpreter.version,
                    qualifiers={"download_url": interpreter.url} if interpreter.url else None,
                ),
                sha256=(interpreter.sha256,) if interpreter.sha256 else (),
                properties=tuple(props),
            )
        )
    for package in target.packages:
        items.append(
            Item(
                kind="pypi",
                name=package.name,
                version=package.version,
                purl=pypi_purl(package.name, package.version),
                sha256=tuple(sorted({w.sha256 for w in package.wheels if w.sha256}))
                or ((package.sdist.sha256,) if package.sdist is not None else ()),
                properties=tuple(("reprolock:wheel", w.filename) for w in package.wheels)
                + (
                    (("reprolock:sdist", package.sdist.filename),)
                    if package.sdist is not None
                    else ()
                ),
            )
        )
    cuda = target.cuda
    if cuda is not None:
        props = [
            ("reprolock:driver-min", cuda.driver_min),
            ("reprolock:compat", cuda.compat),
        ]
        if cuda.driver_min_compat:
            props.append(("reprolock:driver-min-compat", cuda.driver_min_compat))
        props.extend(("reprolock:arch", a) for a in cuda.arches)
        items.append(Item(kind="cuda", name="cuda", version=cuda.toolkit, properties=tuple(props)))
        for name, version in (("cudnn", cuda.cudnn), ("nccl", cuda.nccl)):
            if version:
                items.append(Item(kind="cuda", name=name, version=version))
    return items


_TYPES = {
    "container": ComponentType.CONTAINER,
    "deb": ComponentType.LIBRARY,
    "interpreter": ComponentType.APPLICATION,
    "pypi": ComponentType.LIBRARY,
    "cuda": ComponentType.FRAMEWORK,
}


def render(subject: str, subject_version: str, items: Iterable[Item]) -> str:
    """The CycloneDX 1.6 JSON document for ``items`` (sorted), describing ``subject``."""
    ordered = sorted(items, key=lambda i: (i.kind, i.name, i.version))
    serial = uuid.uuid5(
        _NAMESPACE, subject + "\n" + "\n".join(f"{i.ref} {','.join(i.sha256)}" for i in ordered)
    )
    bom = Bom(serial_number=serial)
    bom.metadata.timestamp = None  # type: ignore[assignment]
    root = Component(
        name=subject,
        version=subject_version,
        type=ComponentType.CONTAINER,
        bom_ref=f"subject:{subject}",
    )
    bom.metadata.component = root
    seen: set[str] = set()
    parts: list[Component] = []
    for item in ordered:
        if item.ref in seen:
            continue
        seen.add(item.ref)
        component = Component(
            name=item.name,
            version=item.version,
            type=_TYPES.get(item.kind, ComponentType.LIBRARY),
            purl=item.purl,
            bom_ref=item.ref,
            hashes=[HashType(alg=HashAlgorithm.SHA_256, content=h) for h in item.sha256],
            properties=[Property(name=k, value=v) for k, v in item.properties],
        )
        bom.components.add(component)
        parts.append(component)
    bom.register_dependency(root, parts)
    return JsonV1Dot6(bom).output_as_string(indent=2) + "\n"


def lock_sbom(target: LockedTarget, lock_digest: str) -> str:
    return render(f"reprolock target {target.id}", lock_digest, lock_items(target))
