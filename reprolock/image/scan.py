"""One streaming pass over a layer: decompress, walk the tar, keep what catalogers need.

A layer is read once, start to end; nothing is extracted to disk.  Files the
catalogers parse are kept in memory within `ReadBudget` (a file over the budget is
recorded with the cap that kept it out, and reading it from the view is an error:
an inventory never silently misses a file), files under Python package folders are
hashed (for RECORD checks), and every path is recorded with its type, size and link
target so the layers can be merged afterwards.  Shared objects are fed to a
`FatbinScanner` as they stream past, for the CUDA kernels they carry (its state is
bounded: nothing of the file is kept).  Hostile input is refused with
`SourceError`: unsafe or too deep paths, absurd sizes, decompression bombs (the
output is bounded step by step by `reprolock.bounded.Decompressor`), oversized or
sparse tar headers, truncated or corrupt archives.
"""

from __future__ import annotations

import _imp
import base64
import collections
import functools
import hashlib
import os
import posixpath
import queue
import tarfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any, Literal, cast

from reprolock import limits
from reprolock.bounded import STEP, Decompressor, Replay, sniff
from reprolock.compat.fatbin import FatbinScanner, Kernels
from reprolock.errors import SourceError
from reprolock.image.tarheaders import members, open_tar

Kind = Literal["file", "dir", "symlink", "hardlink", "other"]

_HINT = "The image is damaged; rebuild or re-pull it."
_HOSTILE = "This layer is hostile or broken; do not use the image."

WantContent = Callable[[str], bool]
"""Which paths' bytes to keep (catalogers' inputs)."""
WantHash = Callable[[str], bool]
"""Which paths to hash with sha256 (for RECORD integrity), or with md5 (for dpkg's)."""
WantSource = Callable[[str], tuple[int, ...] | None]
"""Python sources whose bytecode is checked: None for other paths; else the SipHash keys
to hash the source with (what hash-based pycs record; maybe none).  Their mtime is
recorded either way (what timestamp pycs record)."""
WantKernels = Callable[[str], bool]
"""Which paths' bytes to scan for CUDA fatbins as they stream past (shared objects)."""
HEAD_BYTES = 16
"""What `Wants.head` keeps of a file: a pyc's header."""


def _nothing(_path: str) -> bool:
    return False


def _no_source(_path: str) -> tuple[int, ...] | None:
    return None


@dataclass(frozen=True, slots=True)
class Wants:
    """What a scan keeps of each path, as the catalogers ask (all pure predicates)."""

    content: WantContent
    hash: WantHash
    md5: WantHash = _nothing
    head: WantHash = _nothing  # the first HEAD_BYTES bytes kept
    source: WantSource = _no_source
    kernels: WantKernels = _nothing  # the CUDA kernels in its bytes (`FatbinScanner`)


@dataclass(slots=True)
class Entry:
    """One path as a layer writes it."""

    path: str  # normalized, relative to the image root, no leading "/"
    kind: Kind
    size: int = 0
    mode: int = 0
    link: str | None = None  # symlink target as written, or hard link source path
    content: bytes | None = None
    sha256: str | None = None  # urlsafe-base64 digest, as RECORD writes it
    omitted: str | None = None  # the cap that kept a wanted file's bytes out of memory
    md5: str | None = None  # hex digest, as dpkg's md5sums write it
    head: bytes | None = None  # the first HEAD_BYTES bytes (a pyc's header)
    mtime: int = 0  # a Python source's modification time (the scan sets no other's)
    source_hashes: tuple[bytes, ...] = ()  # a Python source's SipHash under each wanted key
    kernels: Kernels | None = None  # the CUDA kernels a shared object carries (None: none)


@dataclass(slots=True)
class LayerScan:
    """What one layer adds, changes and deletes."""

    index: int
    entries: list[Entry] = field(default_factory=list)
    whiteouts: list[str] = field(default_factory=list)  # paths deleted from lower layers
    opaque: list[str] = field(default_factory=list)  # dirs whose lower contents are hidden
    compressed_size: int = 0
    uncompressed_size: int = 0
    diff_id: str = ""  # sha256 of the uncompressed tar
    blob_digest: str = ""  # sha256 of the stored (possibly compressed) bytes


class ReadBudget:
    """What one image read may keep in memory, shared by its layer scans.

    Catalogued files: one is kept if it is at most ``limits.catalog_file_bytes`` and the
    image's kept files stay within ``limits.catalog_total_bytes`` (counted as read: a file
    a later layer replaces still counted).  Entries: every path a layer writes or deletes
    counts against ``limits.image_entries`` (each costs a few hundred bytes however small
    the file).  Thread-safe: layers are scanned in parallel.
    """

    def __init__(self) -> None:
        caps = limits.current()
        self.per_file = caps.catalog_file_bytes
        self.left = caps.catalog_total_bytes
        self.entries_left = caps.image_entries
        self._lock = threading.Lock()

    def take(self, size: int) -> str | None:
        """None when ``size`` more bytes may be kept; else the name of the cap refusing."""
        if size > self.per_file:
            return "catalog_file_bytes"
        with self._lock:
            if size > self.left:
                return "catalog_total_bytes"
            self.left -= size
        return None

    def count(self, entries: int, what: str) -> None:
        """Count ``entries`` more kept paths; `SourceError` (the ``image_entries`` cap)
        once the image's layers together hold more."""
        with self._lock:
            self.entries_left -= entries
            over = self.entries_left < 0
        if over:
            raise limits.exceeded(
                f"{what}: the number of entries (files, folders, links, whiteouts) in the "
                "image's layers",
                "image_entries",
            )


class _Lane:
    """Hashing jobs, done in the order given by whichever of a layer's two threads would
    otherwise wait for the other (`_ReadAhead`): the reader while the walk is a full
    `AHEAD` behind it, the walk while it waits for the reader.  So both cores stay busy
    whichever side is slower: a gzip layer's reader has the decompression and its walk
    most of the hashing; a plain layer's reader has little to do but hash.

    Each job holds views into the layer's pieces up to its tar offset (``at``); the walk
    does the jobs it has passed by more than `LAG` bytes itself (`keep_up`), so what the
    lane keeps alive is bounded however a hostile layer lays out its files.  Where more
    cores are free, helper threads (`_helpers`) do jobs as they come."""

    def __init__(self, wake: threading.Event | None = None) -> None:
        self._jobs: collections.deque[tuple[Callable[[], None], int]] = collections.deque()
        self._lock = threading.Lock()  # held while a job is taken and done
        self._wake = wake  # set when a job is added (helper threads wait on it)

    def add(self, job: Callable[[], None], at: int) -> None:
        """Queue ``job``, whose data ends at tar offset ``at`` (added by one thread)."""
        self._jobs.append((job, at))
        if self._wake is not None:
            self._wake.set()

    def step(self, *, wait: bool = False) -> bool:
        """Do the oldest job and those after it whose data ends within `STEP` bytes of its
        own; False when there were none, or (without ``wait``) another thread is doing
        some."""
        if not self._lock.acquire(blocking=wait):
            return False
        try:
            try:
                job, at = self._jobs.popleft()
            except IndexError:
                return False
            job()
            end = at + STEP
            while self._jobs and self._jobs[0][1] <= end:  # only this thread pops
                self._jobs.popleft()[0]()
            return True
        finally:
            self._lock.release()

    def keep_up(self, position: int) -> None:
        """Do the jobs whose data ends more than `LAG` bytes before ``position`` (waiting
        for another thread's)."""
        while True:
            try:
                at = self._jobs[0][1]
            except IndexError:
                return
            if at >= position - LAG or not self.step(wait=True):
                return

    def finish(self) -> None:
        """Do every job left (waiting for another thread's)."""
        while self.step(wait=True):
            pass

    def drop(self) -> None:
        """Forget the jobs left (the scan failed: no digest is wanted)."""
        with self._lock:
            self._jobs.clear()


LAG = 32 * STEP
"""Bytes of the tar a lane's jobs may lag behind the walk (pieces kept alive for them)."""


def _helpers() -> int:
    """Threads a layer's hashing gets besides its reader and its walk: one per lane
    where the process may use that many more cores, none on two."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cores = os.cpu_count() or 1
    return max(0, min(2, cores - 2))


class _Hashes(_Lane):
    """The RECORD-style sha256 (and dpkg's md5) of a layer's wanted files, in the order
    given, as jobs of a `_Lane`."""

    def update(self, at: int, hasher: Hasher, *data: Buffer) -> None:
        """Hash ``data`` (ending at tar offset ``at``) with ``hasher``, after everything
        given before."""
        if data:
            self.add(functools.partial(_update, hasher, data), at)

    def finish_entry(
        self, at: int, entry: Entry, hasher: Hasher, *data: Buffer, md5: bool = False
    ) -> None:
        """Hash ``data`` (ending at tar offset ``at``) with ``hasher``, then set
        ``entry.sha256`` (``entry.md5`` with ``md5``) from it once what was given before
        is hashed: one job for a small file."""
        done = _md5_hash if md5 else _record_hash
        self.add(functools.partial(_finish, done, entry, hasher, data), at)


Hasher = Any  # hashlib's hash objects (no public type)
Buffer = bytes | memoryview  # what is hashed: the layer's pieces, or views into them


def _update(hasher: Hasher, data: tuple[Buffer, ...]) -> None:
    for piece in data:
        hasher.update(piece)


def _finish(
    done: Callable[[Entry, Hasher], None], entry: Entry, hasher: Hasher, data: tuple[Buffer, ...]
) -> None:
    _update(hasher, data)
    done(entry, hasher)


def _record_hash(entry: Entry, hasher: Hasher) -> None:
    entry.sha256 = base64.urlsafe_b64encode(hasher.digest()).rstrip(b"=").decode()


def _md5_hash(entry: Entry, hasher: Hasher) -> None:
    entry.md5 = hasher.hexdigest()


def source_hashes(data: bytes, keys: tuple[int, ...]) -> tuple[bytes, ...]:
    """``data``'s SipHash-1-3 under each key, as CPython writes it in a hash-based pyc
    (`importlib.util.source_hash` with that interpreter's magic number as the key)."""
    return tuple(_imp.source_hash(key, data) for key in keys)


def copy_facts(entry: Entry, original: Entry, wants: Wants) -> None:
    """What a hard link shares with the file it links to (once that is hashed)."""
    entry.sha256, entry.md5 = original.sha256, original.md5
    if wants.content(entry.path):
        entry.content, entry.omitted = original.content, original.omitted
    if wants.head(entry.path):
        entry.head = original.head
    if wants.source(entry.path) == wants.source(original.path):
        entry.source_hashes = original.source_hashes
    if wants.kernels(entry.path):
        entry.kernels = original.kernels


AHEAD = 4
"""Decompressed pieces a layer's reader may be ahead of its walk (each at most `STEP`)."""


_POLL = 0.002
"""Seconds a reader a full `AHEAD` ahead waits before it looks for hashing to do again."""


class _ReadAhead:
    """The pieces ``read`` returns, read on a thread of their own up to `AHEAD` pieces ahead
    of `next` (decompressing and reading overlap the walk); an error there is raised by
    the `next` whose piece it kept from coming.  Whichever thread would wait for the
    other does ``help`` instead while there is some to do (hashing: `_Lane`).  If no
    thread can be started (a memory limit), pieces are read in line."""

    def __init__(self, read: Callable[[], bytes], help_: Callable[[], bool]) -> None:
        self._read = read
        self._help = help_
        self._pieces: queue.Queue[bytes | BaseException] = queue.Queue(maxsize=AHEAD)
        self._stop = threading.Event()
        self._ended = False
        self._thread: threading.Thread | None = threading.Thread(target=self._run, daemon=True)
        try:
            self._thread.start()
        except RuntimeError:  # no thread to be had (memory limits): read in line instead
            self._thread = None

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                data = self._read()
                self._put(data)
                if not data:
                    return
        except BaseException as exc:  # raised again by `next`, in the walk's thread
            self._put(exc)

    def _put(self, item: bytes | BaseException) -> None:
        while not self._stop.is_set():
            try:
                self._pieces.put_nowait(item)
            except queue.Full:
                if self._help():
                    continue
                try:  # briefly: the walk may have hashing to hand over by then
                    self._pieces.put(item, timeout=_POLL)
                except queue.Full:
                    continue
            return

    def next(self) -> bytes:
        """The next piece; empty at the end."""
        if self._ended:
            return b""
        if self._thread is None:
            item: bytes | BaseException = self._read()
        else:
            while True:
                try:
                    item = self._pieces.get_nowait()
                except queue.Empty:
                    if self._help():
                        continue
                    item = self._pieces.get()
                break
        if isinstance(item, BaseException):
            self._ended = True
            raise item
        self._ended = not item
        return item

    def close(self) -> None:
        """Stop reading ahead (the walk ended, or failed); returns once the reader has."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


class _LayerStream:
    """A layer's tar, decompressed within the caps (at most `STEP` bytes of output at a
    time), the stored bytes hashed for the blob digest and the output for the diff_id
    (the `digests` lane); the walk's file hashes go to the `files` lane.

    The pieces are read and decompressed ahead of the walk (`_ReadAhead`). It is the file
    `tarfile` reads headers from (``read``, ``tell``, and ``seek`` forward only: a
    backward seek is an `OSError`), and the walk reads a file's bytes with `spans`: where
    they lie in the decompressed pieces, never copied (each piece is an immutable
    ``bytes``, so a hashing job may hold views into it)."""

    def __init__(self, raw: IO[bytes], what: str) -> None:
        head = b""
        while len(head) < 6 and (more := raw.read(6 - len(head))):
            head += more
        kind = sniff(head)
        self.diff_hash = hashlib.sha256()
        # The stored bytes' digest (the blob digest) differs from the diff_id only when
        # the layer is compressed: hash them separately only then.
        self.blob_hash = hashlib.sha256() if kind != "plain" else None
        helpers = _helpers()
        self._wake = threading.Event() if helpers else None
        self.digests = _Lane(self._wake)  # added to by the reader
        self.files = _Hashes(self._wake)  # added to by the walk
        self._closing = False
        self._helpers: list[threading.Thread] = []
        self._helper_failed: BaseException | None = None  # raised again by `close`
        self._stored: list[bytes] = []  # stored bytes read since the last piece
        self.source = Decompressor(
            cast(IO[bytes], Replay(head, raw)),
            kind,
            what=what,
            max_output=limits.current().layer_bytes,
            limit_name="layer_bytes",
            on_input=None if self.blob_hash is None else self._stored.append,
        )
        self._piece = b""  # the current decompressed piece
        self._at = 0  # where in it the next byte is
        self._position = 0  # the tar offset of the next byte
        # threads last: nothing above can fail once one runs (`close` stops them)
        self._ahead = _ReadAhead(self._read, self._help)
        for _ in range(helpers):
            thread = threading.Thread(target=self._assist, daemon=True)
            try:
                thread.start()
            except RuntimeError:  # no more threads to be had (memory limits)
                break
            self._helpers.append(thread)

    @property
    def compressed(self) -> int:
        return self.source.compressed

    @property
    def uncompressed(self) -> int:
        return self.source.uncompressed

    def _read(self) -> bytes:
        """The next decompressed piece, its hashing (and that of the stored bytes read for
        it) queued on the digests lane (on the reader's thread)."""
        data = self.source.read(STEP)
        end = self.source.uncompressed
        if self.blob_hash is None:
            self.digests.add(functools.partial(self.diff_hash.update, data), end)
        else:
            stored = (*self._stored, data)
            self._stored.clear()
            self.digests.add(
                functools.partial(_digest_piece, self.blob_hash, self.diff_hash, stored), end
            )
        return data

    def _help(self) -> bool:
        """Some hashing of either lane done, if any is waiting and free to take."""
        return self.digests.step() or self.files.step()

    def _assist(self) -> None:
        """A helper thread's loop: hashing as jobs come, until the stream is closed."""
        wake = self._wake
        assert wake is not None
        try:
            while not self._closing:
                wake.clear()
                if not self._help():
                    wake.wait(_POLL * 25)
        except BaseException as exc:  # a job failed (no memory): the scan fails with it
            self._helper_failed = exc

    def _more(self) -> int:
        """Bytes left in the current piece, taking the next one when it is used up; 0 at
        the end of the layer."""
        left = len(self._piece) - self._at
        if left:
            return left
        self._piece, self._at = self._ahead.next(), 0
        self.digests.keep_up(self._position)
        self.files.keep_up(self._position)
        return len(self._piece)

    def tell(self) -> int:
        return self._position

    def read(self, size: int = -1) -> bytes:
        """``size`` bytes (fewer at the end): a header, or an extended header within
        ``tar_header_bytes`` (`reprolock.image.tarheaders`)."""
        if size is None or size < 0:
            size = STEP
        parts = []
        while size > 0 and (left := self._more()):
            step = min(size, left)
            parts.append(self._piece[self._at : self._at + step])
            self._at += step
            self._position += step
            size -= step
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def seek(self, offset: int, whence: int = 0) -> int:
        """Pass over bytes up to ``offset`` (hashed all the same); forward only."""
        if whence != 0 or offset < self._position:
            raise OSError("the layer is read front to back: a seek backwards")
        skip = offset - self._position
        while skip > 0 and (left := self._more()):
            step = min(skip, left)
            self._at += step
            self._position += step
            skip -= step
        return self._position

    def spans(self, size: int) -> Iterator[tuple[bytes, int, int]]:
        """The next ``size`` bytes, as (piece, start, end) of the pieces they lie in;
        `tarfile.ReadError` if the layer ends first."""
        while size > 0:
            left = self._more()
            if not left:
                raise tarfile.ReadError("unexpected end of data")
            step = min(size, left)
            start = self._at
            self._at += step
            self._position += step
            size -= step
            yield self._piece, start, start + step

    def drain(self) -> None:
        """Read (and hash) whatever is left: the digest covers the whole tar."""
        while self._more():
            self._position += len(self._piece) - self._at
            self._at = len(self._piece)

    def close(self, *, failed: bool = False) -> None:
        """Stop reading; do the hashing left (both lanes), or drop it when the scan
        ``failed``."""
        self._ahead.close()
        self._closing = True
        if self._wake is not None:
            self._wake.set()
        for thread in self._helpers:
            thread.join()
        failed = failed or self._helper_failed is not None
        for lane in (self.digests, self.files):
            if failed:
                lane.drop()
            else:
                lane.finish()
        if self._helper_failed is not None:  # a job was lost with it: no digest can stand
            raise self._helper_failed


def _digest_piece(blob: Hasher, diff: Hasher, stored: tuple[bytes, ...]) -> None:
    """The hashing of a compressed layer's piece: the stored bytes read for it (all but the
    last in ``stored``) for the blob digest, the piece for the diff_id."""
    for data in stored[:-1]:
        blob.update(data)
    diff.update(stored[-1])


def safe_path(name: str, what: str) -> str:
    """The member name relative to the image root; `SourceError` for escaping paths and
    paths deeper than ``limits.path_depth``."""
    path = name.lstrip("/")
    while path.startswith("./"):
        path = path[2:]
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise SourceError(
            f'{what}: the path "{_short(name)}" climbs out of the image root.',
            hint=_HOSTILE,
        )
    if len(parts) > limits.current().path_depth:
        raise limits.exceeded(
            f'{what}: the path "{_short(name)}"', "path_depth", actual=f"{len(parts)} components"
        )
    return "/".join(parts)


def _short(name: str) -> str:
    shown = name.encode("unicode_escape").decode("ascii")
    return shown if len(shown) <= 120 else shown[:100] + "…" + shown[-10:]


def scan_layer(
    raw: IO[bytes],
    index: int,
    *,
    what: str,
    want_content: WantContent,
    want_hash: WantHash,
    want_md5: WantHash = _nothing,
    want_head: WantHash = _nothing,
    want_source: WantSource = _no_source,
    want_kernels: WantKernels = _nothing,
    budget: ReadBudget | None = None,
) -> LayerScan:
    """Read one layer (gzip, zstd, xz, bzip2 or plain tar) from ``raw`` in a single pass.

    ``budget`` is shared by the layers of one image (a fresh one when None)."""
    wants = Wants(want_content, want_hash, want_md5, want_head, want_source, want_kernels)
    stream = _LayerStream(raw, what)
    links: list[tuple[Entry, Entry]] = []
    try:
        scan = _walk(
            stream,
            index,
            what=what,
            wants=wants,
            budget=budget or ReadBudget(),
            links=links,
        )
    except BaseException:
        stream.close(failed=True)
        raise
    stream.close()  # every hash is done after this
    scan.diff_id = "sha256:" + stream.diff_hash.hexdigest()
    blob = stream.blob_hash
    scan.blob_digest = scan.diff_id if blob is None else "sha256:" + blob.hexdigest()
    for entry, original in links:
        copy_facts(entry, original, wants)
    return scan


def _walk(
    stream: _LayerStream,
    index: int,
    *,
    what: str,
    wants: Wants,
    budget: ReadBudget,
    links: list[tuple[Entry, Entry]],
) -> LayerScan:
    """The tar's entries (the digests are set by `scan_layer` once hashing is done)."""
    scan = LayerScan(index=index)
    # not tarfile's own stream mode: its buffer copies every byte twice more
    tar = open_tar(cast(IO[bytes], stream), what, hint=_HINT, stream=False)
    caps = limits.current()
    seen: dict[str, Entry] = {}
    for member in members(tar, what, hint=_HINT):
        path = safe_path(member.name, what)
        if not path:
            continue
        budget.count(1, what)
        folder, leaf = posixpath.split(path)
        if leaf == ".wh..wh..opq":
            scan.opaque.append(folder)
            continue
        if leaf.startswith(".wh."):
            scan.whiteouts.append(posixpath.join(folder, leaf[4:]))
            continue
        if member.size > caps.member_bytes:
            raise SourceError(
                f"{what}: {path} claims {member.size} bytes: refusing.",
                hint=f"{_HOSTILE} (Files over {caps.member_bytes >> 30} GiB are refused: "
                f"{limits.ENV_PREFIX}MEMBER_BYTES.)",
            )
        entry = Entry(path=path, kind="other", size=member.size, mode=member.mode)
        if member.isreg():
            entry.kind = "file"
            _read_file(stream, member, entry, what, wants, budget)
        elif member.isdir():
            entry.kind = "dir"
        elif member.issym():
            entry.kind = "symlink"
            entry.link = member.linkname
            if member.linkname.count("/") >= caps.path_depth:
                raise limits.exceeded(
                    f'{what}: the link "{path}" points to a path that', "path_depth"
                )
        elif member.islnk():
            source = safe_path(member.linkname, what)
            original = seen.get(source)
            entry.kind = "hardlink"
            entry.link = source
            if original is not None and original.kind == "file":
                entry.kind = "file"
                entry.size = original.size
                if wants.source(path) is not None:
                    entry.mtime = int(member.mtime)
                links.append((entry, original))  # its hashes may still be in the works
        seen[path] = entry
        scan.entries.append(entry)
    # Drain whatever follows the end-of-archive marker, so the digest covers the whole tar.
    stream.drain()
    scan.compressed_size = stream.compressed
    scan.uncompressed_size = stream.uncompressed
    return scan


def _read_file(
    stream: _LayerStream,
    member: tarfile.TarInfo,
    entry: Entry,
    what: str,
    wants: Wants,
    budget: ReadBudget,
) -> None:
    """Keep (within the budget), hash, keep the head of, or scan for CUDA kernels a regular
    file, as wanted."""
    path = entry.path
    keep, sha256, md5 = wants.content(path), wants.hash(path), wants.md5(path)
    scanner = FatbinScanner() if wants.kernels(path) else None
    keys = wants.source(path)
    head = wants.head(path) and budget.take(min(member.size, HEAD_BYTES)) is None
    if keep:
        entry.omitted = budget.take(member.size)
        keep = entry.omitted is None
    if keys is not None:
        entry.mtime = int(member.mtime)
        if member.size > budget.per_file:  # too big to hold whole for its SipHash
            keys = ()
    whole = keep or bool(keys)
    if not (whole or sha256 or md5 or head or scanner):
        return
    parts: list[memoryview] = []
    hashers: list[tuple[Hasher, bool]] = []  # (hasher, is md5)
    if sha256:
        hashers.append((hashlib.sha256(), False))
    if md5:
        hashers.append((hashlib.md5(usedforsecurity=False), True))
    hashes = stream.files
    last: tuple[memoryview, ...] = ()  # hashed with the digest's job (most files: all of it)
    try:
        stream.seek(member.offset_data)
        for piece, start, end in stream.spans(member.size):
            view = memoryview(piece)[start:end]
            if last:
                for hasher, _ in hashers:
                    hashes.update(stream.tell(), hasher, *last)
            last = (view,)
            if whole or (head and not parts):
                parts.append(view)
            if scanner is not None:
                scanner.feed_span(piece, start, end)
        for hasher, is_md5 in hashers:
            hashes.finish_entry(stream.tell(), entry, hasher, *last, md5=is_md5)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise SourceError(f"{what}: {path} is truncated ({exc}).", hint=_HINT) from None
    _keep(entry, parts, keep=keep, head=head, keys=keys)
    if scanner is not None:
        entry.kernels = _found(scanner)


def _found(scanner: FatbinScanner) -> Kernels | None:
    kernels = scanner.finish()
    return None if kernels.empty else kernels


def _keep(
    entry: Entry, parts: list[memoryview], *, keep: bool, head: bool, keys: tuple[int, ...] | None
) -> None:
    """What a file's bytes leave on its entry once read: its content, its head, the SipHash
    of a Python source."""
    data = b"".join(parts) if keep or keys else b""
    if keep:
        entry.content = data
    if head:
        entry.head = bytes((data or (parts[0] if parts else b""))[:HEAD_BYTES])
    if keys:
        entry.source_hashes = source_hashes(data, keys)
