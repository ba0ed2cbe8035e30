"""A repository's files from one archive download instead of one API call per blob (issue 14 §4).

``GET /repos/{owner}/{repo}/tarball/{ref}`` is one REST call; GitHub answers 302 to a short-lived
URL (``codeload.github.com``) that carries its own token, so the download is sent no credentials
and costs no rate limit. The gzipped tar is streamed and read member by member; nothing is
written to disk and only the files asked for are kept, so memory holds one file at a time beyond
what the caller keeps.

What an archive may hold is not trusted: GitHub's archives honour ``export-ignore`` and
``export-subst`` in ``.gitattributes``, and the stream could be anything. So:

- a member is used only when it is a regular file whose path (after the one top folder) is a
  path the caller asked for, with the size the tree listed, no larger than ``max_file``, and
  whose bytes hash to the blob SHA the tree listed: links, devices, ``..`` and absolute names,
  other sizes and other contents are skipped (the caller reads those through the blob API);
- the decompressed stream may not exceed ``max_total`` (what the tree says the archive holds,
  plus headers): a bomb stops the read with :class:`ArchiveError` after ``max_total`` bytes.
"""

from __future__ import annotations

import io
import tarfile
import zlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

import httpx

from bot.github.git import blob_sha

if TYPE_CHECKING:
    from bot.github import Session

__all__ = ["ArchiveError", "archive_files", "archive_limit"]

REDIRECTS = frozenset({301, 302, 303, 307, 308})
CHUNK = 1 << 20  # decompressed bytes produced per step: bounds the buffer whatever the input
HEADER_ALLOWANCE = 3 * 512  # a member's tar header, pax header and padding


class ArchiveError(Exception):
    """The archive could not be had or read within its bounds; read the blobs one by one."""


def archive_limit(sizes: list[int]) -> int:
    """The most a tar of files of ``sizes`` may decompress to (data padded to 512, headers)."""
    return sum(-(-s // 512) * 512 + HEADER_ALLOWANCE for s in sizes) + 64 * 1024


def archive_files(
    session: Session, commit: str, wanted: Mapping[str, tuple[str, int]], *, max_file: int, max_total: int
) -> Iterator[tuple[str, bytes]]:
    """(path, bytes) for each path of ``wanted`` (path -> (blob SHA, size)) found intact in the
    archive of ``commit``. Raises :class:`ArchiveError` (or :class:`GitHubError` for the API
    call) when the archive cannot be used at all; files yielded before that are sound."""
    http = session.app.http
    resp = http.request(
        "GET", f"/repos/{session.full_name}/tarball/{commit}", auth=session.auth(),
        installation_id=session.installation_id,
    )  # fmt: skip
    location = resp.headers.get("location")
    if resp.status_code not in REDIRECTS or not location:
        raise ArchiveError(f"GitHub answered {resp.status_code} without a download address")
    url = resp.url.join(location)
    if url.scheme not in ("https", "http"):
        raise ArchiveError(f"refusing a download address of scheme {url.scheme!r}")
    try:
        # No Authorization header: the address carries its own token.
        with http.client.stream("GET", url, headers={"Accept": "*/*", "Accept-Encoding": "identity"}) as r:
            if r.status_code != 200:
                raise ArchiveError(f"the archive download answered {r.status_code}")
            if r.headers.get("content-encoding", "identity").lower() not in ("identity", ""):
                raise ArchiveError("the archive came with a content encoding on top of its gzip")
            stream = _Gunzip(r.iter_raw(), max_total)
            try:
                with tarfile.open(fileobj=stream, mode="r|") as tf:
                    yield from _members(tf, wanted, max_file)
            except (tarfile.TarError, zlib.error, EOFError, OSError) as exc:
                raise ArchiveError(f"unreadable archive: {exc}") from None
    except httpx.HTTPError as exc:
        raise ArchiveError(f"the archive download failed: {type(exc).__name__}") from None


def _members(
    tf: tarfile.TarFile, wanted: Mapping[str, tuple[str, int]], max_file: int
) -> Iterator[tuple[str, bytes]]:
    for m in tf:
        if not m.isreg():
            continue  # folders, symlinks, hard links, devices: never followed or read
        _, _, path = m.name.partition("/")  # GitHub's one top folder
        want = wanted.get(path)
        if want is None or m.size != want[1] or m.size > max_file:
            continue
        f = tf.extractfile(m)
        if f is None:
            continue
        data = f.read(max_file + 1)
        if len(data) == want[1] and blob_sha(data) == want[0]:
            yield path, data


class _Gunzip(io.RawIOBase):
    """A gzip stream decompressed as it is read: never more than :data:`CHUNK` bytes ahead of
    the reader, and an error once more than ``limit`` bytes were read (so a bomb costs bounded
    memory and time, and members before the overflow are still read)."""

    def __init__(self, chunks: Iterator[bytes], limit: int) -> None:
        self._chunks = chunks
        self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._buf = bytearray()
        self._done = False
        self.total = 0
        self.limit = limit

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        n = len(b)
        while len(self._buf) < n and not self._done:
            data = self._z.unconsumed_tail
            if not data:
                data = next(self._chunks, b"")
                if not data:
                    self._buf += self._z.flush()
                    self._done = True
                    break
            self._buf += self._z.decompress(data, CHUNK)
            if self._z.eof:
                self._done = True
        got = min(n, len(self._buf))
        self.total += got
        if self.total > self.limit:
            raise ArchiveError(f"the archive decompresses to more than {self.limit} bytes")
        b[:got] = self._buf[:got]
        del self._buf[:got]
        return got
