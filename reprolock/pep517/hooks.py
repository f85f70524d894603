"""The PEP 517 hooks of a build backend, run in a subprocess of the build environment.

`pyproject_hooks` runs its own small script with the build environment's interpreter;
the sdist's code is imported only there, never into reprolock.  Every hook call is
bounded: ``limits.build_seconds`` of wall time (then the process group is killed) and
``limits.build_output_bytes`` of output kept (the last bytes, for the error message).
The environment is fixed, not inherited: PATH of the build environment and the system,
a private HOME and TMPDIR, ``SOURCE_DATE_EPOCH`` (reproducible wheels), no proxies.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import warnings
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from pyproject_hooks import BackendUnavailable, BuildBackendHookCaller, HookMissing

from reprolock import limits

SOURCE_DATE_EPOCH = "315532800"  # 1980-01-01, the earliest time a zip can hold
_TAIL_LINES = 12


class BuildFailed(Exception):
    """A hook failed: ``output`` holds the last lines it wrote."""

    def __init__(self, what: str, output: str) -> None:
        super().__init__(what)
        self.what = what
        self.output = output


class _Runner:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = dict(env)

    def __call__(
        self,
        cmd: Sequence[str],
        cwd: str | None = None,
        extra_environ: Mapping[str, str] | None = None,
    ) -> None:
        caps = limits.current()
        env = {**self.env, **(extra_environ or {})}
        try:
            process = subprocess.Popen(
                list(cmd),
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            raise BuildFailed(f"cannot start the build backend ({exc})", "") from None
        kept: deque[bytes] = deque()
        size = [0]

        stdout = process.stdout
        assert stdout is not None

        def drain() -> None:
            for chunk in iter(lambda: os.read(stdout.fileno(), 65536), b""):
                kept.append(chunk)
                size[0] += len(chunk)
                while size[0] > caps.build_output_bytes and len(kept) > 1:
                    size[0] -= len(kept.popleft())

        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
        try:
            code = process.wait(timeout=caps.build_seconds)
        except subprocess.TimeoutExpired:
            _kill(process)
            reader.join(5)
            raise BuildFailed(
                f"the build backend ran longer than {caps.build_seconds:g} s (killed)",
                _tail(b"".join(kept)),
            ) from None
        finally:
            if process.poll() is None:  # interrupted: leave nothing running
                _kill(process)
        reader.join(5)
        if code != 0:
            raise BuildFailed(f"the build backend exited with status {code}", _tail(b"".join(kept)))


def _kill(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except OSError:
        process.kill()
    process.wait()


def _tail(output: bytes) -> str:
    lines = output.decode("utf-8", "replace").splitlines()
    shown = [line[:300] for line in lines if line.strip()][-_TAIL_LINES:]
    return "\n".join(shown)


def _environment(venv_python: Path, home: Path) -> dict[str, str]:
    return {
        "PATH": f"{venv_python.parent}{os.pathsep}{os.defpath}",
        "HOME": str(home),
        "TMPDIR": str(home),
        "LC_ALL": "C.UTF-8",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",  # its output in the order written (the last lines matter)
        "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH,
        "PIP_NO_INDEX": "1",  # a backend that shells out to pip gets no index
        # no network for the build: an unusable proxy for whatever honours one
        "http_proxy": "http://127.0.0.1:9",
        "https_proxy": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
        "HTTPS_PROXY": "http://127.0.0.1:9",
    }


class Backend:
    """The hooks of the backend ``backend`` for the source tree ``source``."""

    def __init__(
        self,
        source: Path,
        backend: str,
        backend_path: Sequence[str],
        venv_python: Path,
        home: Path,
    ) -> None:
        self.caller = BuildBackendHookCaller(
            str(source),
            backend,
            backend_path=list(backend_path) or None,
            python_executable=str(venv_python),
            runner=_Runner(_environment(venv_python, home)),
        )

    def requires_for_wheel(self) -> list[str]:
        """``get_requires_for_build_wheel`` (what it needs beyond the static requires)."""
        found = self._call(self.caller.get_requires_for_build_wheel)
        return [str(r) for r in found] if isinstance(found, list | tuple) else []

    def prepare_metadata(self, folder: Path) -> Path:
        """The ``.dist-info`` folder ``prepare_metadata_for_build_wheel`` writes in
        ``folder`` (a backend without the hook builds the wheel and it is read from it)."""
        name = self._call(
            lambda: self.caller.prepare_metadata_for_build_wheel(str(folder), _allow_fallback=True)
        )
        return folder / str(name)

    def build_wheel(self, folder: Path) -> Path:
        """The wheel ``build_wheel`` writes in ``folder``."""
        return folder / str(self._call(lambda: self.caller.build_wheel(str(folder))))

    @staticmethod
    def _call(hook: Callable[[], object]) -> object:
        try:
            with warnings.catch_warnings():
                # the backend's own warnings are its output, not reprolock's
                warnings.simplefilter("ignore")
                return hook()
        except BackendUnavailable as exc:
            raise BuildFailed(
                f"the build backend {exc.backend_name or ''} cannot be imported".replace("  ", " "),
                _tail(str(exc.traceback or "").encode()),
            ) from None
        except HookMissing as exc:
            raise BuildFailed(f"the build backend has no {exc.hook_name} hook", "") from None
