"""A first scan of a large repository reads its files from one archive (issue 14 §4): bounded
calls, and the archive is trusted for nothing the tree does not vouch for (sizes, blob SHAs,
regular files only, a cap on what it may decompress to)."""

from __future__ import annotations

import io
import tarfile

import pytest

from bot.github import archive
from bot.jobs.reader import ARCHIVE_MIN_FILES, scan_repository
from bot.scan import MAX_FILE_BYTES

BLOBS = r"/git/blobs/"
N = 120


def _deployment(i: int) -> str:
    return (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n"
        f"      containers:\n      - name: web\n        image: example.com/team/app-{i}:1.{i}\n"
    )


@pytest.fixture
def large(world):
    files = {f"apps/app-{i:03}/deploy.yaml": _deployment(i) for i in range(N)}
    files["bin/tool.dat"] = "x" * 5000  # never wanted: in the archive, skipped unread
    world.fake.push(world.repo, files)
    return world


def _refs(result):
    return sorted((r.path, r.reference) for r in result.refs)


def test_a_first_scan_of_a_large_repository_reads_its_files_in_a_bounded_number_of_calls(large):
    w = large
    s = w.github_app().session(w.inst.id, "octo-org/demo")
    w.fake.reset_log()
    result = scan_repository(s)
    assert len([r for r in result.refs if "example.com/team/app-" in (r.reference or "")]) == N
    assert w.fake.count(path=BLOBS) == 0 and result.fetched == 0
    assert result.archived == N + 3  # and the three small files of the fixture
    assert w.fake.count(operation="repos/download-tarball-archive") == 1
    api = [e for e in w.fake.log if e.operation != "codeload" and "access_tokens" not in e.path]
    assert len(api) <= 4, [(e.method, e.path) for e in api]  # repository, ref, tree, archive
    assert w.fake.count(operation="codeload") == 1  # the download: no credentials (checked)
    w.fake.assert_clean()


def test_a_few_files_are_still_read_blob_by_blob(world):
    s = world.github_app().session(world.inst.id, "octo-org/demo")
    result = scan_repository(s)
    assert result.archived == 0 and result.fetched == 3 < ARCHIVE_MIN_FILES
    assert world.fake.count(operation="repos/download-tarball-archive") == 0


def _tamper(w, add):
    def tamper(tf: tarfile.TarFile, top: str) -> None:
        for name, data, kind in add(top):
            info = tarfile.TarInfo(name)
            if kind == "link":
                info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
                tf.addfile(info)
            else:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))

    w.fake.archive_tamper = tamper


def test_hostile_members_are_never_used_and_the_blob_api_fills_in(large):
    w = large
    evil = _deployment(999).encode()
    _tamper(w, lambda top: [
        (top + "../../outside.yaml", evil, "file"),  # traversal
        ("/abs/deploy.yaml", evil, "file"),  # absolute
        (top + "apps/app-000/deploy.yaml", evil, "file"),  # a second copy, other content: later wins in tar
        (top + "apps/app-001/deploy.yaml", b"", "link"),  # a link where a file is listed
        (top + "apps/app-002/deploy.yaml", b"x" * (MAX_FILE_BYTES + 1), "file"),  # over the cap
    ])  # fmt: skip
    s = w.github_app().session(w.inst.id, "octo-org/demo")
    result = scan_repository(s)
    refs = _refs(result)
    assert ("apps/app-000/deploy.yaml", "example.com/team/app-0:1.0") in refs
    assert ("apps/app-001/deploy.yaml", "example.com/team/app-1:1.1") in refs
    assert ("apps/app-002/deploy.yaml", "example.com/team/app-2:1.2") in refs
    assert not [r for r in refs if "app-999" in r[1]]  # the tampered bytes were never scanned
    assert result.archived == N + 3  # the genuine members came first and were used
    w.fake.assert_clean()


def test_a_decompression_bomb_stops_at_what_the_tree_vouches_for(large):
    w = large
    _tamper(w, lambda top: [(top + "zeros.bin", bytes(64 * 1024 * 1024), "file")])  # ~64 KB gzipped
    s = w.github_app().session(w.inst.id, "octo-org/demo")
    result = scan_repository(s)  # the archive is dropped where it overflows; blobs fill in
    assert len([r for r in result.refs if "example.com/team/app-" in (r.reference or "")]) == N
    assert result.archived + result.fetched == N + 3
    w.fake.assert_clean()


def test_the_gunzip_stream_refuses_more_than_its_limit():
    import gzip

    raw = gzip.compress(bytes(10 * 1024 * 1024))
    stream = archive._Gunzip(iter([raw[i : i + 4096] for i in range(0, len(raw), 4096)]), 1024 * 1024)
    with pytest.raises(archive.ArchiveError, match="more than"):
        while stream.read(65536):
            pass
    assert stream.total <= 1024 * 1024 + 65536  # bounded, whatever the archive says
    ok = archive._Gunzip(iter([gzip.compress(b"hello")]), 100)
    assert ok.read(100) == b"hello" and ok.read(100) == b""


def test_an_archive_that_cannot_be_had_falls_back_to_blobs(large):
    w = large
    w.fake.fail(r"/tarball/", status=404, times=1)
    s = w.github_app().session(w.inst.id, "octo-org/demo")
    result = scan_repository(s)
    assert result.archived == 0 and result.fetched == N + 3
    assert len([r for r in result.refs if "example.com/team/app-" in (r.reference or "")]) == N
