"""The paths a newcomer types: global options after the command, a diff's sides told apart
by what they hold (a copied lock, standard input, a pipe, a git revision), image names that
are bad input or missing from both the daemon and the registry."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Run
from tests.hostile.test_image_sources import fake_daemon
from tests.imagefiles import write_docker_archive
from tests.pyindex import IndexServer
from tests.test_inspect import realistic_image

Cli = Callable[..., Run]
ROOT = Path(__file__).parent.parent
EXAMPLE = ROOT / "examples" / "cpu"
AMD64 = ("--target", "py3.11-amd64")


@pytest.fixture
def example(tmp_path: Path) -> Path:
    """A copy of examples/cpu (spec and its up-to-date lock)."""
    folder = tmp_path / "cpu"
    shutil.copytree(EXAMPLE, folder)
    return folder


# -- global options where people type them -------------------------------------------------


def test_global_options_work_after_the_command(cli: Cli, example: Path) -> None:
    before = cli("--format", "json", "check", cwd=example)
    after = cli("check", "--format", "json", cwd=example)
    assert after.code == before.code == 0, after.err
    assert json.loads(after.out) == json.loads(before.out)
    assert cli("check", "-q", cwd=example).out == ""
    run = cli("diff", "reprolock.lock", "reprolock.lock", *AMD64, "--format", "json", cwd=example)
    assert run.code == 0, run.err
    assert json.loads(run.out)["changes"] == []
    quiet = cli("matrix", "driver", "535.104.05", cwd=example).out
    loud = cli("matrix", "driver", "535.104.05", "-v", cwd=example).out
    assert loud == cli("-v", "matrix", "driver", "535.104.05", cwd=example).out
    assert len(loud) > len(quiet)
    run = cli("lock", "-v", "--offline", "--cache-dir", str(example / "cache"), cwd=example)
    assert run.code == 0, run.err
    assert "is up to date" in run.out
    # A usage error after --format json placed after the command is JSON too.
    run = cli("diff", "reprolock.lock", "--format", "json", cwd=example)
    assert run.code == 2
    assert json.loads(run.out)["error"]["message"] == "Missing argument 'B'."
    assert "may also\n  follow the command" in cli("lock", "--help").out


# -- diff: each side by what it holds --------------------------------------------------------


def test_diff_reads_a_lock_by_its_content_not_its_name(cli: Cli, example: Path) -> None:
    shutil.copy(example / "reprolock.lock", example / "saved-yesterday")
    run = cli("--format", "json", "diff", "saved-yesterday", "reprolock.lock", *AMD64, cwd=example)
    assert run.code == 0, run.err
    assert json.loads(run.out)["a"] == "saved-yesterday (py3.11-amd64)"
    # ... and an image archive named like a lock is an image.
    write_docker_archive(example / "image.lock", realistic_image())
    run = cli("--format", "json", "diff", "image.lock", "docker-archive:image.lock", cwd=example)
    assert run.code == 0, run.err
    assert json.loads(run.out)["changes"] == []
    # A text file that is no lock says so (it is not read as an image).
    run = cli("diff", "reprolock.toml", "reprolock.lock", *AMD64, cwd=example)
    assert run.code == 2
    assert "error: reprolock.toml: lock-version is missing or malformed" in run.err


def test_diff_reads_a_lock_from_standard_input_and_from_a_pipe(
    cli: Cli, example: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = (example / "reprolock.lock").read_bytes()
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data)))
    run = cli("--format", "json", "diff", "-", "reprolock.lock", *AMD64, cwd=example)
    assert run.code == 0, run.err
    assert json.loads(run.out)["a"] == "standard input (py3.11-amd64)"
    # <(git show HEAD~1:reprolock.lock): a pipe the shell names /dev/fd/N
    fifo = example / "pipe"
    os.mkfifo(fifo)
    writer = threading.Thread(target=fifo.write_bytes, args=(data,))
    writer.start()
    run = cli("--format", "json", "diff", "pipe", "reprolock.lock", *AMD64, cwd=example)
    writer.join()
    assert run.code == 0, run.err
    assert json.loads(run.out)["changes"] == []
    run = cli("diff", "-", "-", cwd=example)
    assert run.code == 2
    assert "both sides are standard input" in run.err


def test_diff_reads_the_lock_at_a_git_revision(cli: Cli, example: Path) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=example, check=True, capture_output=True)

    git("init", "-q")
    git("add", "reprolock.toml", "reprolock.lock")
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "lock")
    for side in ("git:HEAD", "git:HEAD:reprolock.lock"):
        run = cli("--format", "json", "diff", side, "reprolock.lock", *AMD64, cwd=example)
        assert run.code == 0, run.err
        assert json.loads(run.out)["a"] == "git:HEAD:reprolock.lock (py3.11-amd64)"
    run = cli("diff", "git:no-such-branch", "reprolock.lock", *AMD64, cwd=example)
    assert run.code == 2
    assert run.err.startswith(
        "error: git:no-such-branch:reprolock.lock: git cannot show it: fatal: invalid object "
        "name 'no-such-branch'."
    )
    run = cli("diff", "git:HEAD:gone.lock", "reprolock.lock", *AMD64, cwd=example)
    assert run.code == 2
    assert "path 'gone.lock' does not exist in 'HEAD'" in run.err


# -- image names -------------------------------------------------------------------------------


def _daemon_answering(status: str, body: bytes) -> Callable[[socket.socket], None]:
    def answer(connection: socket.socket) -> None:
        connection.sendall(
            f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
        )

    return answer


@pytest.mark.parametrize("name", ["foo:bar:baz", "docker:foo:bar:baz", "registry:foo:bar:baz"])
def test_a_malformed_image_name_is_bad_input_even_with_a_daemon(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str
) -> None:
    """Docker's daemon answers 500 "invalid reference format": that is the user's typo."""
    answer = _daemon_answering("500 Internal Server Error", b'{"message":"invalid reference"}')
    with fake_daemon(answer) as host:
        monkeypatch.setenv("DOCKER_HOST", host)
        run = cli("inspect", name, cwd=tmp_path)
    assert run.code == 2, run.err
    assert f"{name.removeprefix('registry:')}: not an image reference" in run.err


def test_a_bare_name_missing_everywhere_says_both_failures(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    name = f"127.0.0.1:{_closed_port()}/team/app:1"  # a registry that cannot be reached
    answer = _daemon_answering("404 Not Found", b'{"message":"No such image"}')
    with fake_daemon(answer) as host:
        monkeypatch.setenv("DOCKER_HOST", host)
        run = cli("inspect", name, cwd=tmp_path)
    assert run.code == 4, run.err
    socket_path = host.removeprefix("unix://")
    assert run.err.startswith(
        f"error: {name}: not found: the docker daemon at {socket_path} has no such image, "
        "and from its registry: "
    ), run.err
    assert f"docker:{name} or registry:{name} asks only one of them" in run.err


# -- a stale lock is never used without a word -----------------------------------------------


@pytest.fixture
def stale(tmp_path: Path) -> Path:
    """The golden lock beside a spec it is not the lock of."""
    folder = tmp_path / "stale"
    folder.mkdir()
    shutil.copy(ROOT / "tests" / "golden" / "reprolock.lock", folder / "reprolock.lock")
    (folder / "reprolock.toml").write_text(
        '[environment]\npython = "3.11"\n\n[python]\nrequirements = ["numpy"]\n'
    )
    return folder


def test_dockerfile_fetch_and_verify_warn_about_a_stale_lock(cli: Cli, stale: Path) -> None:
    warning = "warning: reprolock.lock is stale: it no longer matches reprolock.toml ("
    run = cli("dockerfile", cwd=stale)
    assert run.code == 0, run.err
    assert run.err.startswith(warning), run.err
    assert "run `reprolock lock` (--locked makes this an error)." in run.err
    run = cli("fetch", "--offline", cwd=stale)  # the warning comes before any download
    assert run.err.startswith(warning), run.err
    write_docker_archive(stale / "image.tar", realistic_image())
    run = cli("verify", "image", "docker-archive:image.tar", cwd=stale)
    assert run.err.startswith(warning), run.err
    # A lock on its own (a CI artifact) has nothing to be compared with: no word.
    (stale / "reprolock.toml").unlink()
    run = cli("dockerfile", "--lock", "reprolock.lock", cwd=stale)
    assert (run.code, run.err) == (0, "")


@pytest.mark.parametrize(
    "command",
    [["dockerfile"], ["fetch"], ["verify", "image", "docker-archive:no-such-image.tar"]],
)
def test_locked_makes_a_stale_lock_an_error(cli: Cli, stale: Path, command: list[str]) -> None:
    run = cli(*command, "--locked", cwd=stale)
    assert run.code == 1, run.err
    assert run.err.startswith(
        "error: reprolock.lock: is stale; it no longer matches reprolock.toml:\n  - "
    ), run.err
    assert not (stale / "Dockerfile").exists()


# -- the starter runs what it copies -----------------------------------------------------------


@pytest.mark.parametrize("gpu", [False, True])
def test_the_starters_cmd_runs_what_it_copies_into_its_workdir(
    cli: Cli, tmp_path: Path, gpu: bool
) -> None:
    """The image's COPY lines, WORKDIR and CMD, played out in a folder standing for the
    image's root: the module the cmd runs is the package the copy put in the workdir."""
    project = tmp_path / "project"
    project.mkdir()
    assert cli("init", *(["--gpu"] if gpu else []), cwd=project).code == 0
    image = tomllib.loads((project / "reprolock.toml").read_text())["image"]
    python, dash_m, module = image["cmd"]
    assert (python, dash_m) == ("python", "-m")
    (project / module).mkdir()
    (project / module / "__main__.py").write_text("print('hello from', __package__)\n")
    root = tmp_path / "root"
    for source, dest in image["copy"]:
        shutil.copytree(project / source, root / dest.lstrip("/"))
    workdir = root / image["workdir"].lstrip("/")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = subprocess.run(
        [sys.executable, "-m", module],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (run.returncode, run.stdout) == (0, f"hello from {module}\n"), run.stderr


# -- wording ------------------------------------------------------------------------------------


def _spec(folder: Path, gpu: str) -> Path:
    folder.mkdir()
    (folder / "reprolock.toml").write_text(
        f'[environment]\npython = "3.11"\n\n{gpu}\n[python]\nrequirements = ["torch==2.5.*"]\n'
    )
    return folder


FLEET = '[gpu]\ndevices = ["A100", "H100"]\ndriver = "535.104.05"\ncuda = ">=12.1"\n'


def test_explain_shows_the_bounds_as_people_read_them(cli: Cli, tmp_path: Path) -> None:
    run = cli("explain", cwd=_spec(tmp_path / "gpu", FLEET))
    assert run.code == 0, run.err
    assert re.search(
        r"\n    torch 2\.5\.0 \.\. 2\.5\.1 only \(\d+ of the \d+ known releases excluded\): the "
        r"releases whose PyPI wheel \(CUDA 12\.4\) fits py3\.11-amd64\n",
        run.out,
    ), run.out
    assert "\n    nvidia-cuda-runtime-cu11: none (its wheels are CUDA 11): gpu.cuda is" in run.out
    assert "!=" not in run.out and "whose the" not in run.out
    assert "chose torch 2.5.1 (PyPI wheel, CUDA 12.4)" in run.out


def test_an_unconfirmed_arch_list_is_not_mentioned_when_every_gpu_runs_natively(
    cli: Cli, tmp_path: Path
) -> None:
    """torch 2.5's cu121 arch list is unsure of its PTX: an A100 runs its native sm_80."""
    fleet = '[gpu]\ndevices = ["A100"]\ndriver = "530.30.02"\ncompat = "strict"\n'
    run = cli("explain", cwd=_spec(tmp_path / "cu121", fleet))
    assert run.code == 0, run.err
    assert "chose torch 2.5.1 (cu121, CUDA 12.1)" in run.out
    assert "A100: native sm_80" in run.out
    assert "not confirmed" not in run.out


def test_check_names_the_fleets_driver_and_the_locks_floor_apart(cli: Cli, tmp_path: Path) -> None:
    from reprolock.cli.check import driver_floors
    from reprolock.lock import loads

    run = cli("check", cwd=_spec(tmp_path / "gpu", FLEET))
    assert run.code == 0, run.err
    assert "; the fleet's oldest driver 535.104.05 (minor compat)." in run.out
    assert "driver floor" not in run.out  # that is the lock's: what the stack needs
    golden = ROOT / "tests" / "golden" / "reprolock.lock"
    lock = loads(golden.read_text(), file=str(golden)).lock
    assert driver_floors(lock) == (
        "driver floor 550.54.15 strict, 525.60.13 with minor-version compatibility"
    )


def test_matrix_torch_help_says_series_then_release(cli: Cli) -> None:
    help_text = " ".join(cli("matrix", "torch", "--help").out.split())
    assert "A PyTorch release series (2.5: each of its releases) or one release (2.5.1)" in (
        help_text
    )


# -- an index reprolock chose that cannot be reached ------------------------------------------


def _closed_port() -> int:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port: int = closed.getsockname()[1]
    closed.close()
    return port


@pytest.mark.parametrize(
    ("gpu", "story"),
    [
        (
            "",
            "choosing torch 2.5.1 (CPU build) because its PyPI wheel brings CUDA 12.4 "
            "libraries, which a CPU-only target (no [gpu]) never uses. No PyPI build of torch "
            "fits py3.11-amd64.",
        ),
        (
            '[gpu]\ndevices = ["A100"]\ndriver = "530.30.02"\ncompat = "strict"\n',
            "choosing torch 2.5.1 (cu121, CUDA 12.1) because its PyPI wheel uses CUDA 12.4, "
            "which needs driver >= 550.54.14 (strict policy); the fleet's oldest is 530.30.02. "
            "A PyPI build would also fit: torch 2.4.1 (PyPI wheel, CUDA 12.1); ask for "
            "torch==2.4.* to lock it from PyPI alone.",
        ),
    ],
)
def test_an_unreachable_index_reprolock_routed_to_says_why_and_how_to_mirror_it(
    lock_cli: Callable[..., Run], tmp_path: Path, index_server: IndexServer, gpu: str, story: str
) -> None:
    index_server.add_index("pypi", tmp_path / "index")  # nothing else is looked up
    whl = f"http://127.0.0.1:{_closed_port()}/whl"
    variant = "cpu" if not gpu else "cu121"
    (tmp_path / "reprolock.toml").write_text(
        f'[environment]\npython = "3.11"\n\n{gpu}\n[python]\nrequirements = ["torch==2.5.*"]\n'
        f'pytorch-index = "{whl}"\n[[python.index]]\nname = "pypi"\n'
        f'url = "{index_server.url("pypi")}"\ndefault = true\n'
    )
    run = lock_cli("lock")
    assert run.code == 4, run.err
    assert run.err.startswith(f"error: cannot reach {whl}/{variant}/torch/"), run.err
    assert (
        f"\nThe spec does not name this index: reprolock routed torch, torchvision and "
        f"torchaudio to {whl}/{variant}, {story} To use a mirror of it, set [python] "
        f'pytorch-index = "https://mirror.example.com/whl" (a copy of {whl} that serves '
        f"{variant}/); with a filled cache, --offline works without the network.\n"
    ) in run.err


# -- without Docker Hub --------------------------------------------------------------------------


def test_the_without_docker_hub_page_is_in_the_site_and_its_specs_are_valid(
    cli: Cli, tmp_path: Path
) -> None:
    assert "Without Docker Hub: without-docker-hub.md" in (ROOT / "mkdocs.yml").read_text()
    page = (ROOT / "docs" / "without-docker-hub.md").read_text()
    blocks = re.findall(r"```toml\n(.*?)```", page, re.DOTALL)
    assert len(blocks) == 3
    for i, block in enumerate(blocks):
        folder = tmp_path / f"spec{i}"
        folder.mkdir()
        (folder / "reprolock.toml").write_text(f'[environment]\npython = "3.11"\n\n{block}')
        run = cli("check", cwd=folder)
        assert run.code == 0, (block, run.err)


def test_the_program_exits_quickly_yet_flushes_and_runs_exit_handlers(tmp_path: Path) -> None:
    """`run` (the console script, ``python -m reprolock``) leaves with os._exit after
    `main`: the output must be complete, atexit handlers (coverage, logging) must have run,
    and the exit status be the command's."""
    script = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('exit handler ran', file=sys.stderr))\n"
        "from reprolock.cli.main import run\n"
        "sys.argv = ['reprolock', *sys.argv[1:]]\n"
        "run()\n"
    )
    ok = subprocess.run(
        [sys.executable, "-c", script, "--version"], capture_output=True, text=True, check=False
    )
    assert ok.returncode == 0
    assert ok.stdout.startswith("reprolock, version ")
    assert "exit handler ran" in ok.stderr
    bad = subprocess.run(
        [sys.executable, "-c", script, "lock", "--spec", str(tmp_path / "missing.toml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2
    assert "no such file" in bad.stderr and "exit handler ran" in bad.stderr
