"""A CycloneDX SBOM of an image, from what `inspect` read (pure)."""

from __future__ import annotations

from reprolock.emit.cyclonedx import Item, deb_purl, oci_purl, pypi_purl, render
from reprolock.inventory.model import Inventory


def image_sbom(inventory: Inventory, description: str, manifest_digest: str | None) -> str:
    """dpkg packages, the Python distributions of every environment, and the CUDA components,
    each with the layer and path it came from."""
    distro = (
        inventory.os.id if inventory.os and inventory.os.id in ("debian", "ubuntu") else "debian"
    )
    items: list[Item] = []
    for deb in inventory.deb_packages:
        items.append(
            Item(
                kind="deb",
                name=deb.name,
                version=deb.version,
                purl=deb_purl(deb.name, deb.version, deb.architecture, distro),
                properties=(("reprolock:layer", str(deb.layer)), ("reprolock:path", deb.path)),
            )
        )
    for env in inventory.python_envs:
        for dist in env.dists:
            props = [
                ("reprolock:environment", env.path),
                ("reprolock:layer", str(dist.layer)),
                ("reprolock:path", dist.metadata_path),
            ]
            if dist.record_issues:
                props.append(("reprolock:record-issues", str(len(dist.record_issues))))
            items.append(
                Item(
                    kind="pypi",
                    name=dist.name,
                    version=dist.version,
                    purl=pypi_purl(dist.name, dist.version),
                    properties=tuple(props),
                )
            )
    for component in inventory.cuda:
        items.append(
            Item(
                kind="cuda",
                name=component.name,
                version=component.version,
                properties=(
                    ("reprolock:source", component.source),
                    ("reprolock:path", component.path),
                ),
            )
        )
    subject = description.split(":", 1)[-1] if description.startswith("registry:") else description
    version = manifest_digest or "unknown"
    if manifest_digest and description.startswith("registry:"):
        items.append(
            Item(
                kind="container",
                name=subject,
                version=manifest_digest,
                purl=oci_purl(subject, manifest_digest),
            )
        )
    return render(description, version, items)
