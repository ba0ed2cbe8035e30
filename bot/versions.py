"""Ordering image tags the way people mean them.

Tags are compatible with Renovate's ``docker`` versioning, so a Renovate user sees the same
order, with two extensions (hyphenated prereleases and Bitnami revisions). Tags come from
registries, so they are untrusted: anything that is not a valid Docker tag is ignored.

How a tag is read (:func:`parse_tag`):

- ``v`` prefix: an optional lowercase ``v`` (``v1.2.3``). It is remembered, and a ``v`` tag is
  never offered in place of a plain one or the other way round.
- Release: dot-separated numbers, compared numerically (``v1.2.10`` > ``v1.2.9``). The number of
  components is the *precision*. Dates are versions too: ``20240101`` has one component and
  ``2024.01.15`` has three.
- Prerelease: word characters glued to the release (``3.7.0b1``, ``1.0rc2``), or, unlike
  Renovate, a first hyphenated piece that names one (``1.2.3-rc1``, ``2.0.0-beta.2``; words
  alpha, beta, rc, pre, preview, dev, snapshot, or ``a``/``b`` plus a number). A tag with a
  prerelease is not stable.
- Variant: the rest after the first ``-`` (``alpine3.20``, ``debian-12``). Tags of different
  variants are never compatible.
- Revision: a trailing ``-rN`` piece is Bitnami's rebuild counter, not part of the variant
  (``1.25.3-debian-12-r3`` is variant ``debian-12``, revision 3). Debian 11 and 12 stay apart
  because the variant keeps the ``12``.
- Not versions: ``latest``, ``stable`` and other words; git-SHA-like tags (7 to 40 lowercase hex
  characters, not all digits, such as ``a1b2c3d``); tags with an empty hyphen piece (``1.0-``).

Order (:func:`sort_tags`, ascending), compared in this sequence:

1. Release, component by component; when one release is a prefix of the other, the *shorter
   is bigger* (``1.2`` > ``1.2.9``), as in Renovate: a floating ``1.2`` follows its patches.
2. A stable tag is bigger than a prerelease of the same release (``3.7.0`` > ``3.7.0b5``).
3. Prereleases in natural order (``b2`` < ``b10`` < ``rc1``).
4. A tag without variant is bigger than one with (``3.8.0-alpine`` < ``3.8.0``); variants
   among themselves in natural order.
5. Revision (none < ``r0`` < ``r1``).
6. A plain tag before its ``v`` twin, then the raw text, so the order is total.

Queries pick only among *compatible* tags (same ``v``-ness and variant), and when they look for
the newest of several precisions they compare releases as plain tuples instead, so that the
most precise tag of the newest release wins (``16.4.1`` over ``16.4`` over ``16``).
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import overload

from bot.reference import is_tag

__all__ = [
    "TagList",
    "Version",
    "cluster_minor",
    "is_floating",
    "latest_equivalent",
    "nearest",
    "newest_in_line",
    "newest_patch",
    "newest_stable",
    "parse_tag",
    "sort_tags",
]

_PREFIX_RE = re.compile(r"(\d+(?:\.\d+)*)(\w*)", re.ASCII)
_SHA_RE = re.compile(r"[a-f0-9]{7,40}", re.ASCII)
_HYPHEN_PRERELEASE_RE = re.compile(
    r"(?:alpha|beta|rc|pre|preview|dev|snapshot)(?:\.?\d+)*|[ab]\d+(?:\.\d+)*", re.ASCII | re.IGNORECASE
)
_REVISION_RE = re.compile(r"r(\d+)", re.ASCII)
_NATURAL_RE = re.compile(r"(\d+)", re.ASCII)
# Moving names that are not version lines but float all the same. Release channels also float
# with a variant ("stable-alpine"); branch names do not ("main-a1b2c3d" is a build of a commit).
_RELEASE_CHANNELS = frozenset({"latest", "stable", "edge", "lts", "mainline", "rolling", "current"})
_BRANCH_CHANNELS = frozenset({"nightly", "main", "master", "develop", "dev", "next", "canary"})
_CHANNELS = _RELEASE_CHANNELS | _BRANCH_CHANNELS | {"beta", "alpha", "rc", "testing", "unstable"}
_DATE_DIGITS = 5  # a single release number this long is a date or build number, not a major line


@dataclass(frozen=True, slots=True)
class Version:
    """A tag read as a version; ``raw`` is the tag exactly as the registry listed it."""

    raw: str
    v: bool
    release: tuple[int, ...]
    prerelease: str | None
    variant: str | None
    revision: int | None

    @property
    def stable(self) -> bool:
        """Only stable tags are offered to someone who is on a stable tag."""
        return self.prerelease is None


def parse_tag(tag: str) -> Version | None:
    """The tag read as a version, or None for anything that is not one (see the module docs)."""
    if not is_tag(tag):
        return None
    v = tag.startswith("v")
    prefix, *pieces = (tag[1:] if v else tag).split("-")
    if _SHA_RE.fullmatch(prefix) and not prefix.isdigit():
        return None
    m = _PREFIX_RE.fullmatch(prefix)
    if m is None or "" in pieces:
        return None
    release = tuple(int(n) for n in m.group(1).split("."))
    prerelease = m.group(2) or None
    if prerelease is None and pieces and _HYPHEN_PRERELEASE_RE.fullmatch(pieces[0]):
        prerelease = pieces.pop(0)
    revision = None
    if pieces and (r := _REVISION_RE.fullmatch(pieces[-1])):
        revision = int(r.group(1))
        pieces.pop()
    return Version(tag, v, release, prerelease, "-".join(pieces) or None, revision)


def _natural(text: str | None) -> tuple[tuple[int, int | str], ...]:
    """Natural order for prereleases and variants: ``b2`` < ``b10``."""
    if not text:
        return ()
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in _NATURAL_RE.split(text) if p)


def _order(v: Version) -> tuple[object, ...]:
    """The total order of :func:`sort_tags` (module docs, steps 1 to 6)."""
    return (
        (*v.release, math.inf),  # shorter is bigger
        v.stable,
        _natural(v.prerelease),
        v.variant is None,
        _natural(v.variant),
        -1 if v.revision is None else v.revision,
        v.v,
        v.raw,
    )


def _newest(v: Version) -> tuple[object, ...]:
    """Newest first, and on a shared prefix the most precise (``16.4.1`` > ``16.4`` > ``16``)."""
    return (v.release, v.stable, _natural(v.prerelease), -1 if v.revision is None else v.revision, v.raw)


class TagList(Sequence[str]):
    """A repository's tags, validated once and read as versions once: every query on the same
    list reuses the parse (a 5,000-tag list costs ~40 ms to parse, and a scan may ask about one
    repository for hundreds of references). Immutable; equal to a list or tuple of the same tags."""

    __slots__ = ("_lock", "_set", "_tags", "_versions")

    def __init__(self, tags: Iterable[str] = ()) -> None:
        self._tags: tuple[str, ...] = tuple(
            dict.fromkeys(t for t in tags if isinstance(t, str) and is_tag(t))
        )
        self._versions: tuple[Version, ...] | None = None
        self._set: frozenset[str] | None = None
        self._lock = threading.Lock()

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[str, ...]: ...

    def __getitem__(self, index: int | slice) -> str | tuple[str, ...]:
        return self._tags[index]

    def __len__(self) -> int:
        return len(self._tags)

    def __iter__(self) -> Iterator[str]:
        return iter(self._tags)

    def __contains__(self, tag: object) -> bool:
        if self._set is None:
            self._set = frozenset(self._tags)
        return tag in self._set

    def __eq__(self, other: object) -> bool:
        if isinstance(other, TagList):
            return self._tags == other._tags
        if isinstance(other, list | tuple):
            return list(self._tags) == list(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._tags)

    def __repr__(self) -> str:
        return f"TagList({list(self._tags)!r})"

    def versions(self) -> tuple[Version, ...]:
        """The tags that read as versions, parsed on first use."""
        if self._versions is None:
            with self._lock:
                if self._versions is None:
                    self._versions = tuple(_parse_all(self._tags))
        return self._versions


def _versions(tags: Iterable[str]) -> Sequence[Version]:
    if isinstance(tags, TagList):
        return tags.versions()
    return _parse_all(tags)


def _parse_all(tags: Iterable[str]) -> list[Version]:
    seen: set[str] = set()
    out: list[Version] = []
    for tag in tags:
        if tag in seen:
            continue
        seen.add(tag)
        if (parsed := parse_tag(tag)) is not None:
            out.append(parsed)
    return out


def _like(a: Version, b: Version) -> bool:
    return a.v == b.v and a.variant == b.variant


def sort_tags(tags: Iterable[str]) -> list[str]:
    """Versions ascending (module docs); non-versions dropped, duplicates once."""
    return [v.raw for v in sorted(_versions(tags), key=_order)]


def newest_patch(tags: Iterable[str], current: str) -> str | None:
    """The newest tag of the same line as ``current``: same ``v``-ness, variant, precision and
    major.minor, stable unless ``current`` is a prerelease.

    Never older than ``current``: returns ``current`` itself when nothing newer is listed (so a
    truncated tag list cannot cause a downgrade). None when ``current`` is not a version.
    """
    cur = parse_tag(current)
    if cur is None:
        return None
    cands = [
        t
        for t in _versions(tags)
        if _like(t, cur)
        and len(t.release) == len(cur.release)
        and t.release[:2] == cur.release[:2]
        and (t.stable or not cur.stable)
    ]
    best = max(cands, key=_order, default=cur)
    return best.raw if _order(best)[:-2] > _order(cur)[:-2] else current


def newest_in_line(tags: Iterable[str], line: str, like: str | None = None) -> str | None:
    """Pin a floating line: the newest, most precise tag that extends ``line`` with more
    components (``16`` -> ``16.4``, ``1.31`` -> ``1.31.2``), with the variant and ``v``-ness of
    ``like`` (default: ``line``); stable unless ``like`` is a prerelease. None when the line has
    no such tag (postgres ``16.4`` has no ``16.4.x``)."""
    ln = parse_tag(line)
    ref = parse_tag(like) if like is not None else ln
    if ln is None or ref is None:
        return None
    n = len(ln.release)
    cands = [
        t
        for t in _versions(tags)
        if _like(t, ref)
        and len(t.release) > n
        and t.release[:n] == ln.release
        and (t.stable or not ref.stable)
    ]
    return max(cands, key=_newest).raw if cands else None


def newest_stable(tags: Iterable[str], like: str | None = None) -> str | None:
    """The newest stable tag with the variant and ``v``-ness of ``like``; of its precision when
    any such tag exists. Without ``like``: tags without variant, either ``v``-ness, and dotted
    versions (``1.27.3``) when there are any, so a lone number (a build id, a date: ``9999``,
    ``20240101``) never outranks the release line a repository actually publishes."""
    ref = parse_tag(like) if like is not None else None
    if like is not None and ref is None:
        return None
    cands = [
        t for t in _versions(tags) if t.stable and (_like(t, ref) if ref is not None else t.variant is None)
    ]
    if ref is not None:
        cands = [t for t in cands if len(t.release) == len(ref.release)] or cands
    else:
        cands = [t for t in cands if len(t.release) >= 2] or cands
    return max(cands, key=_newest).raw if cands else None


def cluster_minor(tags: Iterable[str], minor: str, like: str | None = None) -> str | None:
    """The newest patch (three or more components) of ``minor``'s major.minor, with the variant
    and ``v``-ness of ``like`` (default: ``minor``) and its precision when it has one; stable
    unless ``like`` is a prerelease. Lets references that share a minor line agree on one tag."""
    mn = parse_tag(minor)
    ref = parse_tag(like) if like is not None else mn
    if mn is None or ref is None or len(mn.release) < 2:
        return None
    cands = [
        t
        for t in _versions(tags)
        if _like(t, ref)
        and len(t.release) >= 3
        and t.release[:2] == mn.release[:2]
        and (t.stable or not ref.stable)
    ]
    if like is not None and len(ref.release) >= 3:
        cands = [t for t in cands if len(t.release) == len(ref.release)] or cands
    return max(cands, key=_newest).raw if cands else None


def nearest(tags: Iterable[str], missing: str) -> str | None:
    """For a tag the registry no longer has: the newest listed tag of the same major.minor,
    variant, ``v``-ness and precision (stable unless ``missing`` is a prerelease), else None."""
    m = parse_tag(missing)
    if m is None:
        return None
    cands = [
        t
        for t in _versions(tags)
        if t.raw != missing
        and _like(t, m)
        and len(t.release) == len(m.release)
        and t.release[:2] == m.release[:2]
        and (t.stable or not m.stable)
    ]
    return max(cands, key=_order).raw if cands else None


def latest_equivalent(
    tags: Iterable[str],
    digest_of: Callable[[str], str | None],
    latest_digest: str,
    limit: int = 20,
) -> str | None:
    """The versioned tag ``latest`` currently points at, by digest.

    Asks ``digest_of`` (a registry round trip each) about at most ``limit`` stable tags, newest
    and most precise first, those without variant before variants of the same release.
    """
    cands = sorted(
        (t for t in _versions(tags) if t.stable),
        key=lambda t: (t.release, t.variant is None, -1 if t.revision is None else t.revision, t.raw),
        reverse=True,
    )
    for t in cands[: max(limit, 0)]:
        if digest_of(t.raw) == latest_digest:
            return t.raw
    return None


def is_floating(tag: str | None) -> bool:
    """Whether the tag moves over time: none (``latest``), a channel name (``stable``,
    ``lts-alpine``), or a major-only or minor-only line (``16``, ``1.31``, ``v2``)."""
    if tag is None:
        return True
    word = tag.lower()
    if word in _CHANNELS or word.split("-", 1)[0] in _RELEASE_CHANNELS:
        return True
    v = parse_tag(tag)
    if v is None:
        return False
    if len(v.release) == 1 and len(str(v.release[0])) >= _DATE_DIGITS:
        return False  # 20240101: a date or build number
    return len(v.release) <= 2
