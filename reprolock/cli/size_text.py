"""The size report for a terminal: where an image's bytes go, largest first."""

from __future__ import annotations

import re

from reprolock.inventory.size import SizeReport

PACKAGES_SHOWN = 15
ROWS_SHOWN = 10
_BUILD_ARGS = re.compile(r"^\|[0-9]+ (?:[A-Za-z_][A-Za-z0-9_]*=\S* )*")


def human(size: float) -> str:
    """Decimal units, as `docker images` shows sizes."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{int(size)} B"


def step(text: str | None, width: int = 70) -> str:
    """A build step as a Dockerfile line, on one line: the legacy builder's ``/bin/sh -c
    #(nop)`` and build-arg prefixes and BuildKit's ``# buildkit`` suffix dropped."""
    if not text:
        return "(no history)"
    shown = _BUILD_ARGS.sub("", " ".join(text.split())).removesuffix(" # buildkit")
    if shown.startswith("/bin/sh -c #(nop) "):
        shown = shown.removeprefix("/bin/sh -c #(nop) ").strip()
    elif shown.startswith(("/bin/sh -c ", "RUN /bin/sh -c ")):
        shown = "RUN " + shown.removeprefix("RUN ").removeprefix("/bin/sh -c ")
    return shown if len(shown) <= width else shown[: width - 1] + "…"


def render_size(report: SizeReport) -> list[str]:
    lines = [
        f"size: {human(report.total)} in the filesystem, {human(report.stored)} in the layers"
        + (
            f" ({human(report.wasted)} shadowed or deleted by later layers)"
            if report.wasted
            else ""
        )
    ]
    if report.layers:
        lines.append("layers:")
        for layer in report.layers:
            wasted = f"  {human(layer.wasted)} wasted" if layer.wasted else ""
            lines.append(f"  {layer.index:>3} {human(layer.bytes):>9}  {step(layer.step)}{wasted}")
    lines += _packages(report)
    if report.waste:
        lines.append("wasted (written, then shadowed or deleted by a later layer):")
        for waste in report.waste[:ROWS_SHOWN]:
            by = "" if waste.by is None else f" by layer {waste.by}"
            lines.append(
                f"  {human(waste.size):>9}  {waste.path}  (layer {waste.layer}, {waste.how}{by})"
            )
    for duplicate in report.duplicates[:ROWS_SHOWN]:
        if duplicate is report.duplicates[0]:
            lines.append("duplicate libraries (the same library in several folders):")
        lines.append(
            f"  {duplicate.name}: {len(duplicate.copies)} copies, "
            f"{human(duplicate.wasted)} beyond the largest"
        )
        for copy in duplicate.copies:
            owner = f"  {copy.owner}" if copy.owner else ""
            lines.append(f"    {human(copy.size):>9}  {copy.path}  (layer {copy.layer}){owner}")
    if report.caches:
        lines.append("package caches left in the image:")
        lines += [f"  {c.name}: {human(c.bytes)} in {c.files} files" for c in report.caches]
    if report.data_files:
        lines.append("data files (no package owns them):")
        for data in report.data_files[:ROWS_SHOWN]:
            lines.append(f"  {human(data.size):>9}  {data.path}  (layer {data.layer}, {data.why})")
        if len(report.data_files) > ROWS_SHOWN:
            lines.append(f"  … {len(report.data_files) - ROWS_SHOWN} more (--format json)")
    return lines


def _packages(report: SizeReport) -> list[str]:
    if not report.packages:
        return []
    lines = ["largest packages:"]
    for package in report.packages[:PACKAGES_SHOWN]:
        env = f" ({package.env})" if package.env else ""
        layers = ",".join(str(i) for i in package.layers)
        lines.append(
            f"  {human(package.bytes):>9}  {package.kind} {package.name} {package.version}{env}"
            f"  layer {layers}"
        )
    rest = len(report.packages) - PACKAGES_SHOWN
    if rest > 0:
        lines.append(f"  … {rest} more packages (--format json lists them all)")
    lines.append(f"  {human(report.unowned):>9}  owned by no package")
    return lines
