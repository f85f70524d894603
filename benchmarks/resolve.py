#!/usr/bin/env python3
"""Resolve realistic ML requirement sets against live PyPI: reprolock vs uv vs pip-compile.

Every tool resolves the same set for CPython 3.11 on linux/amd64 (manylinux_2_28) with
hashes, in one run, so ratios are fair.  Cold runs start from empty caches; warm runs
reuse the cache of the last cold run with nothing changed.

    python benchmarks/resolve.py                       # all sets, 3 rounds
    python benchmarks/resolve.py --sets torch,science --rounds 1
    python benchmarks/resolve.py --install-check       # pip install --require-hashes each set
    python benchmarks/resolve.py --markdown docs/benchmarks-resolve.md

Needs network access to PyPI, and `uv` and `pip-compile` (pip-tools) on PATH.
"""

from __future__ import annotations

import argparse
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
    ],
    "tensorflow": ["tensorflow[and-cuda]==2.17.*"],
    "jax": ["jax[cuda12]"],
    "science": ["numpy", "pandas", "scipy", "scikit-learn", "matplotlib", "jupyterlab"],
    "kitchen-sink": KITCHEN,
    "kitchen-sink-boto3-first": ["boto3", *[r for r in KITCHEN if r != "boto3"]],
}
INDEX = "https://pypi.org/simple"
PIP_ENV = {**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
PIP_ENV.pop("PIP_CONSTRAINT", None)


@dataclass
class Sample:
    seconds: float
    peak_mib: float
    ok: bool
    note: str = ""


@dataclass
class Row:
    name: str
    results: dict[str, list[Sample]] = field(default_factory=dict)
    differences: list[str] = field(default_factory=list)
    packages: int = 0
    install: str = ""

    def add(self, key: str, sample: Sample) -> None:
        self.results.setdefault(key, []).append(sample)

    def median(self, key: str) -> float | None:
        samples = [s.seconds for s in self.results.get(key, []) if s.ok]
        return statistics.median(samples) if samples else None

    def peak(self, key: str) -> float | None:
        samples = [s.peak_mib for s in self.results.get(key, []) if s.ok]
        return max(samples) if samples else None


def run(
    cmd: list[str], *, cwd: Path, env: dict[str, str] | None = None, timeout: float = 1800
) -> Sample:
    """Run ``cmd``; wall time and the child's peak RSS (from wait4)."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env or dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = start + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            proc.kill()
            os.wait4(proc.pid, 0)
            return Sample(timeout, 0, False, f"timed out after {timeout:.0f} s")
        time.sleep(0.01)
    seconds = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    proc.returncode = code
    note = "" if code == 0 else f"exit {code}: {err.strip().splitlines()[-1:]}"
    return Sample(seconds, usage.ru_maxrss / 1024, code == 0, note)


def write_inputs(folder: Path, requirements: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "requirements.in").write_text("\n".join(requirements) + "\n")
    reqs = ", ".join(json.dumps(r) for r in requirements)
    (folder / "reprolock.toml").write_text(
        f'[environment]\npython = "3.11"\nplatforms = ["linux/amd64"]\n\n'
        f"[python]\nrequirements = [{reqs}]\n"
    )


def reprolock_cmd(cache: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "reprolock", "-q", "--cache-dir", str(cache), "lock", *extra]


def uv_cmd(cache: Path, out: Path, *extra: str) -> list[str]:
    return [
        "uv",
        "pip",
        "compile",
        "-q",
        "--cache-dir",
        str(cache),
        "--python-platform",
        "x86_64-manylinux_2_28",
        "--python-version",
        "3.11",
        "--generate-hashes",
        "--index-url",
        INDEX,
        "-o",
        str(out),
        "requirements.in",
        *extra,
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


def bench_set(
    name: str,
    requirements: list[str],
    work: Path,
    rounds: int,
    tools: set[str],
    pip_compile_timeout: float,
) -> Row:
    row = Row(name)
    folder = work / name
    write_inputs(folder, requirements)
    for round_ in range(rounds):
        for tool in ("reprolock", "uv"):
            if tool not in tools:
                continue
            cache = folder / f"cache-{tool}"
            shutil.rmtree(cache, ignore_errors=True)
            if tool == "reprolock":
                (folder / "reprolock.lock").unlink(missing_ok=True)
                row.add("reprolock cold", run(reprolock_cmd(cache), cwd=folder))
            else:
                row.add("uv cold", run(uv_cmd(cache, folder / "uv.txt"), cwd=folder))
        print(f"  {name}: cold round {round_ + 1} done", file=sys.stderr)
    for _ in range(rounds):
        if "reprolock" in tools:
            (folder / "reprolock.lock").unlink(missing_ok=True)
            row.add("reprolock warm", run(reprolock_cmd(folder / "cache-reprolock"), cwd=folder))
            row.add(
                "reprolock warm, lock kept",
                run(reprolock_cmd(folder / "cache-reprolock"), cwd=folder),
            )
        if "uv" in tools:
            row.add(
                "uv warm --offline",
                run(uv_cmd(folder / "cache-uv", folder / "uv.txt", "--offline"), cwd=folder),
            )
    if "pip-compile" in tools:
        cache = folder / "cache-pip"
        shutil.rmtree(cache, ignore_errors=True)
        row.add(
            "pip-compile cold",
            run(
                [
                    "pip-compile",
                    "-q",
                    "--generate-hashes",
                    "--index-url",
                    INDEX,
                    "--cache-dir",
                    str(cache),
                    "-o",
                    "pip.txt",
                    "requirements.in",
                ],
                cwd=folder,
                env=PIP_ENV,
                timeout=pip_compile_timeout,
            ),
        )
    if (folder / "reprolock.lock").exists():
        ours = pins_from_lock(folder / "reprolock.lock")
        row.packages = len(ours)
        if (folder / "uv.txt").exists():
            theirs = pins_from_requirements(folder / "uv.txt")
            for pkg in sorted(set(ours) | set(theirs)):
                if ours.get(pkg) != theirs.get(pkg):
                    row.differences.append(
                        f"{pkg}: reprolock {ours.get(pkg, '-')}, uv {theirs.get(pkg, '-')}"
                    )
    return row


def install_check(row: Row, work: Path) -> None:
    """Export hashed requirements and install them into a fresh CPython 3.11 venv."""
    folder = work / row.name
    req = folder / "exported.txt"
    export = subprocess.run(  # noqa: PLW1510 - the code is checked below
        [sys.executable, "-m", "reprolock", "export", "requirements", "-o", str(req)],
        cwd=folder,
        capture_output=True,
        text=True,
    )
    if export.returncode != 0:
        row.install = f"export failed: {export.stderr.strip()}"
        return
    venv = folder / "venv"
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip"]
    start = time.perf_counter()
    install = subprocess.run(  # noqa: PLW1510
        [*pip, "install", "-q", "--no-deps", "--require-hashes", "-r", str(req)],
        env=PIP_ENV,
        capture_output=True,
        text=True,
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


def fmt(value: float | None, unit: str = "s") -> str:
    if value is None:
        return "—"
    return f"{value:.2f} {unit}" if unit == "s" else f"{value:.0f} {unit}"


def ratio(a: float | None, b: float | None) -> str:
    return "—" if a is None or b is None or b == 0 else f"{a / b:.2f}×"


def table(rows: list[Row]) -> str:
    lines = [
        "| set | pkgs | reprolock cold | uv cold | ratio | reprolock warm (re-resolve) | "
        "reprolock warm (lock kept) | uv warm --offline | warm ratio | pip-compile cold | "
        "vs pip-compile | reprolock peak RSS | uv peak RSS |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        pc = r.results.get("pip-compile cold", [])
        pc_text = fmt(r.median("pip-compile cold"))
        if pc and not pc[0].ok:
            pc_text = (
                f"> {pc[0].seconds:.0f} s ({pc[0].note})"
                if "timed" in pc[0].note
                else f"failed ({pc[0].note})"
            )
        pc_time = r.median("pip-compile cold") or (pc[0].seconds if pc else None)
        lines.append(
            f"| {r.name} | {r.packages} | {fmt(r.median('reprolock cold'))} | "
            f"{fmt(r.median('uv cold'))} | "
            f"{ratio(r.median('reprolock cold'), r.median('uv cold'))} | "
            f"{fmt(r.median('reprolock warm'))} | {fmt(r.median('reprolock warm, lock kept'))} | "
            f"{fmt(r.median('uv warm --offline'))} | "
            f"{ratio(r.median('reprolock warm'), r.median('uv warm --offline'))} | {pc_text} | "
            f"{ratio(pc_time, r.median('reprolock cold'))} faster | "
            f"{fmt(r.peak('reprolock cold'), 'MiB')} | {fmt(r.peak('uv cold'), 'MiB')} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tools", default="reprolock,uv,pip-compile")
    parser.add_argument("--pip-compile-timeout", type=float, default=300)
    parser.add_argument("--install-check", action="store_true")
    parser.add_argument("--work", type=Path, default=None, help="keep work files here")
    parser.add_argument("--markdown", type=Path, default=None, help="also write the table here")
    args = parser.parse_args()
    tools = set(args.tools.split(","))
    work = args.work or Path(tempfile.mkdtemp(prefix="reprolock-bench-"))
    rows = []
    for name in args.sets.split(","):
        print(f"{name} …", file=sys.stderr)
        row = bench_set(name, SETS[name], work, args.rounds, tools, args.pip_compile_timeout)
        if args.install_check:
            install_check(row, work)
        rows.append(row)
    text = table(rows)
    notes = []
    for r in rows:
        failed = [f"{k}: {s.note}" for k, ss in r.results.items() for s in ss if not s.ok]
        if failed:
            notes.append(f"- {r.name}: " + "; ".join(sorted(set(failed))))
        if r.differences:
            notes.append(f"- {r.name}: pins differ from uv: " + "; ".join(r.differences))
        elif "uv" in tools:
            notes.append(f"- {r.name}: pins identical to uv's ({r.packages} packages)")
        if r.install:
            notes.append(f"- {r.name}: {r.install}")
    out = text + "\n\n" + "\n".join(notes) + "\n"
    print(out)
    if args.markdown:
        args.markdown.write_text(out)
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
