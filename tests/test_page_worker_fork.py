"""Page workers forked at boot: the same answers as workers started afresh, each exits when
its own input ends, and no fork where one would copy a thread's state or an open file.

A fork happens only in a process with one thread and nothing open but its standard
streams, which a test process under pytest is not (its output capture holds files open):
each case runs in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from reprolock.net import startup

ROOT = Path(__file__).resolve().parent.parent

_PRELUDE = """
import json, os, sys, threading, time
from reprolock.resolve.python import page_parse, pages
from reprolock.resolve.python.target import wheel_filter
from tests.test_page_worker import INDEX, TARGET, URL, _here, _page
"""


def _fresh(code: str, *, pass_fds: tuple[int, ...] = ()) -> dict[str, object]:
    """Run ``code`` (after the prelude) in a new interpreter, started with ``pass_fds``
    open besides its standard streams; the JSON it prints last."""
    done = subprocess.run(
        [sys.executable, "-c", _PRELUDE + textwrap.dedent(code)],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        pass_fds=pass_fds,
    )
    assert done.returncode == 0, done.stderr
    found: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def test_forked_workers_answer_as_workers_started_afresh() -> None:
    found = _fresh(
        """
        page_parse.boot(2)
        booted = list(page_parse._BOOTED)
        kinds = [type(p).__name__ for p in booted]
        pool = page_parse.PageWorkers(wheel_filter([TARGET]), size=2)
        pool.prepare()
        assert pool.wait_ready(30)
        body = _page(400)
        answers = []
        for worker in pool._workers:  # each of the two answers
            answer = worker.ask(
                {"op": "parse", "content_type": pages.JSON_TYPE, "page_url": URL,
                 "index": INDEX, "name": "pkg"},
                body,
                timeout=60,
            )
            files, others, _summary = page_parse.load_rows(answer.payload, INDEX)
            here_files, here_others = _here(body)
            answers.append(files == here_files and list(others) == here_others)
        pool.close()
        codes = [p.returncode for p in booted]
        print(json.dumps({"kinds": kinds, "same": answers, "codes": codes}))
        """
    )
    assert found == {"kinds": ["_Forked", "_Forked"], "same": [True, True], "codes": [0, 0]}


def test_a_forked_worker_exits_when_its_own_input_ends_while_the_other_runs() -> None:
    # The second worker is forked while the first one's pipes are open here: unless it
    # closes them, the first never sees its input end.
    found = _fresh(
        """
        page_parse.boot(2)
        first, second = page_parse._BOOTED
        first.stdin.close()
        code = first.wait(timeout=20)
        running = second.poll() is None
        second.stdin.close()
        last = second.wait(timeout=20)
        print(json.dumps({"first": code, "second_ran": running, "second": last}))
        """
    )
    assert found == {"first": 0, "second_ran": True, "second": 0}


def test_a_forked_worker_is_waited_for_within_a_time_and_can_be_killed() -> None:
    found = _fresh(
        """
        import subprocess
        page_parse.boot(1)
        (worker,) = page_parse._BOOTED
        try:
            worker.wait(timeout=0.2)
            timed_out = False
        except subprocess.TimeoutExpired:
            timed_out = True
        worker.kill()
        print(json.dumps({"timed_out": timed_out, "code": worker.wait(timeout=20)}))
        """
    )
    assert found == {"timed_out": True, "code": -9}


@pytest.mark.parametrize(
    "before",
    [
        "threading.Thread(target=time.sleep, args=(3,), daemon=True).start()",
        "held = open(os.devnull)",
    ],
    ids=["a thread runs", "a file is open"],
)
def test_workers_are_started_afresh_where_a_fork_would_copy_too_much(before: str) -> None:
    found = _fresh(
        f"""
        {before}
        page_parse.boot(1)
        kinds = [type(p).__name__ for p in page_parse._BOOTED]
        page_parse._release_booted()
        print(json.dumps({{"kinds": kinds}}))
        """
    )
    assert found == {"kinds": ["Popen"]}


def test_descriptors_a_process_was_started_with_do_not_keep_it_from_forking(
    tmp_path: Path,
) -> None:
    # A shell or a CI runner may pass descriptors on (this machine's job runner does): the
    # command line notes them at start-up, and the workers close their copies.
    code = """
        {note}
        page_parse.boot(1)
        (worker,) = page_parse._BOOTED
        kind = type(worker).__name__
        page_parse._release_booted()
        print(json.dumps({{"kind": kind, "code": worker.wait(timeout=20)}}))
        """
    with (tmp_path / "passed").open("w") as passed:
        fd = passed.fileno()
        noted = _fresh(
            code.format(
                note="from reprolock.net import startup; startup.note_inherited_descriptors()"
            ),
            pass_fds=(fd,),
        )
        unnoted = _fresh(code.format(note=""), pass_fds=(fd,))
    assert noted == {"kind": "_Forked", "code": 0}
    assert unnoted == {"kind": "Popen", "code": 0}


def test_the_command_line_notes_the_descriptors_it_was_started_with(tmp_path: Path) -> None:
    code = """
        import atexit
        from reprolock.cli import main
        from reprolock.net import startup
        noted = lambda: sorted(startup.inherited_descriptors())  # noqa: E731
        atexit.register(lambda: print(json.dumps({"noted": noted()}), flush=True))
        sys.argv = ["reprolock", "--version"]
        main.run()
        """
    with (tmp_path / "passed").open("w") as passed:
        fd = passed.fileno()
        found = _fresh(code, pass_fds=(fd,))
    assert found == {"noted": [fd]}


def test_the_descriptors_listed_are_the_open_ones(tmp_path: Path) -> None:
    listed = startup.open_descriptors()
    assert listed is not None and {0, 1, 2} <= listed
    with (tmp_path / "f").open("w") as handle:
        fd = handle.fileno()
        now = startup.open_descriptors()
        assert now is not None and fd in now
    after = startup.open_descriptors()
    assert after is not None and fd not in after
