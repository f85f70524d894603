"""What each target's base image gets on top: its facts read, the interpreter chosen under
``[python] interpreter``, and the apt closure (``[apt] packages`` plus an apt interpreter's
``python3.X``/``python3.X-venv``).

The base image is read once per manifest digest (`reprolock.api.base_image`); its archives
are read only when an apt interpreter or ``[apt]`` needs them, and a standalone release's
``SHA256SUMS`` only when the policy gets that far (or never, while the lock's pin of that
release holds).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from reprolock import limits
from reprolock.api.network import NetOptions
from reprolock.api.stack_layer import with_chosen_base
from reprolock.apt.sources import parse_sources
from reprolock.compat import Matrices
from reprolock.errors import InputError, ReprolockError, SourceError
from reprolock.lock import BaseFacts, LockedBase, LockedTarget
from reprolock.lock.model import InterpreterSource
from reprolock.model import Platform
from reprolock.net import http
from reprolock.net.session import new_session, redact
from reprolock.resolve.interpreter import AptPython, InterpreterChoice, choose_interpreter
from reprolock.resolve.standalone import (
    StandaloneBuild,
    StandaloneRelease,
    parse_checksums,
    release_folder,
)
from reprolock.spec import Spec

if TYPE_CHECKING:  # imported where used: a lock without a base reads no image, no archive
    from reprolock.api.apt_layer import AptArchive, AptResult
    from reprolock.api.base_image import BaseContents


@dataclass(frozen=True, slots=True, kw_only=True)
class Provided:
    """What one platform's base image gets: its facts, the interpreter, the apt closure."""

    facts: BaseFacts | None = None
    interpreter: InterpreterChoice | None = None
    apt: AptResult | None = None


class _Sources:
    """`reprolock.resolve.interpreter.InterpreterSources` for one target, asked lazily."""

    def __init__(
        self,
        spec: Spec,
        platform: Platform,
        target: str,
        contents: BaseContents,
        archive: Callable[[], AptArchive],
        net: NetOptions,
        matrices: Matrices,
        previous: LockedTarget | None,
    ) -> None:
        self.spec = spec
        self.platform = platform
        self.target = target
        self.contents = contents
        self.archive = archive
        self.net = net
        self.matrices = matrices
        self.previous = previous

    def apt(self, feature: str) -> AptPython:
        from reprolock.inventory.base_facts import debian_python_version  # noqa: PLC0415

        if not parse_sources(self.contents.files.sources()):
            return AptPython(
                python=None,
                venv=None,
                unavailable="the base image has no apt sources (/etc/apt/sources.list or "
                "sources.list.d)",
            )
        universe = self.archive().universe
        python, venv = f"python{feature}", f"python{feature}-venv"

        def version(name: str) -> str | None:
            candidate = universe.candidate(name)
            if candidate is not None:
                return candidate.version
            installed = universe.installed.get(name)
            return installed.version if installed is not None else None

        found = version(python)
        return AptPython(
            python=found,
            venv=version(venv),
            release=None if found is None else debian_python_version(found, feature),
        )

    def standalone(self) -> StandaloneRelease | None:
        python = self.spec.python
        if python is None or python.standalone is None:
            return None
        catalog = self.matrices.python.standalone
        folder = release_folder(catalog, python.standalone.release, python.standalone.url)
        kept = self.previous.interpreter if self.previous is not None else None
        if (
            kept is not None
            and kept.source == InterpreterSource.STANDALONE
            and kept.url is not None
            and kept.sha256 is not None
            and kept.url.startswith(folder + "/")
        ):
            # a release's assets do not change: the pin of the same release holds
            return StandaloneRelease(
                release=python.standalone.release,
                checksums_url=f"{folder}/{catalog.checksums}",
                triple=catalog.triples.get(self.platform),
                builds=(
                    StandaloneBuild(
                        version=kept.version,
                        asset=kept.url.rsplit("/", 1)[-1],
                        url=kept.url,
                        sha256=kept.sha256,
                    ),
                ),
            )
        url = f"{folder}/{catalog.checksums}"
        if self.net.config.offline:
            raise SourceError(
                f"{self.target}: the standalone Python is not pinned in the lock, and --offline "
                f"forbids reading {redact(url)}.",
                hint="Run `reprolock lock` once online.",
            )
        session = new_session(self.net.config)
        try:
            reply = http.get(
                session,
                url,
                what=f"python-build-standalone release {python.standalone.release} checksums",
                cap=limits.current().release_bytes,
                limit_name="release_bytes",
            )
        finally:
            session.close()
        if reply.status != 200:
            raise SourceError(
                f"{redact(url)}: HTTP {reply.status}; the python-build-standalone release "
                f"{python.standalone.release} cannot be listed.",
                hint="Check [python.standalone] release and url (the folder holding "
                "<release>/SHA256SUMS).",
            )
        return parse_checksums(
            reply.body.decode("utf-8", "replace"),
            catalog=catalog,
            release=python.standalone.release,
            platform=self.platform,
            url=python.standalone.url,
        )


def provide(
    spec: Spec,
    spec_dir: Path,
    bases: Mapping[Platform, LockedBase],
    net: NetOptions,
    targets: Mapping[Platform, str],
    matrices: Matrices,
    previous: Mapping[Platform, LockedTarget] | None = None,
) -> dict[Platform, Provided]:
    """Per platform: the base's facts, the interpreter and the apt closure."""
    out: dict[Platform, Provided] = {}
    apt_packages = spec.apt is not None and bool(spec.apt.packages)
    keyrings: Mapping[str, bytes] | None = None
    for platform, target in targets.items():
        base = bases.get(platform)
        if base is None:
            if apt_packages:
                raise InputError(
                    f"{target}: [apt] packages need a base image to know the distribution, "
                    "its archives and what is installed already.",
                    hint='Add [base] ref = "debian:bookworm-slim" (or image = "python").',
                )
            out[platform] = Provided()
            continue
        if spec.python is None and not apt_packages:
            out[platform] = Provided()
            continue
        from reprolock.api.apt_layer import solve_wants, spec_keyrings, wanted_packages  # noqa: PLC0415
        from reprolock.api.base_image import read_base  # noqa: PLC0415

        if keyrings is None:
            keyrings = spec_keyrings(spec, spec_dir)
        contents = read_base(base, platform, spec, net)
        archive = _Archive(spec, target, platform, contents, net, keyrings)
        choice = None
        if spec.python is not None:
            sources = _Sources(
                spec,
                platform,
                target,
                contents,
                archive,
                net,
                matrices,
                (previous or {}).get(platform),
            )
            choice = choose_interpreter(
                target=target,
                base_ref=base.ref,
                wanted=spec.environment.python,
                policy=spec.python.interpreter,
                facts=contents.facts,
                sources=sources,
                allow_prerelease=spec.python.interpreter_prerelease,
                standalone_folder=matrices.python.standalone.folder,
            )
        wants = wanted_packages(spec, choice.interpreter.packages if choice else ())
        apt = solve_wants(archive(), wants, target=target) if wants else None
        out[platform] = Provided(facts=contents.facts, interpreter=choice, apt=apt)
    return out


class _Archive:
    """The base image's archives for one target, read on first use."""

    def __init__(
        self,
        spec: Spec,
        target: str,
        platform: Platform,
        contents: BaseContents,
        net: NetOptions,
        keyrings: Mapping[str, bytes],
    ) -> None:
        self.args = (spec, target, platform, contents.files, net)
        self.keyrings = keyrings
        self.loaded: AptArchive | None = None

    def __call__(self) -> AptArchive:
        if self.loaded is None:
            from reprolock.api.apt_layer import load_archive  # noqa: PLC0415

            self.loaded = load_archive(*self.args, keyrings=self.keyrings)
        return self.loaded


class _Recorded:
    """`InterpreterSources` from what a lock records (offline): the archive and the
    standalone release are known only as far as the locked interpreter came from them."""

    def __init__(self, target: LockedTarget, matrices: Matrices) -> None:
        self.target = target
        self.matrices = matrices

    def apt(self, feature: str) -> AptPython:
        kept = self.target.interpreter
        if kept is not None and kept.source == InterpreterSource.APT:
            return AptPython(python=kept.version, venv=kept.version, release=kept.version)
        return AptPython(
            python=None,
            venv=None,
            unavailable="the archive is read by `reprolock lock`, not offline",
        )

    def standalone(self) -> StandaloneRelease | None:
        kept = self.target.interpreter
        if kept is None or kept.source != InterpreterSource.STANDALONE:
            return None
        catalog = self.matrices.python.standalone
        return StandaloneRelease(
            release="(locked)",
            checksums_url=kept.url or "",
            triple=catalog.triples.get(self.target.platform),
            builds=(
                StandaloneBuild(
                    version=kept.version,
                    asset=(kept.url or "").rsplit("/", 1)[-1],
                    url=kept.url or "",
                    sha256=kept.sha256 or "",
                ),
            ),
        )


def check_locked(spec: Spec, lock_targets: Sequence[LockedTarget], matrices: Matrices) -> None:
    """Offline: `Unsatisfiable` when a locked target's base (its recorded facts) has no
    interpreter the spec's policy accepts — e.g. ``interpreter = "base"`` on a base whose
    only Python is another release.  Targets without recorded facts are not judged."""
    if spec.python is None:
        return
    ref = spec.base.ref
    if ref is None and spec.base.image is not None:
        try:
            ref = with_chosen_base(spec, "reprolock.toml", matrices)[0].base.ref
        except ReprolockError:
            return  # no base fits the spec: `lock` says why, with the fixes
    for target in lock_targets:
        base = target.base
        if base is None or base.facts is None:
            continue
        if ref is not None and base.ref != ref.familiar:
            continue  # the spec names another base now: the lock is stale, not judged here
        choose_interpreter(
            target=target.id,
            base_ref=base.ref,
            wanted=spec.environment.python,
            policy=spec.python.interpreter,
            facts=base.facts,
            sources=_Recorded(target, matrices),
            allow_prerelease=spec.python.interpreter_prerelease,
            standalone_folder=matrices.python.standalone.folder,
        )
