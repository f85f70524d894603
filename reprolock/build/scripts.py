"""Which maintainer scripts an assembled layer reproduces: the rule of ``reprolock build``.

A layer is unpacked, never installed: no script runs.  A package is built only when what
dpkg would run while installing it does nothing the layer lacks:

- ``preinst``, ``postinst`` and ``config`` (and, when the package replaces one of the
  base's, the old version's ``prerm`` and ``postrm``) must be *trivial*: comments,
  ``set -e``/``-u``, ``exit 0``, ``:``, the ``case "$1" in … esac`` skeleton of dpkg's
  actions (``configure)``, ``abort-upgrade|abort-remove)`` …, ``*)`` with an ``echo … >&2``
  and ``exit 1``), ``if [ "$1" = "configure" ]; then`` / ``fi``, and ``ldconfig`` — what
  ``dh_make``'s templates and old debhelper leave in scripts that do nothing;
- ``ldconfig`` (called, or activated as a trigger) is reproduced when every shared
  library the package ships lies in a folder the dynamic loader searches without its
  cache (``/lib``, ``/usr/lib`` and their multiarch folders) and it adds nothing to
  ``/etc/ld.so.conf.d``; the cache itself is not rewritten;
- a trigger the package activates (by name or by a path) must interest no package of
  the base, or only ``ldconfig`` (above) and man-db's ``/usr/share/man`` index, which an
  image does not need; a package declaring trigger interests of its own is refused.

Anything else (``update-alternatives``, ``adduser``, ``py3compile``, debconf, a service)
is refused with the package, the script and the first line that does something: the
Dockerfile path (`reprolock dockerfile` + ``docker build``) runs them.  ``prerm`` and
``postrm`` of a new package only run on removal: they are kept in dpkg's database
unjudged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ACTIONS = (
    "configure|abort-upgrade|abort-remove|abort-deconfigure|abort-install|install|upgrade|"
    "remove|purge|failed-upgrade|disappear|deconfigure|triggered|reconfigure"
)
_NEUTRAL = [
    re.compile(p)
    for p in (
        r"set(\s+-[eu]+)+",
        r"exit\s+0",
        r":",
        r"true",
        r'case\s+"?\$1"?\s+in',
        r"esac",
        r";;",
        rf"\(?\s*({_ACTIONS})(\s*\|\s*({_ACTIONS}))*\s*\)\s*(;;)?",
        r"fi",
        r'if\s+\[\s+"?\$1"?\s+=\s+"?('
        + _ACTIONS
        + r')"?\s+\](\s*\|\|\s*\[\s+"?\$1"?\s+=\s+"?('
        + _ACTIONS
        + r')"?\s+\])*\s*;\s*then',
    )
]
_OTHER_LABEL = re.compile(r"\*\s*\)")
_UNKNOWN_ARGUMENT = [
    re.compile(r'echo\s+(".*"|\'.*\'|[^;&|<>`$]*)\s*>&2'),
    re.compile(r"exit\s+1"),
    re.compile(r";;"),
]
_LDCONFIG = re.compile(r"(/sbin/)?ldconfig(\s+-X)?")


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    """What a script does, as far as the rule sees: nothing, ``ldconfig``, or the first
    line that does something else (``line``, with its number)."""

    ldconfig: bool = False
    line: str | None = None
    number: int = 0

    @property
    def trivial(self) -> bool:
        return self.line is None


def judge(text: str) -> Verdict:
    """The verdict on one maintainer script's text."""
    ldconfig = False
    in_other = False  # inside the `*)` branch of the case skeleton
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if in_other:
            if any(p.fullmatch(line) for p in _UNKNOWN_ARGUMENT):
                in_other = not line.endswith(";;")
                continue
            in_other = False
        if _OTHER_LABEL.fullmatch(line):
            in_other = True
            continue
        if any(p.fullmatch(line) for p in _NEUTRAL):
            continue
        if _LDCONFIG.fullmatch(line):
            ldconfig = True
            continue
        return Verdict(ldconfig=ldconfig, line=line[:200], number=number)
    return Verdict(ldconfig=ldconfig)


@dataclass(frozen=True, slots=True, kw_only=True)
class Triggers:
    """A package's ``triggers`` control file: what it activates, what interests it."""

    activates: tuple[str, ...] = ()  # trigger names or absolute paths
    interests: tuple[str, ...] = ()


def parse_triggers(text: str) -> Triggers:
    activates: list[str] = []
    interests: list[str] = []
    for raw in text.splitlines():
        words = raw.split("#", 1)[0].split()
        if len(words) != 2:
            continue
        directive, name = words
        if directive.startswith("activate"):
            activates.append(name)
        elif directive.startswith("interest"):
            interests.append(name)
    return Triggers(activates=tuple(activates), interests=tuple(interests))


def parse_file_interests(text: str) -> dict[str, tuple[str, ...]]:
    """``var/lib/dpkg/triggers/File``: path → the packages interested in it."""
    out: dict[str, list[str]] = {}
    for raw in text.splitlines():
        words = raw.split()
        if len(words) != 2 or not words[0].startswith("/"):
            continue
        out.setdefault(words[0].rstrip("/") or "/", []).append(words[1].split("/", 1)[0])
    return {path: tuple(sorted(set(names))) for path, names in out.items()}


# Triggers an image can do without (their handlers only refresh caches nothing needs).
HARMLESS_TRIGGERS = frozenset({"/usr/share/man"})
