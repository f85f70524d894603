"""``reprolock matrix``: answer questions from the compatibility tables."""

from __future__ import annotations

import click

from reprolock import api
from reprolock.cli import output
from reprolock.compat import Matrices
from reprolock.compat.frameworks import AMD64, ARM64, Build, series_of
from reprolock.errors import InputError
from reprolock.model import CudaVersion, DriverVersion


@click.group("matrix")
def matrix_command() -> None:
    """Answer questions from reprolock's compatibility tables (matrices/)."""


@matrix_command.command("gpus")
def gpus_command() -> None:
    """List the GPUs reprolock knows, with their compute capability and the least driver that
    can run their architecture."""
    settings = output.current()
    matrices = api.shipped_matrices()
    table = matrices.gpus
    rows = sorted(table.models, key=lambda m: (m.capability, m.name))
    floors = {m.name: table.driver_floor(m.capability, matrices.cuda) for m in rows}
    if settings.format == "json":
        settings.emit_json(
            [
                {
                    "name": m.name,
                    "aliases": list(m.aliases),
                    "compute-capability": str(m.capability),
                    "sm": m.capability.sm,
                    "architecture": m.architecture,
                    "driver-floor": None if (f := floors[m.name]) is None else str(f.driver),
                    "sources": list(m.sources),
                }
                for m in rows
            ]
        )
        return
    width = max(len(m.name) for m in rows)
    settings.say(f"{'GPU':<{width}}  CC    arch")
    for m in rows:
        floor = floors[m.name]
        driver = f"  driver >= {floor.driver}" if floor is not None else ""
        settings.say(
            f"{m.name:<{width}}  {m.capability!s:<5} {m.capability.sm}  ({m.architecture})" + driver
        )


@matrix_command.command("driver")
@click.argument("version")
def driver_command(version: str) -> None:
    """Which CUDA toolkits a Linux driver VERSION (as nvidia-smi prints it) runs: with every
    feature (strict), and under CUDA minor-version compatibility."""
    settings = output.current()
    try:
        driver = DriverVersion.parse(version)
    except ValueError as exc:
        raise InputError(
            f"{exc}.", hint='Give the driver as nvidia-smi prints it, e.g. "535.104.05".'
        ) from None
    matrices = api.shipped_matrices()
    table = matrices.cuda
    rows = table.runnable(driver)
    builds = framework_builds(matrices, driver)
    unsupported = matrices.gpus.unsupported_by(driver, table)
    if settings.format == "json":
        settings.emit_json(
            {
                "driver": str(driver),
                "caveats": table.caveats,
                "frameworks": [
                    {"build": label, "cuda": str(cuda), "strict": strict, "minor-compat": minor}
                    for label, cuda, strict, minor in builds
                ],
                "toolkits": [
                    {
                        "cuda": str(t.version),
                        "label": t.label,
                        "toolkit-driver": None if t.driver is None else str(t.driver),
                        "strict": strict,
                        "minor-compat": minor,
                    }
                    for t, strict, minor in rows
                ],
                "unsupported-architectures": [
                    {"architecture": a.name, "sm": [c.sm for c in a.sm], "reason": why}
                    for a, why in unsupported
                ],
            }
        )
        return
    strict_ok = [t for t, strict, _ in rows if strict]
    minor_ok = [t for t, strict, minor in rows if minor and not strict]
    newest = strict_ok[-1].version if strict_ok else None
    settings.say(f"driver {driver}:")
    settings.say(
        f"  strict (every feature): up to CUDA {newest}"
        if newest
        else "  strict (every feature): no CUDA release in the table"
    )
    if minor_ok:
        settings.say(
            f"  minor-version compat:   also CUDA {minor_ok[0].version} … {minor_ok[-1].version}"
        )
        settings.say(f"  caveats: {table.caveats}")
    for toolkit, strict, minor in rows:
        mark = "strict" if strict else "minor" if minor else "no"
        needs = "unknown" if toolkit.driver is None else str(toolkit.driver)
        settings.say(f"    {toolkit.version!s:<8} needs {needs:<10} {mark}", level=1)
    _say_builds(settings, builds)
    if unsupported:
        settings.say("  GPU architectures it cannot run:")
        for arch, why in unsupported:
            sms = ", ".join(c.sm for c in arch.sm)
            settings.say(f"    {arch.name} ({sms}): {why}")


def framework_builds(
    matrices: Matrices, driver: DriverVersion
) -> list[tuple[str, CudaVersion, bool, bool]]:
    """Every CUDA build of torch (linux/amd64), TensorFlow [and-cuda] and the JAX plugins,
    with whether ``driver`` runs it strict and under minor-version compatibility."""
    out = []
    builds: list[Build] = []
    for release in matrices.torch.releases:
        builds.extend(b for b in matrices.torch.builds(release, AMD64) if b.cuda is not None)
    for tf in matrices.tensorflow.releases:
        if tf.and_cuda_runtime is not None and not tf.version.is_prerelease:
            builds.append(matrices.tensorflow.build(tf, and_cuda=True))
    for jx in matrices.jax.releases:
        for major in sorted(jx.plugins):
            if (build := matrices.jax.build(jx, major, local=False)) is not None:
                builds.append(build)
    for build in builds:
        if build.cuda is None:
            continue
        try:
            need = matrices.cuda.need(build.cuda, "strict")
            minor = driver >= matrices.cuda.need(build.cuda, "minor").driver
        except ValueError:
            continue
        # A lower bound is not a confirmed figure: never strict (as CudaTable.runnable).
        strict = need.exact and driver >= need.driver
        out.append((build.label, build.cuda, strict, minor))
    return out


def _say_builds(
    settings: output.Settings, builds: list[tuple[str, CudaVersion, bool, bool]]
) -> None:
    by_kind: dict[str, dict[str, list[str]]] = {}
    for label, _cuda, strict, minor in builds:
        framework = label.split(" ", 1)[0]
        mark = "strict" if strict else "minor" if minor else ""
        if mark:
            by_kind.setdefault(framework, {}).setdefault(mark, []).append(label)
    if not by_kind:
        settings.say("  framework builds: none it can run")
        return
    settings.say("  framework builds it runs:")
    for framework, marks in by_kind.items():
        for mark, labels in marks.items():
            newest = labels[-1]
            settings.say(f"    {framework} ({mark}): {len(labels)} builds, newest {newest}")
            for label in labels:
                settings.say(f"      {label}", level=1)


@matrix_command.command("cuda")
@click.argument("version")
def cuda_command(version: str) -> None:
    """The least Linux driver a CUDA VERSION needs, strict and under minor-version compat.

    VERSION is a CUDA release ("12.8.1"), a CUDA minor ("12.8") or the CUDA Runtime version a
    wheel pins ("12.8.90", as in nvidia-cuda-runtime-cu12==12.8.90)."""
    settings = output.current()
    table = api.shipped_matrices().cuda
    try:
        cuda = CudaVersion.parse(version)
    except ValueError as exc:
        raise InputError(f"{exc}.", hint='Write the version like "12.4" or "12.4.1".') from None
    runtime = None
    if not table.releases(cuda):
        runtime = table.release_for_runtime(version)
        cuda = runtime.version if runtime is not None else cuda
    try:
        strict, minor = table.need(cuda, "strict"), table.need(cuda, "minor")
    except ValueError as exc:
        raise InputError(
            f"{exc}.",
            hint='Write a release ("12.4.1"), a minor ("12.4") or a CUDA runtime version '
            '("12.4.127").',
        ) from None
    release = table.release(cuda)
    if settings.format == "json":
        settings.emit_json(
            {
                "cuda": str(cuda),
                "label": None if release is None else release.label,
                "cudart": None if release is None else release.cudart_text,
                "strict": str(strict.driver),
                "strict-exact": strict.exact,
                "strict-reason": strict.reason,
                "minor-compat": str(minor.driver),
                "caveats": table.caveats,
                "sources": [] if release is None else list(release.sources),
            }
        )
        return
    if runtime is not None:
        settings.say(f"cudart {version} is the CUDA Runtime of {runtime.label} ({cuda})")
    bound = "" if strict.exact else ", a lower bound"
    settings.say(f"CUDA {cuda}: driver >= {strict.driver} (strict{bound}: {strict.reason})")
    if minor.policy == "minor":
        settings.say(
            f"  or >= {minor.driver} under minor-version compatibility "
            f"({minor.reason}); {table.caveats}"
        )
    if release is not None:
        runtime_text = f"cudart {release.cudart_text}; " if release.cudart is not None else ""
        settings.say(f"  {runtime_text}sources {', '.join(release.sources)}", level=1)
        if release.note:
            settings.say(f"  note: {release.note}", level=1)


@matrix_command.command("torch")
@click.argument("version")
def torch_command(version: str) -> None:
    """A PyTorch release series (2.5: each of its releases) or one release (2.5.1): its
    builds — the PyPI wheel and the download.pytorch.org variants — with CUDA, cuDNN, the
    GPU arches each has kernels for, Python versions, companions, and the driver each
    needs."""
    settings = output.current()
    matrices = api.shipped_matrices()
    table = matrices.torch
    releases = [
        r for r in table.releases if str(r.version) == version or series_of(r.version) == version
    ]
    if not releases:
        known = ", ".join(sorted({series_of(r.version) for r in table.releases}, key=_vkey))
        raise InputError(
            f'torch "{version}" is not in the matrices reprolock ships.',
            hint=f"Known series: {known}.",
        )
    rows = []
    for release in releases:
        for platform in (AMD64, ARM64):
            for build in table.builds(release, platform):
                need = None
                if build.cuda is not None:
                    try:
                        need = (
                            matrices.cuda.need(build.cuda, "strict").driver,
                            matrices.cuda.need(build.cuda, "minor").driver,
                        )
                    except ValueError:
                        need = None
                rows.append((release, platform, build, need))
    if settings.format == "json":
        settings.emit_json(
            [
                {
                    "torch": str(release.version),
                    "platform": platform,
                    "variant": build.variant,
                    "index": None if build.index is None else f"{table.index_url}/{build.index}",
                    "cuda": None if build.cuda is None else str(build.cuda),
                    "cudnn": build.cudnn,
                    "sass": [c.sm for c in build.arches.sass] if build.arches else None,
                    "ptx": [f"compute_{c.major}{c.minor}" for c in build.arches.ptx]
                    if build.arches
                    else None,
                    "arches-unconfirmed": build.arches.unconfirmed if build.arches else None,
                    "python": list(release.python),
                    "driver-strict": None if need is None else str(need[0]),
                    "driver-minor-compat": None if need is None else str(need[1]),
                    "torchvision": [str(v) for v in release.torchvision],
                    "torchaudio": [str(v) for v in release.torchaudio],
                }
                for release, platform, build, need in rows
            ]
        )
        return
    for release in releases:
        default = f"CUDA {release.cuda}" if release.cuda else "CPU"
        settings.say(
            f"torch {release.version}: Python {', '.join(release.python)}; "
            f"PyPI default {default}"
            + (f", cuDNN {release.cudnn}" if release.cudnn else "")
            + (f", NCCL {release.nccl}" if release.nccl else "")
        )
        companions = [
            f"{name} {', '.join(map(str, versions))}"
            for name, versions in (
                ("torchvision", release.torchvision),
                ("torchaudio", release.torchaudio),
            )
            if versions
        ] + [
            f"{c.name} {c.version} (for torch {c.torch})"
            for c in table.companions
            if release.version in c.torch
        ]
        if companions:
            settings.say(f"  companions: {'; '.join(companions)}")
        for r, platform, build, need in rows:
            if r is not release:
                continue
            where = "PyPI" if build.index is None else f"{table.index_url}/{build.index}"
            what = "CPU" if build.cuda is None else f"CUDA {build.cuda}"
            if build.cudnn:
                what += f", cuDNN {build.cudnn}"
            arches = build.arches.describe() if build.arches else "arches not in the matrices"
            if build.arches and build.arches.unconfirmed:
                arches += " (unconfirmed)"
            driver = f"; driver >= {need[0]} (>= {need[1]} minor-compat)" if need else ""
            kernels = f"; {arches}" if build.cuda is not None else ""
            settings.say(f"  {platform:<11} {build.variant:<6} {what}{kernels}{driver}  [{where}]")


def _vkey(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split("."))


def _register_measure() -> None:
    from reprolock.cli.matrix_measure import measure_command  # noqa: PLC0415
    from reprolock.cli.matrix_update import update_command  # noqa: PLC0415

    matrix_command.add_command(measure_command)
    matrix_command.add_command(update_command)


_register_measure()
