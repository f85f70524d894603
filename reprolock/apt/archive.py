"""Reading apt archives over HTTP: ``InRelease`` verified with ``gpgv``, ``Packages`` by hash.

Every index file is checked against the sha256 the signed Release names; Packages files are
cached by that hash (they never change), Release files of snapshot archives by URL.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import requests

from reprolock import limits
from reprolock.apt.index import Candidate, Release, parse_packages, parse_release
from reprolock.apt.sources import AptSource
from reprolock.bounded import Compression, decompress_capped
from reprolock.errors import SourceError
from reprolock.net import http
from reprolock.net.cache import Cache
from reprolock.net.session import redact

_ARMOR = b"-----BEGIN PGP"


class AptArchives:
    def __init__(
        self,
        session: requests.Session,
        cache: Cache,
        *,
        keyrings: dict[str, bytes],
        allow_unsigned: bool,
        snapshot: bool,
        offline: bool,
        now: datetime,
    ) -> None:
        """``keyrings`` maps a keyring's path (in the image, or in the spec) to its bytes."""
        self.session = session
        self.cache = cache
        self.keyrings = keyrings
        self.allow_unsigned = allow_unsigned
        self.snapshot = snapshot
        self.offline = offline
        self.now = now
        self.stats = {"releases": 0, "indexes": 0, "bytes": 0}

    # -- HTTP ------------------------------------------------------------------------------
    def _get(self, url: str, *, cap: int, limit_name: str) -> bytes | None:
        """The body (at most ``cap`` bytes), or None for a 404; `SourceError` otherwise."""
        if self.offline:
            raise SourceError(
                f"{redact(url)}: not cached, and --offline forbids fetching it.",
                hint="Run `reprolock lock` once online to fill the cache.",
            )
        reply = http.get(
            self.session,
            url,
            what=redact(url),
            cap=cap,
            limit_name=limit_name,
            unreachable_hint="Check [apt] mirror/snapshot and the network.",
        )
        if reply.status == 404:
            return None
        if reply.status != 200:
            raise SourceError(
                f"{redact(url)}: HTTP {reply.status}.",
                hint="Check [apt] mirror/snapshot and the network.",
            )
        self.stats["bytes"] += len(reply.body)
        return reply.body

    def _get_release(self, url: str) -> bytes | None:
        return self._get(url, cap=limits.current().release_bytes, limit_name="release_bytes")

    # -- Release -----------------------------------------------------------------------------
    def _dists(self, source: AptSource) -> str:
        if source.flat:
            return f"{source.uri}/{source.suite.rstrip('/')}".rstrip("/")
        return f"{source.uri}/dists/{source.suite}"

    def release(self, source: AptSource) -> Release:
        base = self._dists(source)
        key = hashlib.sha256(f"{base}/InRelease".encode()).hexdigest()
        cached = (
            self.cache.get_ref("apt-release", key, cap=limits.current().release_bytes)
            if self.snapshot
            else None
        )
        if cached is not None:
            text = cached.decode("utf-8", "replace")
        else:
            self.stats["releases"] += 1
            text = self._signed_release(source, base)
            if self.snapshot:
                self.cache.put_ref("apt-release", key, text.encode())
        release = parse_release(text)
        if not self.snapshot and release.valid_until is not None and release.valid_until < self.now:
            raise SourceError(
                f"{redact(base)}/InRelease expired on {release.valid_until:%Y-%m-%d} "
                "(Valid-Until): the archive is stale or replayed.",
                hint="Use a current mirror, or a dated [apt] snapshot.",
            )
        return release

    def _signed_release(self, source: AptSource, base: str) -> str:
        inrelease = self._get_release(f"{base}/InRelease")
        if inrelease is not None:
            return self._verify(source, inrelease, None, f"{base}/InRelease")
        release = self._get_release(f"{base}/Release")
        if release is None:
            raise SourceError(
                f"{redact(base)}: no InRelease or Release file ({source.describe()}, "
                f"from {source.file}).",
                hint="Check the suite name and the archive URL ([apt] mirror).",
            )
        signature = self._get_release(f"{base}/Release.gpg")
        return self._verify(source, release, signature, f"{base}/Release")

    def _verify(self, source: AptSource, data: bytes, signature: bytes | None, url: str) -> str:
        unsigned = signature is None and not data.lstrip().startswith(b"-----BEGIN PGP SIGNED")
        if self.allow_unsigned or source.trusted:
            if unsigned:
                return data.decode("utf-8", "replace")
            return _strip_clearsign(data.decode("utf-8", "replace"))
        if unsigned:
            raise SourceError(
                f"{redact(url)} is not signed.",
                hint="Sign the archive, or set [apt] allow-unsigned = true if you trust it.",
            )
        keyrings = self._keyrings_for(source)
        if not keyrings:
            raise SourceError(
                f"{redact(url)}: no keyring to verify it ({source.describe()} from "
                f"{source.file} names {source.signed_by or 'no Signed-By'}, and the image has "
                "no /etc/apt/trusted.gpg.d keys).",
                hint="Add the archive key to the base image, or give [apt] keyrings.",
            )
        return _gpgv(keyrings, data, signature, url)

    def _keyrings_for(self, source: AptSource) -> list[bytes]:
        spec = [v for k, v in self.keyrings.items() if k.startswith("spec:")]
        signed = source.signed_by
        if signed:
            if signed.lstrip().startswith("-----BEGIN"):
                return [signed.encode(), *spec]
            found = [
                self.keyrings[p.lstrip("/")]
                for p in signed.replace(",", " ").split()
                if p.lstrip("/") in self.keyrings
            ]
            return found + spec
        trusted = [
            v
            for k, v in sorted(self.keyrings.items())
            if k == "etc/apt/trusted.gpg" or k.startswith("etc/apt/trusted.gpg.d/")
        ]
        return trusted + spec

    # -- Packages ----------------------------------------------------------------------------
    def packages(
        self, source: AptSource, release: Release, component: str, arch: str
    ) -> list[Candidate]:
        base = self._dists(source)
        stem = "Packages" if source.flat else f"{component}/binary-{arch}/Packages"
        for suffix in (".xz", ".gz", ""):
            entry = release.files.get(stem + suffix)
            if entry is not None:
                break
        else:
            return []  # the archive has no such component/architecture
        plain = release.files.get(stem)  # the uncompressed file's size and hash, when listed
        cap = limits.current().apt_index_bytes
        data = self.cache.get_ref("apt-index", entry.sha256, cap=cap)
        if data is None:
            folder = entry.path.rsplit("/", 1)[0] if "/" in entry.path else ""
            url = (
                f"{base}/{folder}/by-hash/SHA256/{entry.sha256}".replace("//by-hash", "/by-hash")
                if release.by_hash
                else f"{base}/{entry.path}"
            )
            self.stats["indexes"] += 1
            raw = self._get(url, cap=entry.size, limit_name="apt_index_bytes")
            if raw is None and release.by_hash:
                raw = self._get(
                    f"{base}/{entry.path}", cap=entry.size, limit_name="apt_index_bytes"
                )
            if raw is None:
                raise SourceError(
                    f"{redact(base)}/{entry.path}: listed in the Release file but missing.",
                    hint="The mirror is mid-sync; retry, or use a snapshot.",
                )
            if hashlib.sha256(raw).hexdigest() != entry.sha256 or len(raw) != entry.size:
                raise SourceError(
                    f"{redact(base)}/{entry.path}: does not match the sha256/size the signed "
                    "Release names.",
                    hint="The mirror is mid-sync or tampered with; retry or use a snapshot.",
                )
            data = _decompress(raw, entry.path, plain.size if plain is not None else cap)
            if plain is not None and (
                len(data) != plain.size or hashlib.sha256(data).hexdigest() != plain.sha256
            ):
                raise SourceError(
                    f"{redact(base)}/{entry.path}: decompressed, it does not match the "
                    f"sha256/size the signed Release names for {stem}.",
                    hint="The mirror is mid-sync or tampered with; retry or use a snapshot.",
                )
            self.cache.put_ref("apt-index", entry.sha256, data)
        return parse_packages(
            data.decode("utf-8", "replace"),
            arch=arch,
            archive=source.uri,
            suite=release.suite or release.codename or source.suite,
            pin=release.priority,
        )


def _decompress(raw: bytes, path: str, cap: int) -> bytes:
    """``raw`` decompressed by its suffix, at most ``cap`` bytes (the size the signed
    Release gives the uncompressed file, else ``limits.apt_index_bytes``)."""
    kind: Compression = (
        "xz" if path.endswith(".xz") else "gzip" if path.endswith(".gz") else "plain"
    )
    return decompress_capped(
        raw,
        kind,
        what=path,
        max_output=cap,
        limit_name="apt_index_bytes",
        floor=limits.current().apt_index_floor,
    )


def _strip_clearsign(text: str) -> str:
    if not text.startswith("-----BEGIN PGP SIGNED MESSAGE"):
        return text
    body = text.split("\n\n", 1)[1] if "\n\n" in text else text
    return body.split("-----BEGIN PGP SIGNATURE-----", 1)[0]


def _gpgv(keyrings: Sequence[bytes], data: bytes, signature: bytes | None, url: str) -> str:
    gpgv = shutil.which("gpgv")
    if gpgv is None:
        raise SourceError(
            "gpgv is not installed: reprolock verifies apt archives with it.",
            hint="Install it (Debian: apt-get install gpgv), or set [apt] allow-unsigned = true.",
        )
    with tempfile.TemporaryDirectory(prefix="reprolock-gpgv-") as tmp:
        folder = Path(tmp)
        args = [gpgv, "--homedir", str(folder)]
        for i, key in enumerate(keyrings):
            path = folder / f"k{i}.gpg"
            path.write_bytes(_dearmor(key) if key.lstrip().startswith(_ARMOR) else key)
            args += ["--keyring", str(path)]
        data_path = folder / "data"
        data_path.write_bytes(data)
        out_path = folder / "out"
        if signature is None:
            args += ["--output", str(out_path), str(data_path)]
        else:
            sig_path = folder / "data.sig"
            sig_path.write_bytes(signature)
            args += [str(sig_path), str(data_path)]
        result = subprocess.run(args, capture_output=True, check=False, timeout=60)
        if result.returncode != 0:
            reason = result.stderr.decode("utf-8", "replace").strip().splitlines()
            raise SourceError(
                f"{redact(url)}: the signature does not verify against the archive keys "
                f"({'; '.join(line.removeprefix('gpgv: ') for line in reason[-2:])}).",
                hint="Refusing the archive. If its key changed, add the new key to the base "
                "image or [apt] keyrings.",
            )
        text = out_path.read_bytes() if signature is None else data
        return text.decode("utf-8", "replace")


def _dearmor(key: bytes) -> bytes:
    gpg = shutil.which("gpg")
    if gpg is None:
        raise SourceError(
            "an armored (.asc) apt key needs gpg to be read.",
            hint="Install gnupg, or give the key as a binary .gpg keyring.",
        )
    with tempfile.TemporaryDirectory(prefix="reprolock-gpg-") as tmp:
        result = subprocess.run(
            [gpg, "--homedir", tmp, "--batch", "--dearmor"],
            input=key,
            capture_output=True,
            check=False,
            timeout=60,
        )
    if result.returncode != 0:
        raise SourceError("an armored apt key cannot be read (gpg --dearmor failed).")
    return result.stdout
