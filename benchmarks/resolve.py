#!/usr/bin/env python3
"""Resolve realistic ML requirement sets against live PyPI: reprolock vs uv (vs pip-compile).

Every tool resolves the same set for CPython 3.11 on linux/amd64 (manylinux_2_28) with
hashes, in one run, runs of the tools interleaved, so ratios are fair on a shared machine.
Cold runs start from empty caches (each a new folder, never one deleted just before: see
`fresh_cache`); "warm" re-resolves with the cache of the last cold run
(the lock deleted); "up to date" runs `lock` again with nothing changed.  Each sample
records wall time, CPU time (user + system) and peak RSS of the tool's process.

    python benchmarks/resolve.py                          # all sets, 3 rounds
    python benchmarks/resolve.py --sets torch,science --rounds 1
    python benchmarks/resolve.py --baseline /tmp/old      # also an older reprolock tree
    python benchmarks/resolve.py --profile prof/          # plus one py-spy profile per set
    python benchmarks/resolve.py --markdown out.md        # also write the tables there

`--baseline DIR` names a source tree of another reprolock (e.g. `git archive OLD reprolock
matrices schemas | tar -x -C DIR`); it runs beside this checkout's, as "before".  Needs
network access to PyPI and `uv` on PATH (`pip-compile` and `py-spy` when asked for).
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KITCHEN = [
    "requests",
    "httpx",
    "aiohttp",
    "fastapi",
    "uvicorn",
    "pydantic",
    "sqlalchemy",
    "alembic",
    "psycopg2-binary",
    "redis",
    "celery",
    "boto3",
    "google-cloud-storage",
    "azure-storage-blob",
    "numpy",
    "pandas",
    "scipy",
    "scikit-learn",
    "matplotlib",
    "seaborn",
    "plotly",
    "jupyterlab",
    "ipywidgets",
    "pytest",
    "black",
    "ruff",
    "mypy",
    "flake8",
    "sphinx",
    "click",
    "typer",
    "rich",
    "tqdm",
    "pyyaml",
    "toml",
    "jinja2",
    "flask",
    "django",
    "gunicorn",
    "pillow",
    "opencv-python-headless",
    "lxml",
    "beautifulsoup4",
    "scrapy",
    "nltk",
    "xgboost",
    "lightgbm",
    "statsmodels",
    "sympy",
    "networkx",
    "pyarrow",
    "polars",
    "dask",
    "openpyxl",
]
SETS: dict[str, list[str]] = {
    "torch": [
        "torch==2.5.1",
        "torchvision",
        "torchaudio",
        "transformers",
        "datasets",
        "accelerate",
        "safetensors",
    ],
    "tensorflow": ["tensorflow[and-cuda]==2.17.*"],
    "jax": ["jax[cuda12]"],
    "science": ["numpy", "pandas", "scipy", "scikit-learn", "matplotlib", "jupyterlab"],
    "kitchen-sink": KITCHEN,
    "kitchen-sink-boto3-first": ["boto3", *[r for r in KITCHEN if r != "boto3"]],
}
# Spec sections beyond [python], per set.  The torch set targets an H100: the stack solver then
# takes torch's PyPI build (CUDA 12.4 wheels), as uv does; on a CPU-only target it would route
# torch to download.pytorch.org/whl/cpu, which uv is not asked to use.
EXTRA_SPEC: dict[str, str] = {"torch": '[gpu]\ndevices = ["H100"]\n'}
INDEX = "https://pypi.org/simple"
PIP_ENV = {**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
PIP_ENV.pop("PIP_CONSTRAINT", None)
# The targets (issue 19): cold within these multiples of uv's wall time.
COLD_RATIO = {"torch": 1.2}
COLD_RATIO_DEFAULT = 1.5
UP_TO_DATE_SECONDS = 0.15
KITCHEN_RSS_MIB = 200


@dataclass
class Sample:
    seconds: float
    cpu: float
    peak_mib: float
    ok: bool
    note: str = ""


@dataclass
class Row:
    name: str
    results: dict[str, list[Sample]] = field(default_factory=dict)
    pins: dict[str, dict[str, str]] = field(default_factory=dict)
    load: list[float] = field(default_factory=list)
    install: str = ""

    def add(self, key: str, sample: Sample) -> None:
        self.results.setdefault(key, []).append(sample)

    def median(self, key: str, what: str = "seconds") -> float | None:
        samples = [getattr(s, what) for s in self.results.get(key, []) if s.ok]
        return statistics.median(samples) if samples else None

    def peak(self, key: str) -> float | None:
        samples = [s.peak_mib for s in self.results.get(key, []) if s.ok]
        return max(samples) if samples else None


def run(
    cmd: list[str], *, cwd: Path, env: dict[str, str] | None = None, timeout: float = 1800
) -> Sample:
    """Run ``cmd``: wall time, CPU time and the child's peak RSS (from wait4)."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            cmd, cwd=cwd, env=env or dict(os.environ), stdout=subprocess.DEVNULL, stderr=err
        )
        deadline = start + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                os.wait4(proc.pid, 0)
                return Sample(timeout, 0, 0, False, f"timed out after {timeout:.0f} s")
            time.sleep(0.005)
        seconds = time.perf_counter() - start
        code = os.waitstatus_to_exitcode(status)
        proc.returncode = code
        err.seek(0)
        text = err.read().decode(errors="replace").strip()
    note = "" if code == 0 else f"exit {code}: {text.splitlines()[-1:] if text else ''}"
    cpu = usage.ru_utime + usage.ru_stime
    return Sample(seconds, cpu, usage.ru_maxrss / 1024, code == 0, note)


def write_inputs(folder: Path, requirements: list[str], extra: str = "") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "requirements.in").write_text("\n".join(requirements) + "\n")
    reqs = ", ".join(json.dumps(r) for r in requirements)
    (folder / "reprolock.toml").write_text(
        '[environment]\npython = "3.11"\nplatforms = ["linux/amd64"]\n\n'
        + (extra + "\n" if extra else "")
        + f"[python]\nrequirements = [{reqs}]\n"
    )


@dataclass(frozen=True)
class Reprolock:
    """A reprolock to run: this checkout's, or a baseline source tree's."""

    label: str
    tree: Path

    def env(self) -> dict[str, str]:
        return {**os.environ, "PYTHONPATH": str(self.tree)}

    def cmd(self, cache: Path, *extra: str) -> list[str]:
        # the interpreter itself, not a shim (pyenv's costs ~50 ms a start)
        return [sys.executable, "-m", "reprolock", "-q", "--cache-dir", str(cache), "lock", *extra]


def uv_cmd(cache: Path, out: Path, *extra: str) -> list[str]:
    return [
        *("uv", "pip", "compile", "-q", "--cache-dir", str(cache)),
        *("--python-platform", "x86_64-manylinux_2_28", "--python-version", "3.11"),
        *("--generate-hashes", "--index-url", INDEX, "-o", str(out), "requirements.in", *extra),
    ]


def pins_from_lock(path: Path) -> dict[str, str]:
    lock = tomllib.loads(path.read_text())
    return {p["name"]: p["version"] for p in lock["targets"][0].get("packages", [])}


def pins_from_requirements(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9._-]+)(?:\[[^\]]*\])?==([^\s;\\]+)", line)
        if match:
            pins[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(2)
    return pins


CACHES = "caches"
"""The folder under a set's folder that holds every cache of a benchmark run."""


def fresh_cache(folder: Path, label: str) -> Path:
    """A cache folder never used before (not a deleted and re-made one): deleting the last
    run's thousand-odd cache files just before a cold run made that run's own file creations
    0.7 s slower on this machine's ext4 (no journal: a new inode is checked against every
    recently deleted one), for all tools, reprolock most (it writes ~1,100 files to uv's
    ~500). Caches are deleted when the whole run is done (`drop_caches`)."""
    (folder / CACHES).mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{label}-", dir=folder / CACHES))


def drop_caches(work: Path) -> None:
    """Delete every cache the run made (once nothing is timed any more)."""
    for caches in work.glob(f"*/{CACHES}"):
        shutil.rmtree(caches, ignore_errors=True)


def bench_set(
    name: str,
    work: Path,
    rounds: int,
    tools: list[str],
    reprolocks: list[Reprolock],
    pip_compile_timeout: float,
) -> Row:
    row = Row(name)
    folder = work / name
    write_inputs(folder, SETS[name], EXTRA_SPEC.get(name, ""))
    row.load.append(os.getloadavg()[0])
    runners = [*(r.label for r in reprolocks), *(t for t in tools if t == "uv")]
    by_label = {r.label: r for r in reprolocks}
    last_cache: dict[str, Path] = {}
    for round_ in range(rounds):
        order = runners[round_ % len(runners) :] + runners[: round_ % len(runners)]
        for label in order:  # rotated, so no tool always runs on a network the others warmed
            cache = last_cache[label] = fresh_cache(folder, label)
            if label == "uv":
                row.add("uv cold", run(uv_cmd(cache, folder / "uv.txt"), cwd=folder))
                continue
            tool = by_label[label]
            lock = folder / f"{label}.lock"
            lock.unlink(missing_ok=True)
            row.add(
                f"{label} cold",
                run(tool.cmd(cache, "--lock", str(lock)), cwd=folder, env=tool.env()),
            )
        print(f"  {name}: cold round {round_ + 1} done", file=sys.stderr)
    for _ in range(rounds):
        for label in runners:
            cache = last_cache[label]
            if label == "uv":
                uv_warm = uv_cmd(cache, folder / "uv.txt", "--offline")
                row.add("uv warm --offline", run(uv_warm, cwd=folder))
                continue
            tool = by_label[label]
            lock = folder / f"{label}.lock"
            lock.unlink(missing_ok=True)
            cmd = tool.cmd(cache, "--lock", str(lock))
            row.add(f"{label} warm", run(cmd, cwd=folder, env=tool.env()))
            row.add(f"{label} up to date", run(cmd, cwd=folder, env=tool.env()))
    if "pip-compile" in tools:
        cache = fresh_cache(folder, "pip")
        pip_compile = [
            *("pip-compile", "-q", "--generate-hashes", "--index-url", INDEX),
            *("--cache-dir", str(cache), "-o", "pip.txt", "requirements.in"),
        ]
        row.add(
            "pip-compile cold",
            run(pip_compile, cwd=folder, env=PIP_ENV, timeout=pip_compile_timeout),
        )
    for label in runners:
        path = folder / ("uv.txt" if label == "uv" else f"{label}.lock")
        if path.exists():
            reader = pins_from_requirements if label == "uv" else pins_from_lock
            row.pins[label] = reader(path)
    row.load.append(os.getloadavg()[0])
    return row


def differences(ours: dict[str, str], theirs: dict[str, str]) -> list[str]:
    return [
        f"{pkg}: {ours.get(pkg, '-')} vs {theirs.get(pkg, '-')}"
        for pkg in sorted(set(ours) | set(theirs))
        if ours.get(pkg) != theirs.get(pkg)
    ]


def install_check(row: Row, work: Path) -> None:
    """Export hashed requirements and install them into a fresh CPython 3.11 venv."""
    folder = work / row.name
    req = folder / "exported.txt"
    export = subprocess.run(
        [sys.executable, "-m", "reprolock", "export", "requirements", "-o", str(req)],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    if export.returncode != 0:
        row.install = f"export failed: {export.stderr.strip()}"
        return
    venv = folder / "venv"
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip"]
    start = time.perf_counter()
    install = subprocess.run(
        [*pip, "install", "-q", "--no-deps", "--require-hashes", "-r", str(req)],
        env=PIP_ENV,
        capture_output=True,
        text=True,
        check=False,
    )
    if install.returncode != 0:
        row.install = f"install failed: {install.stderr.strip().splitlines()[-1:]}"
    else:
        check = subprocess.run(
            [*pip, "check"], check=False, env=PIP_ENV, capture_output=True, text=True
        )
        row.install = (
            "installed, pip check ok"
            if check.returncode == 0
            else f"pip check: {check.stdout.strip()}"
        )
        row.install += f" ({time.perf_counter() - start:.0f} s)"
    shutil.rmtree(venv, ignore_errors=True)


# -- profiles ---------------------------------------------------------------------------
# py-spy --gil samples the thread that holds the interpreter lock: for a process whose Python
# work is bound by that lock, where its CPU goes (C code that releases the lock, such as
# hashing large buffers or waiting on the network, is not counted).  --native counts every
# thread, also those waiting for the lock, and samples a crowd of threads less often than
# one, so its shares are skewed between phases.
WAITING = (
    "PyThread_acquire_lock_timed",
    "PySSL_select",
    "_queue_SimpleQueue_get",
    "pthread_cond_timedwait",
    "pthread_cond_wait",
    "sem_wait",
    "sem_timedwait",
    "epoll_wait",
    "poll (",
    "select (",
    "nanosleep",
)
CATEGORIES = [  # the first that matches a sample's stack wins
    ("start-up and imports", ("_find_and_load",)),
    ("writing the lock", ("tomli_w/", "lock/codec.py", "atomic.py", "write_lock")),
    (
        "index pages: JSON decode and entries",
        ("parse_json_page", "json_page_files", "parse_page", "page_parse.py"),
    ),
    ("page summaries", ("dump_summary", "load_summary")),
    ("cache reads and writes", ("net/cache.py",)),
    ("metadata: zip reads and parsing", ("read_member", "ZipFile", "parse_metadata", "applying")),
    ("selection", ("select_core", "select_releases", "selection_for")),
    ("resolver (resolvelib + provider)", ("resolvelib/", "provider.py")),
    ("HTTP (requests, urllib3, TLS)", ("requests/", "urllib3/", "http/client", "ssl.py")),
    ("spec, matrices, stack planning", ("compat/", "spec/", "stack/", "api/project.py")),
]


def profile_categories(raw: Path) -> tuple[float, dict[str, float]]:
    """CPU share per category in a py-spy raw profile (and the samples counted)."""
    on_cpu = 0
    shares: dict[str, float] = {}
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        frames = stack.split(";")
        if any(w in ";".join(frames[-3:]) for w in WAITING):
            continue
        count = int(count_text)
        on_cpu += count
        label = next((lab for lab, keys in CATEGORIES if any(k in stack for k in keys)), "other")
        shares[label] = shares.get(label, 0) + count
    return on_cpu, {k: v / on_cpu for k, v in sorted(shares.items(), key=lambda kv: -kv[1])}


def profile_set(name: str, work: Path, reprolocks: list[Reprolock], out: Path) -> list[str]:
    """One cold lock of ``name`` per reprolock under py-spy; the CPU breakdowns as lines."""
    folder = work / name
    out.mkdir(parents=True, exist_ok=True)
    lines = []
    for tool in reprolocks:
        cache = fresh_cache(folder, f"profile-{tool.label}")
        raw = out / f"{name}-{tool.label}.txt"
        lock = folder / f"profile-{tool.label}.lock"
        lock.unlink(missing_ok=True)
        cmd = [
            *("py-spy", "record", "--gil", "-r", "250", "--format", "raw", "-o", str(raw)),
            "--",
            *tool.cmd(cache, "--lock", str(lock)),
        ]
        sample = run(cmd, cwd=folder, env=tool.env())
        if not sample.ok or not raw.exists():
            lines.append(f"- {name}, {tool.label}: profile failed ({sample.note})")
            continue
        on_cpu, shares = profile_categories(raw)
        parts = ", ".join(f"{k} {v:.0%}" for k, v in shares.items())
        lines.append(f"- {name}, {tool.label} ({on_cpu} on-CPU samples): {parts}")
    return lines


# -- output -------------------------------------------------------------------------------
def fmt(value: float | None, unit: str = "s") -> str:
    if value is None:
        return "—"
    return f"{value:.2f} {unit}" if unit == "s" else f"{value:.0f} {unit}"


def ratio(a: float | None, b: float | None) -> str:
    return "—" if a is None or b is None or b == 0 else f"{a / b:.2f}×"


def table(rows: list[Row], labels: list[str], tools: list[str]) -> str:
    head = ["set", "pkgs"]
    for label in labels:
        head += [f"{label} cold (CPU)", f"{label} / uv"]
    head += ["uv cold (CPU)"]
    for label in labels:
        head += [f"{label} warm", f"{label} up to date"]
    head += ["uv warm --offline"]
    head += [f"{label} peak RSS" for label in labels] + ["uv peak RSS"]
    if "pip-compile" in tools:
        head += ["pip-compile cold"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        main = labels[0]
        cells = [r.name, str(len(r.pins.get(main, {})))]
        uv = r.median("uv cold")
        for label in labels:
            cold = r.median(f"{label} cold")
            cpu = r.median(f"{label} cold", "cpu")
            cells += [f"{fmt(cold)} ({fmt(cpu)})", ratio(cold, uv)]
        cells.append(f"{fmt(uv)} ({fmt(r.median('uv cold', 'cpu'))})")
        for label in labels:
            cells += [fmt(r.median(f"{label} warm")), fmt(r.median(f"{label} up to date"))]
        cells.append(fmt(r.median("uv warm --offline")))
        cells += [fmt(r.peak(f"{label} cold"), "MiB") for label in labels]
        cells.append(fmt(r.peak("uv cold"), "MiB"))
        if "pip-compile" in tools:
            samples = r.results.get("pip-compile cold", [])
            cells.append(
                fmt(r.median("pip-compile cold"))
                if not samples or samples[0].ok
                else f"> {samples[0].seconds:.0f} s ({samples[0].note})"
            )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def targets(rows: list[Row], label: str) -> str:
    """The issue's resolver targets, each met or missed, from this run."""
    lines = ["| target | set | result | |", "|---|---|---|---|"]
    for r in rows:
        limit = COLD_RATIO.get(r.name, COLD_RATIO_DEFAULT)
        cold, uv = r.median(f"{label} cold"), r.median("uv cold")
        if cold is not None and uv is not None:
            met = cold <= limit * uv
            lines.append(
                f"| cold within {limit}× of uv | {r.name} | {cold:.2f} s vs {uv:.2f} s "
                f"({cold / uv:.2f}×) | {'met' if met else 'missed'} |"
            )
    for r in rows:
        warm, uv = r.median(f"{label} warm"), r.median("uv cold")
        if warm is not None and uv is not None:
            lines.append(
                f"| warm re-resolve faster than uv cold | {r.name} | {warm:.2f} s vs {uv:.2f} s "
                f"| {'met' if warm < uv else 'missed'} |"
            )
    for r in rows:
        fresh = r.median(f"{label} up to date")
        if fresh is not None:
            lines.append(
                f"| up to date ≤ {UP_TO_DATE_SECONDS} s | {r.name} | {fresh:.2f} s "
                f"| {'met' if fresh <= UP_TO_DATE_SECONDS else 'missed'} |"
            )
    for r in rows:
        peak = r.peak(f"{label} cold")
        if r.name.startswith("kitchen-sink") and peak is not None:
            lines.append(
                f"| peak RSS ≤ {KITCHEN_RSS_MIB} MiB | {r.name} | {peak:.0f} MiB "
                f"| {'met' if peak <= KITCHEN_RSS_MIB else 'missed'} |"
            )
    return "\n".join(lines)


def notes(rows: list[Row], labels: list[str]) -> list[str]:
    out = []
    for r in rows:
        failed = sorted({f"{k}: {s.note}" for k, ss in r.results.items() for s in ss if not s.ok})
        if failed:
            out.append(f"- {r.name}: " + "; ".join(failed))
        main = r.pins.get(labels[0])
        if main is None:
            out.append(f"- {r.name}: no lock written, no pins to compare")
            continue
        for other in [*labels[1:], "uv"]:
            if other not in r.pins:
                continue
            diff = differences(main, r.pins[other])
            out.append(
                f"- {r.name}: pins identical to {other}'s ({len(main)} packages)"
                if not diff
                else f"- {r.name}: pins differ from {other}'s: " + "; ".join(diff)
            )
        if r.install:
            out.append(f"- {r.name}: {r.install}")
        out.append(f"- {r.name}: load average {r.load[0]:.1f} before, {r.load[-1]:.1f} after")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tools", default="reprolock,uv", help="also: pip-compile")
    parser.add_argument("--baseline", type=Path, help="another reprolock source tree")
    parser.add_argument("--profile", type=Path, help="write py-spy profiles here")
    parser.add_argument("--pip-compile-timeout", type=float, default=300)
    parser.add_argument("--install-check", action="store_true")
    parser.add_argument("--work", type=Path, default=None, help="keep work files here")
    parser.add_argument("--markdown", type=Path, default=None, help="also write the tables here")
    args = parser.parse_args()
    tools = args.tools.split(",")
    reprolocks = [Reprolock("reprolock", ROOT)] if "reprolock" in tools else []
    if args.baseline:
        reprolocks.append(Reprolock("before", args.baseline.resolve()))
    labels = [r.label for r in reprolocks]
    for tool in reprolocks:  # as an install has them (PYTHONDONTWRITEBYTECODE may be set)
        compileall.compile_dir(tool.tree / "reprolock", quiet=1)
    work = args.work or Path(tempfile.mkdtemp(prefix="reprolock-bench-"))
    uv = subprocess.run(["uv", "--version"], capture_output=True, text=True, check=False)
    header = (
        f"{os.cpu_count()} cores, CPython {sys.version.split()[0]}, {uv.stdout.strip()}, "
        f"{args.rounds} rounds (medians; peak RSS: the highest), "
        f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC"
    )
    rows, profiles = [], []
    for name in args.sets.split(","):
        print(f"{name} …", file=sys.stderr)
        row = bench_set(name, work, args.rounds, tools, reprolocks, args.pip_compile_timeout)
        if args.install_check and "reprolock" in row.pins:
            install_check(row, work)
        if args.profile:
            profiles += profile_set(name, work, reprolocks, args.profile)
        rows.append(row)
    parts = [header, "", table(rows, labels, tools), "", *notes(rows, labels)]
    if labels:
        parts += ["", targets(rows, labels[0])]
    if profiles:
        parts += ["", "CPU by category (py-spy --gil, one cold lock):", "", *profiles]
    out = "\n".join(parts) + "\n"
    print(out)
    if args.markdown:
        args.markdown.write_text(out)
    drop_caches(work)
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
