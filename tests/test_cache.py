"""The on-disk cache's refs: small data kept in the ref with its hash, larger data in a
blob, refs of the older pointer form still read, and anything damaged a miss."""

from __future__ import annotations

from pathlib import Path

from reprolock.net.cache import INLINE_BYTES, Cache


def _ref_file(cache: Cache, kind: str) -> Path:
    assert cache.root is not None
    (found,) = (cache.root / "refs" / kind).iterdir()
    return found


def test_small_data_lives_in_its_ref(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    cache.put_ref("metadata", "k", b"Name: x\n")
    assert cache.get_ref("metadata", "k", cap=1 << 20) == b"Name: x\n"
    assert not (tmp_path / "blobs").exists()  # one file written, not two
    assert cache.get_ref("metadata", "k", cap=4) is None  # larger than the caller's cap
    assert cache.get_ref("metadata", "other", cap=1 << 20) is None


def test_large_data_lives_in_a_blob(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    data = b"x" * (INLINE_BYTES + 1)
    cache.put_ref("page-summary", "k", data)
    assert cache.get_ref("page-summary", "k", cap=len(data)) == data
    assert cache.get_ref("page-summary", "k", cap=len(data) - 1) is None
    assert len(_ref_file(cache, "page-summary").read_bytes()) == 64  # a pointer


def test_a_ref_of_the_pointer_form_still_reads(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    digest = cache.put_blob(b"Name: old\n")
    cache.put_ref("metadata", "k", b"placeholder")
    _ref_file(cache, "metadata").write_bytes(digest.encode())  # as older versions wrote
    assert cache.get_ref("metadata", "k", cap=1 << 20) == b"Name: old\n"


def test_a_damaged_inline_ref_is_a_miss(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    cache.put_ref("metadata", "k", b"Name: x\n")
    ref = _ref_file(cache, "metadata")
    ref.write_bytes(ref.read_bytes().replace(b"Name: x", b"Name: y"))
    assert cache.get_ref("metadata", "k", cap=1 << 20) is None
    ref.write_bytes(b"inline sha256:short\nName: x\n")
    assert cache.get_ref("metadata", "k", cap=1 << 20) is None
    ref.write_bytes(b"z" * 200)  # neither form
    assert cache.get_ref("metadata", "k", cap=1 << 20) is None


def test_blobs_share_one_folder_and_those_of_older_caches_still_read(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    digest = cache.put_blob(b"page")
    assert (tmp_path / "blobs" / "sha256" / digest).read_bytes() == b"page"
    older = tmp_path / "blobs" / "sha256" / "ab" / ("ab" + "0" * 62)
    older.parent.mkdir()
    older.write_bytes(b"damaged")  # its name is not its hash: a miss, and removed
    assert cache.get_blob(older.name, cap=100) is None and not older.exists()
    old_digest = cache.put_blob(b"old page")
    moved = tmp_path / "blobs" / "sha256" / old_digest[:2] / old_digest
    moved.parent.mkdir(exist_ok=True)
    (tmp_path / "blobs" / "sha256" / old_digest).rename(moved)  # as older versions wrote
    assert cache.get_blob(old_digest, cap=100) == b"old page"
    assert cache.get_blob(old_digest, cap=3) is None  # the caller's cap still holds
