"""Which CPython a target's venv is created with: the base image's, the distribution's
package, or a standalone build — under the spec's ``[python] interpreter`` policy.

``auto`` tries them in that order: the base's own interpreter of the wanted feature release
(it must have ``venv`` and ``ensurepip``), then ``python3.X`` + ``python3.X-venv`` from the
base distribution's archive (a release candidate only when asked), then a
python-build-standalone build when ``[python.standalone]`` names a release.  When none
fits, the target is unsatisfiable (exit 3) with each source's reason and the nearest
fixes.  Pure: what the archive and the standalone release offer comes through
`InterpreterSources`, asked only when the policy gets that far.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from reprolock.errors import Problem, Unsatisfiable
from reprolock.lock.model import BaseFacts, Interpreter, InterpreterSource
from reprolock.model import PythonVersion
from reprolock.resolve.standalone import StandaloneRelease
from reprolock.spec import InterpreterPolicy

STANDALONE_ROOT = "/opt"  # the install_only tarball unpacks here (its folder: /opt/python)


@dataclass(frozen=True, slots=True, kw_only=True)
class AptPython:
    """What the base distribution's archive offers for one feature release."""

    python: str | None  # the version apt would install of python3.X (or has installed)
    venv: str | None  # the same of python3.X-venv
    release: str | None = None  # the CPython release of ``python`` (3.11.2, 3.11.0rc1)
    unavailable: str | None = None  # why the archive could not be asked (no apt sources)


class InterpreterSources(Protocol):
    """Where an interpreter can come from besides the base image, asked lazily."""

    def apt(self, feature: str) -> AptPython:
        """The archive's ``python3.X`` and ``python3.X-venv`` candidates."""
        ...

    def standalone(self) -> StandaloneRelease | None:
        """The configured python-build-standalone release for the target's platform;
        None when no ``[python.standalone]`` is configured."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class InterpreterChoice:
    interpreter: Interpreter
    rejected: tuple[str, ...] = ()  # the sources tried before, each with its reason


def choose_interpreter(
    *,
    target: str,
    base_ref: str,
    wanted: PythonVersion,
    policy: InterpreterPolicy,
    facts: BaseFacts,
    sources: InterpreterSources,
    allow_prerelease: bool = False,
    standalone_folder: str = "python",
) -> InterpreterChoice:
    """The interpreter for ``target`` on the base ``base_ref``; `Unsatisfiable` when the
    policy finds none."""
    order = {
        InterpreterPolicy.AUTO: ("base", "apt", "standalone"),
        InterpreterPolicy.BASE: ("base",),
        InterpreterPolicy.APT: ("apt",),
        InterpreterPolicy.STANDALONE: ("standalone",),
    }[policy]
    rejected: list[str] = []
    for source in order:
        if source == "base":
            found, why = _from_base(facts, wanted, allow_prerelease)
        elif source == "apt":
            found, why = _from_apt(sources.apt(wanted.feature), wanted, facts, allow_prerelease)
        else:
            release = sources.standalone()
            if release is None and policy == InterpreterPolicy.AUTO:
                rejected.append("standalone: no [python.standalone] release is configured")
                continue
            found, why = _from_standalone(release, wanted, facts, standalone_folder)
        if found is not None:
            return InterpreterChoice(interpreter=found, rejected=tuple(rejected))
        rejected.append(f"{source}: {why}")
    raise _unsatisfiable(target, base_ref, wanted, policy, facts, rejected)


def _from_base(
    facts: BaseFacts, wanted: PythonVersion, allow_prerelease: bool
) -> tuple[Interpreter | None, str]:
    python = facts.python(wanted.feature)
    if python is None:
        return None, f"the base has no Python {wanted.feature} ({_found(facts)})"
    where = f"its Python {python.version} ({python.path})"
    if not python.venv:
        return None, f"{where} has no venv module"
    if not python.ensurepip:
        return None, f"{where} has no ensurepip with a pip wheel, so `python -m venv` fails"
    version = PythonVersion.parse_exact(python.version)
    if version.pre and not allow_prerelease:
        return None, f"{where} is a pre-release"
    if len(wanted.parts) == 3 and version.parts != wanted.parts:
        return None, f"{where} is not the spec's {wanted}"
    return Interpreter(source=InterpreterSource.BASE, path=python.path, version=python.version), ""


def _from_apt(
    offer: AptPython, wanted: PythonVersion, facts: BaseFacts, allow_prerelease: bool
) -> tuple[Interpreter | None, str]:
    python, venv = f"python{wanted.feature}", f"python{wanted.feature}-venv"
    if offer.unavailable is not None:
        return None, offer.unavailable
    if offer.python is None:
        return None, f"the base's archive has no {python}{_os(facts)}"
    if offer.venv is None:
        return None, f"the base's archive has {python} {offer.python} but no {venv}"
    if offer.release is None:
        return None, f"{python} {offer.python} is not a CPython {wanted.feature} release"
    version = PythonVersion.parse_exact(offer.release)
    if version.pre and not allow_prerelease:
        return None, (
            f"{python} {offer.python} is a pre-release (CPython {offer.release}); "
            "[python] interpreter-prerelease = true accepts it"
        )
    if len(wanted.parts) == 3 and version.parts != wanted.parts:
        return None, f"{python} {offer.python} is not the spec's {wanted}"
    return Interpreter(
        source=InterpreterSource.APT,
        path=f"/usr/bin/{python}",
        version=offer.release,
        packages=(python, venv),
    ), ""


def _from_standalone(
    release: StandaloneRelease | None, wanted: PythonVersion, facts: BaseFacts, folder: str
) -> tuple[Interpreter | None, str]:
    if release is None:
        return None, "no [python.standalone] release is configured"
    if facts.libc == "musl":
        return None, "the base uses musl; python-build-standalone's install_only builds need glibc"
    if release.triple is None:
        return None, f"release {release.release} has no build for the target's platform"
    build = release.newest(wanted.feature, str(wanted) if len(wanted.parts) == 3 else None)
    if build is None:
        offered = ", ".join(release.versions()) or "nothing"
        return None, (
            f"release {release.release} has no CPython {wanted} for {release.triple} "
            f"(it has {offered}; {release.checksums_url})"
        )
    return Interpreter(
        source=InterpreterSource.STANDALONE,
        path=f"{STANDALONE_ROOT}/{folder}/bin/python{wanted.feature}",
        version=build.version,
        url=build.url,
        sha256=build.sha256,
    ), ""


def _found(facts: BaseFacts) -> str:
    if not facts.pythons:
        return "it has no Python interpreter at all"
    return "it has " + ", ".join(f"Python {p.version} ({p.path})" for p in facts.pythons)


def _os(facts: BaseFacts) -> str:
    if facts.os_id is None:
        return ""
    return f" ({facts.os_id} {facts.os_version or ''})".replace(" )", ")")


def _unsatisfiable(
    target: str,
    base_ref: str,
    wanted: PythonVersion,
    policy: InterpreterPolicy,
    facts: BaseFacts,
    rejected: Sequence[str],
) -> Unsatisfiable:
    fixes = [
        f'another base with Python {wanted.feature}: [base] image = "python" (the official '
        f"python:{wanted.feature}-slim image) or a ref that has it"
    ]
    if policy != InterpreterPolicy.STANDALONE:
        fixes.append(
            'interpreter = "standalone" with [python.standalone] release = "…" '
            "(a relocatable python-build-standalone build)"
        )
    if policy == InterpreterPolicy.BASE:
        fixes.append('interpreter = "auto" or "apt" (the distribution\'s package)')
    others = sorted(
        {
            p.version.rsplit(".", 1)[0] if p.version.count(".") == 2 else p.version
            for p in facts.pythons
            if p.usable
        }
        - {wanted.feature}
    )
    if others:
        fixes.append(f'another Python: python = "{others[-1]}" (what the base has)')
    return Unsatisfiable(
        f"{target}: the base {base_ref} has no usable Python {wanted} under "
        f'[python] interpreter = "{policy.value}" ({_found(facts)}).',
        problems=[Problem(message=r) for r in rejected],
        hint="Nearest fixes: " + "; ".join(fixes) + ".",
    )
