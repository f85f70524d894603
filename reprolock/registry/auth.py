"""Registry logins from a docker ``config.json``: ``auths``, ``credHelpers``, ``credsStore``."""

from __future__ import annotations

import base64
import binascii
import json
import re
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from reprolock.errors import InputError, SourceError

DOCKER_HUB_KEYS = (
    "https://index.docker.io/v1/",
    "index.docker.io",
    "docker.io",
    "registry-1.docker.io",
    "https://registry-1.docker.io",
)


@dataclass(frozen=True, slots=True)
class Login:
    username: str
    secret: str

    def __repr__(self) -> str:  # never print the secret
        return f"Login(username={self.username!r}, secret='***')"


Helper = Callable[[str, str], Login | None]
"""``helper(name, server)`` asks ``docker-credential-<name>`` for the server's login."""


_HELPER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def run_credential_helper(name: str, server: str) -> Login | None:
    """Run ``docker-credential-<name> get``, as docker does; None when it has no login."""
    if not _HELPER.match(name):
        raise InputError(
            f"the docker config names the credential helper {name[:80]!r}, which is not a "
            "helper name (letters, digits, '.', '_', '-').",
            hint="Fix credHelpers/credsStore in config.json.",
        )
    try:
        proc = subprocess.run(
            [f"docker-credential-{name}", "get"],
            input=server.encode(),
            capture_output=True,
            timeout=30,
            check=False,
        )
    except FileNotFoundError:
        raise SourceError(
            f'the docker config names the credential helper "{name}", but '
            f"docker-credential-{name} is not on PATH.",
            hint="Install the helper, or remove it from credHelpers/credsStore in config.json.",
        ) from None
    except subprocess.TimeoutExpired:
        raise SourceError(f"docker-credential-{name} did not answer within 30 s.") from None
    if proc.returncode != 0:
        return None  # "credentials not found in native keychain"
    try:
        answer = json.loads(proc.stdout[: 1 << 20])
        return Login(str(answer["Username"]), str(answer["Secret"]))
    except (ValueError, KeyError, TypeError, RecursionError):
        raise SourceError(f"docker-credential-{name} gave an answer that is not a login.") from None


class CredentialStore:
    """Logins per registry host, looked up the way the docker CLI does."""

    def __init__(
        self,
        config: Mapping[str, Any] | None = None,
        *,
        helper: Helper = run_credential_helper,
        source: str = "config.json",
    ) -> None:
        self.config = dict(config or {})
        self.helper = helper
        self.source = source

    @classmethod
    def from_text(
        cls,
        text: str,
        *,
        source: str,
        helper: Helper = run_credential_helper,
    ) -> CredentialStore:
        try:
            config = json.loads(text) if text.strip() else {}
        except RecursionError:
            raise InputError(
                f"{source}: nests too deeply to be a docker config.",
                hint="Fix or remove the docker config file.",
            ) from None
        except ValueError as exc:
            raise InputError(
                f"{source}: is not valid JSON ({exc}).",
                hint="Fix or remove the docker config file.",
            ) from None
        if not isinstance(config, dict):
            raise InputError(f"{source}: is not a JSON object.")
        return cls(config, helper=helper, source=source)

    def _keys(self, registry: str) -> tuple[str, ...]:
        if registry == "docker.io":
            return DOCKER_HUB_KEYS
        return (registry, f"https://{registry}", f"http://{registry}", f"https://{registry}/v1/")

    def login_for(self, registry: str) -> Login | None:
        helpers = self.config.get("credHelpers") or {}
        auths = self.config.get("auths") or {}
        for key in self._keys(registry):
            if isinstance(helpers, dict) and key in helpers:
                return self.helper(str(helpers[key]), key)
        for key in self._keys(registry):
            entry = auths.get(key) if isinstance(auths, dict) else None
            if isinstance(entry, dict):
                login = self._from_entry(entry, key)
                if login is not None:
                    return login
        store = self.config.get("credsStore")
        if isinstance(store, str) and store:
            return self.helper(store, self._keys(registry)[0])
        return None

    def _from_entry(self, entry: Mapping[str, Any], key: str) -> Login | None:
        if entry.get("auth"):
            try:
                user, _, secret = (
                    base64.b64decode(str(entry["auth"]), validate=True).decode().partition(":")
                )
            except (binascii.Error, UnicodeDecodeError):
                raise InputError(
                    f'{self.source}: auths."{key}".auth is not base64 of "user:password".',
                    hint="Run `docker login` again.",
                ) from None
            return Login(user, secret)
        if entry.get("username") and entry.get("password"):
            return Login(str(entry["username"]), str(entry["password"]))
        return None
