#!/usr/bin/env python3
"""How resolving cost grows with the number of packages: reprolock vs uv on synthetic graphs.

For each size (100 … 1,600 packages) a dependency graph is generated (seeded, so every run
builds the same ones) in two families:

* ``plain``: every requirement is a lower bound the newest release meets, so the newest
  of everything fits and nothing backtracks;
* ``backtrack``: as plain, plus for up to one package in 25 a conflict — its two newest
  releases cap a dependency below the release that another requirement asks for — so the
  resolver must walk back; no package takes part in two conflicts;
* ``tangled`` (not run unless asked for): the same conflicts, but a package may take part
  in several, so walking back out of one can lead into another.

Releases per package follow a long tail (most have a handful, some dozens), dependencies
per release average three, drawn toward nearby and popular packages; about one package in
twenty is asked for directly.  Real wheels (py3-none-any, with METADATA) are generated and
served from a loopback PEP 691 index (in a separate process) that advertises PEP 658
metadata, so both tools read pages and metadata the same way, never whole wheels.

Each tool resolves each graph with an empty cache, runs interleaved; wall time, CPU time
(user + system) and peak RSS come from wait4, request counts from the index.

    python benchmarks/scaling.py                       # 100-1600, both families, 2 rounds
    python benchmarks/scaling.py --sizes 100,200 --rounds 1
    python benchmarks/scaling.py --png docs/benchmarks-scaling.png --markdown out.md

Needs `uv` on PATH; the plot needs matplotlib (`pip install reprolock[bench]`), without it
only the table is written.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import compileall
import hashlib
import io
import itertools
import json
import math
import multiprocessing
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from resolve import drop_caches, fresh_cache  # the sibling script: cold caches never reused

ROOT = Path(__file__).resolve().parent.parent
SIZES = (100, 200, 400, 800, 1600)
FAMILIES = ("plain", "backtrack")
ALL_FAMILIES = (*FAMILIES, "tangled")
JSON_TYPE = "application/vnd.pypi.simple.v1+json"


# -- graphs ------------------------------------------------------------------------------
@dataclass
class Release:
    version: str
    requires: list[str] = field(default_factory=list)


@dataclass
class Graph:
    packages: dict[str, list[Release]]  # name -> releases, oldest first
    roots: list[str]


def _version(k: int) -> str:
    return f"{k // 4 + 1}.{k % 4}.0"


def _at_most_third(requirement: str, position: dict[str, int], counts: list[int]) -> str:
    """``name>=X.Y.0`` lowered to accept the third newest release of ``name``."""
    name, _, rest = requirement.partition(">=")
    major, minor, _patch = rest.split(".")
    floor = min((int(major) - 1) * 4 + int(minor), counts[position[name]] - 3)
    return f"{name}>={_version(max(0, floor))}"


def make_graph(size: int, family: str, seed: int) -> Graph:
    """A dependency graph of ``size`` packages (see the module docstring)."""
    rng = random.Random(f"{seed}-{size}-{family}")
    names = [f"p{size}-{i:04d}" for i in range(size)]
    counts = [min(60, max(1, int(rng.paretovariate(1.3) * 2.5))) for _ in names]
    popular = sorted(rng.sample(range(size), max(3, size // 25)))
    deps: list[set[int]] = [set() for _ in names]
    for i in range(size):
        fan_out = rng.choices(range(8), weights=(14, 16, 20, 18, 12, 8, 6, 6))[0]
        for _ in range(fan_out):
            later = [p for p in popular if p > i]
            if later and rng.random() < 0.3:
                j = rng.choice(later)
            else:
                j = i + 1 + int(rng.expovariate(1 / max(1.0, size / 12)))
            if j < size:
                deps[i].add(j)
    roots = list(range(max(5, size // 20)))
    reached = set(roots)
    for i in range(size):  # every package is needed by an earlier one (or is a root)
        if i in reached:
            reached |= deps[i]
        else:
            parent = rng.randrange(0, i)
            deps[parent].add(i)
            reached |= {i} | deps[i]
    packages: dict[str, list[Release]] = {}
    for i, name in enumerate(names):
        releases = []
        for k in range(counts[i]):
            requires = []
            for j in sorted(deps[i]):
                # a lower bound the newest release of j meets; newer releases of i ask more
                floor = int((counts[j] - 1) * (k + 1) / counts[i] * 0.8)
                requires.append(f"{names[j]}>={_version(floor)}")
            releases.append(Release(_version(k), requires))
        packages[name] = releases
    if family in ("backtrack", "tangled"):
        # Conflicts: the two newest releases of a cap a dependency b below its newest release,
        # while an earlier package (the asker) asks for b's newest, so a must walk back to a
        # third release.  a is never someone's b (it would be asked for at its newest), and
        # what asks for a accepts that third release, so every graph has a solution.  In
        # "backtrack" the conflicts are independent: no package takes part in two of them
        # (as a, b or asker); in "tangled" an asker may be another conflict's a or b.
        capped: set[int] = set()
        needed: set[int] = set()
        involved: set[int] = set()
        candidates = [i for i in range(1, size) if counts[i] >= 3 and deps[i]]
        for a in rng.sample(candidates, max(1, len(candidates) // 25)):
            b = max(deps[a])
            if counts[b] < 2 or a in needed or b in capped or a in capped:
                continue
            asker = rng.randrange(0, a)
            if family == "backtrack" and {a, b, asker} & involved:
                continue
            capped.add(a)
            needed.add(b)
            involved |= {a, b, asker}
            newest_b = _version(counts[b] - 1)
            for release in packages[names[a]][-2:]:
                release.requires = [
                    f"{r},<{newest_b}" if r.startswith(f"{names[b]}>=") else r
                    for r in release.requires
                ]
            for release in packages[names[asker]]:
                release.requires = [
                    r for r in release.requires if not r.startswith(f"{names[b]}>=")
                ] + [f"{names[b]}>={newest_b}"]
        position = {name: i for i, name in enumerate(names)}
        for name in names:  # what asks for a capped package accepts its third newest release
            for release in packages[name]:
                release.requires = [
                    _at_most_third(r, position, counts)
                    if position[r.partition(">=")[0]] in capped and "," not in r
                    else r
                    for r in release.requires
                ]
    return Graph(packages, [names[i] for i in roots])


# -- wheels and the index ------------------------------------------------------------------
def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def make_wheel(name: str, release: Release) -> tuple[str, bytes, bytes]:
    """A real py3-none-any wheel: (filename, its bytes, its METADATA)."""
    dist = name.replace("-", "_")
    info = f"{dist}-{release.version}.dist-info"
    metadata = "".join(
        [
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {release.version}\n",
            *(f"Requires-Dist: {r}\n" for r in release.requires),
            "\n",
        ]
    ).encode()
    files = {
        f"{dist}/__init__.py": f'__version__ = "{release.version}"\n'.encode(),
        f"{info}/METADATA": metadata,
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: scaling\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    record = "".join(f"{p},{_record_hash(d)},{len(d)}\n" for p, d in files.items())
    files[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for member, data in files.items():
            archive.writestr(zipfile.ZipInfo(member, (2024, 1, 1, 0, 0, 0)), data)
    return f"{dist}-{release.version}-py3-none-any.whl", buffer.getvalue(), metadata


def index_content(graph: Graph) -> dict[str, tuple[bytes, str]]:
    """Every path the index serves: pages, wheels and their metadata files."""
    content: dict[str, tuple[bytes, str]] = {}
    for name, releases in graph.packages.items():
        entries = []
        for release in releases:
            filename, wheel, metadata = make_wheel(name, release)
            content[f"/files/{filename}"] = (wheel, "application/octet-stream")
            content[f"/files/{filename}.metadata"] = (metadata, "application/octet-stream")
            entries.append(
                {
                    "filename": filename,
                    "url": f"../../files/{filename}",
                    "hashes": {"sha256": hashlib.sha256(wheel).hexdigest()},
                    "core-metadata": {"sha256": hashlib.sha256(metadata).hexdigest()},
                    "size": len(wheel),
                    "upload-time": "2024-01-01T00:00:00Z",
                    "yanked": False,
                }
            )
        page = {"meta": {"api-version": "1.1"}, "name": name, "files": entries}
        content[f"/simple/{name}/"] = (json.dumps(page).encode(), JSON_TYPE)
    return content


async def _serve(content: dict[str, tuple[bytes, str]], port: Any, ready: Any) -> None:
    counts = {"pages": 0, "metadata": 0, "wheels": 0, "missing": 0}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                path = head.split(b" ", 2)[1].decode().split("?")[0]
                if path == "/stats":
                    body, kind = json.dumps(counts).encode(), "application/json"
                    for key in counts:
                        counts[key] = 0
                    status = b"200 OK"
                elif path in content:
                    body, kind = content[path]
                    key = "pages" if path.startswith("/simple/") else "wheels"
                    counts["metadata" if path.endswith(".metadata") else key] += 1
                    status = b"200 OK"
                else:
                    counts["missing"] += 1
                    body, kind, status = b"not found", "text/plain", b"404 Not Found"
                writer.write(
                    b"HTTP/1.1 "
                    + status
                    + b"\r\nContent-Type: "
                    + kind.encode()
                    + b"\r\nContent-Length: "
                    + str(len(body)).encode()
                    + b"\r\n\r\n"
                    + body
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=512)
    port.value = server.sockets[0].getsockname()[1]
    ready.set()
    async with server:
        await server.serve_forever()


def _index_process(graph: Graph, port: Any, ready: Any) -> None:
    asyncio.run(_serve(index_content(graph), port, ready))


class Index:
    """The loopback index of one graph, in its own process."""

    def __init__(self, graph: Graph) -> None:
        context = multiprocessing.get_context("fork")
        self.port = context.Value("i", 0)
        ready = context.Event()
        self.process = context.Process(
            target=_index_process, args=(graph, self.port, ready), daemon=True
        )
        self.process.start()
        if not ready.wait(600):
            raise RuntimeError("the index did not start")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port.value}/simple"

    def counts(self) -> dict[str, int]:
        """Requests served since the last call (and reset them)."""
        with urllib_request(f"http://127.0.0.1:{self.port.value}/stats") as reply:
            counts: dict[str, int] = json.loads(reply.read())
            return counts

    def stop(self) -> None:
        self.process.terminate()
        self.process.join()


def urllib_request(url: str) -> Any:
    import urllib.request  # noqa: PLC0415 - only the stats calls need it

    return urllib.request.urlopen(url, timeout=30)


# -- running the tools -----------------------------------------------------------------------
@dataclass
class Sample:
    seconds: float
    cpu: float
    peak_mib: float
    ok: bool
    requests: dict[str, int] = field(default_factory=dict)
    note: str = ""


def run(cmd: list[str], *, cwd: Path, env: dict[str, str], timeout: float = 1800) -> Sample:
    """Run ``cmd``: wall time, CPU time and peak RSS of the child (from wait4)."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=err)
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - start > timeout:
                proc.kill()
                os.wait4(proc.pid, 0)
                return Sample(timeout, 0, 0, False, note=f"stopped after {timeout:.0f} s")
            time.sleep(0.005)
        seconds = time.perf_counter() - start
        code = os.waitstatus_to_exitcode(status)
        proc.returncode = code
        err.seek(0)
        text = err.read().decode(errors="replace").strip()
    note = "" if code == 0 else f"exit {code}: {text.splitlines()[-1:] if text else ''}"
    return Sample(
        seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, code == 0, note=note
    )


def run_reprolock(
    folder: Path, index: Index, roots: list[str], timeout: float
) -> tuple[Sample, dict[str, str]]:
    reqs = ", ".join(json.dumps(r) for r in roots)
    (folder / "reprolock.toml").write_text(
        '[environment]\npython = "3.11"\nplatforms = ["linux/amd64"]\n\n'
        f"[python]\nrequirements = [{reqs}]\n\n"
        f'[[python.index]]\nname = "bench"\nurl = "{index.url}"\ndefault = true\n'
    )
    cache = fresh_cache(folder, "reprolock")
    (folder / "reprolock.lock").unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "reprolock", "-q", "--cache-dir", str(cache), "lock"]
    sample = run(cmd, cwd=folder, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=timeout)
    pins: dict[str, str] = {}
    if sample.ok:
        lock = tomllib.loads((folder / "reprolock.lock").read_text())
        pins = {p["name"]: p["version"] for p in lock["targets"][0].get("packages", [])}
    return sample, pins


def run_uv(
    folder: Path, index: Index, roots: list[str], timeout: float
) -> tuple[Sample, dict[str, str]]:
    (folder / "requirements.in").write_text("\n".join(roots) + "\n")
    cache = fresh_cache(folder, "uv")
    cmd = [
        *("uv", "pip", "compile", "-q", "--cache-dir", str(cache), "--index-url", index.url),
        *("--python-platform", "x86_64-manylinux_2_28", "--python-version", "3.11"),
        *("--generate-hashes", "-o", "uv.txt", "requirements.in"),
    ]
    sample = run(cmd, cwd=folder, env={**os.environ, "UV_NO_PROGRESS": "1"}, timeout=timeout)
    pins: dict[str, str] = {}
    if sample.ok:
        for line in (folder / "uv.txt").read_text().splitlines():
            name, sep, version = line.partition("==")
            if sep and not line.startswith((" ", "#")):
                pins[name.strip()] = version.split()[0].rstrip("\\").strip()
    return sample, pins


# -- the run -----------------------------------------------------------------------------------
@dataclass
class Cell:
    samples: list[Sample] = field(default_factory=list)
    pins: dict[str, str] = field(default_factory=dict)

    def median(self, what: str) -> float | None:
        values = [getattr(s, what) for s in self.samples if s.ok]
        return statistics.median(values) if values else None


def growth(points: list[tuple[int, float]]) -> float | None:
    """The slope of log(cost) against log(size): 1 is linear, 2 quadratic."""
    if len(points) < 2:
        return None
    xs = [math.log(n) for n, _ in points]
    ys = [math.log(v) for _, v in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else None


def table(cells: dict[tuple[str, str, int], Cell], sizes: list[int], tools: list[str]) -> str:
    head = ["family", "packages", "releases"]
    for tool in tools:
        head += [f"{tool} wall", f"{tool} CPU", f"{tool} CPU / pkg", f"{tool} RSS"]
        head += [f"{tool} metadata read"]
    head += ["pins"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for family in ALL_FAMILIES:
        for size in sizes:
            if (tools[0], family, size) not in cells:
                continue
            first = cells[(tools[0], family, size)]
            releases = first.samples[0].requests.get("releases", 0) if first.samples else 0
            row = [family, str(size), str(releases)]
            for tool in tools:
                cell = cells[(tool, family, size)]
                wall, cpu, rss = cell.median("seconds"), cell.median("cpu"), cell.median("peak_mib")
                reads = [s.requests.get("metadata", 0) for s in cell.samples if s.ok]
                failure = next((x.note for x in cell.samples if not x.ok), "failed")
                row += [
                    f"{wall:.2f} s" if wall is not None else failure,
                    f"{cpu:.2f} s" if cpu is not None else "—",
                    f"{cpu / size * 1000:.1f} ms" if cpu is not None else "—",
                    f"{rss:.0f} MiB" if rss is not None else "—",
                    str(max(reads)) if reads else "—",
                ]
            pins = [cells[(t, family, size)].pins for t in tools]
            same = all(p == pins[0] for p in pins) and bool(pins[0])
            differ = sorted(n for n in set().union(*pins) if len({p.get(n) for p in pins}) > 1)
            row.append("identical" if same else f"{len(differ)} differ" if pins[0] else "—")
            lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    for tool in tools:
        for family in ALL_FAMILIES:
            for what, label in (("cpu", "CPU"), ("seconds", "wall")):
                points = [
                    (size, value)
                    for size in sizes
                    if (tool, family, size) in cells
                    and (value := cells[(tool, family, size)].median(what)) is not None
                ]
                slope = growth(points)
                steps = ", ".join(
                    f"{b[0]}: ×{b[1] / a[1]:.2f}" for a, b in itertools.pairwise(points)
                )
                if slope is not None:
                    lines.append(
                        f"- {tool}, {family}, {label}: log-log slope {slope:.2f} "
                        f"(each doubling: {steps})"
                    )
    return "\n".join(lines)


def plot(
    cells: dict[tuple[str, str, int], Cell], sizes: list[int], tools: list[str], png: Path
) -> str:
    try:
        import matplotlib  # type: ignore[import-not-found]  # noqa: PLC0415 - optional

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # type: ignore[import-not-found]  # noqa: PLC0415
    except ImportError:
        return "matplotlib is not installed: no plot (pip install 'reprolock[bench]')"
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    styles = {"plain": "-", "backtrack": "--", "tangled": ":"}
    for tool in tools:
        for family in ALL_FAMILIES:
            points = [
                (size, cells[(tool, family, size)])
                for size in sizes
                if (tool, family, size) in cells
            ]
            xs = [size for size, c in points if c.median("cpu") is not None]
            if not xs:
                continue
            label = f"{tool}, {family}"
            left.plot(
                xs,
                [c.median("seconds") for _, c in points if c.median("cpu") is not None],
                styles[family],
                marker="o",
                label=f"{label} (wall)",
            )
            left.plot(
                xs,
                [c.median("cpu") for _, c in points if c.median("cpu") is not None],
                styles[family],
                marker="x",
                alpha=0.5,
                label=f"{label} (CPU)",
            )
            right.plot(
                xs,
                [c.median("peak_mib") for _, c in points if c.median("cpu") is not None],
                styles[family],
                marker="o",
                label=label,
            )
    stopped = [
        f"{tool}, {family}, {size}: {next((x.note for x in cell.samples if not x.ok), '')}"
        for (tool, family, size), cell in sorted(cells.items())
        if cell.median("cpu") is None
    ]
    if stopped:  # runs with no result have no point: say so under the plot
        figure.text(0.01, 0.01, "no result: " + "; ".join(stopped), fontsize=7)
    base = cells.get((tools[0], "plain", sizes[0]))
    if base is not None and base.median("cpu"):
        start = base.median("cpu") or 1.0
        left.plot(sizes, [start * s / sizes[0] for s in sizes], ":", color="grey", label="linear")
    for axis, title, unit in ((left, "time", "seconds"), (right, "peak RSS", "MiB")):
        axis.set_xscale("log", base=2)
        axis.set_yscale("log")
        axis.set_xticks(sizes, [str(s) for s in sizes])
        axis.set_xlabel("packages in the graph")
        axis.set_ylabel(unit)
        axis.set_title(f"Resolving synthetic graphs: {title}")
        axis.grid(True, which="both", alpha=0.3)
    left.legend(fontsize=7)
    right.legend(fontsize=7)
    figure.tight_layout(rect=(0, 0.04 if stopped else 0, 1, 1))
    png.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(png, dpi=110, metadata={"Software": None})
    return f"plot: {png}"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--tools", default="reprolock,uv")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--timeout", type=float, default=600, help="seconds a run may take")
    parser.add_argument("--work", type=Path, default=None, help="keep work files here")
    parser.add_argument("--png", type=Path, default=None, help="write the plot here")
    parser.add_argument("--markdown", type=Path, default=None, help="also write the table here")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    tools = args.tools.split(",")
    work = args.work or Path(tempfile.mkdtemp(prefix="reprolock-scaling-"))
    runners: dict[str, Any] = {"reprolock": run_reprolock, "uv": run_uv}
    # bytecode, as an install has it (with PYTHONDONTWRITEBYTECODE set every start compiles)
    compileall.compile_dir(ROOT / "reprolock", quiet=1)
    cells: dict[tuple[str, str, int], Cell] = {}
    for family in args.families.split(","):
        for size in sizes:
            graph = make_graph(size, family, args.seed)
            releases = sum(len(r) for r in graph.packages.values())
            started = time.perf_counter()
            index = Index(graph)
            print(
                f"{family} {size}: {releases} wheels served after "
                f"{time.perf_counter() - started:.1f} s",
                file=sys.stderr,
            )
            try:
                for round_ in range(args.rounds):
                    order = tools[round_ % len(tools) :] + tools[: round_ % len(tools)]
                    for tool in order:
                        folder = work / f"{family}-{size}-{tool}"
                        folder.mkdir(parents=True, exist_ok=True)
                        index.counts()
                        sample, pins = runners[tool](folder, index, graph.roots, args.timeout)
                        sample.requests = {**index.counts(), "releases": releases}
                        cell = cells.setdefault((tool, family, size), Cell())
                        cell.samples.append(sample)
                        cell.pins = pins or cell.pins
                        print(
                            f"  {tool}: {sample.seconds:.2f} s, {sample.cpu:.2f} s CPU, "
                            f"{sample.peak_mib:.0f} MiB {sample.note}",
                            file=sys.stderr,
                        )
            finally:
                index.stop()
    header = (
        f"{os.cpu_count()} cores, CPython {sys.version.split()[0]}, "
        f"{args.rounds} rounds (medians), seed {args.seed}, "
        f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC"
    )
    out = header + "\n\n" + table(cells, sizes, tools) + "\n"
    if args.png:
        out += "\n" + plot(cells, sizes, tools, args.png) + "\n"
    print(out)
    if args.markdown:
        args.markdown.write_text(out)
    drop_caches(work)  # nothing is timed any more
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
