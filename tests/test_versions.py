"""Tag ordering: reading tags, Renovate's order, the queries the rules ask, and properties."""

from __future__ import annotations

import itertools
import random
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.versions import (
    Version,
    cluster_minor,
    is_floating,
    latest_equivalent,
    nearest,
    newest_in_line,
    newest_patch,
    newest_stable,
    parse_tag,
    sort_tags,
)


def shuffled(tags: list[str], seed: int = 7) -> list[str]:
    out = list(tags)
    random.Random(seed).shuffle(out)
    return out


# -- reading tags ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tag", "v", "release", "prerelease", "variant", "revision"),
    [
        ("1", False, (1,), None, None, None),
        ("1.27", False, (1, 27), None, None, None),
        ("1.27.3", False, (1, 27, 3), None, None, None),
        ("v1.2.10", True, (1, 2, 10), None, None, None),
        ("1.2.3.4", False, (1, 2, 3, 4), None, None, None),
        ("01.002", False, (1, 2), None, None, None),
        ("3.7.0b1", False, (3, 7, 0), "b1", None, None),
        ("1.0rc2", False, (1, 0), "rc2", None, None),
        ("3.8.0b1-alpine", False, (3, 8, 0), "b1", "alpine", None),
        ("1.2.3-rc1", False, (1, 2, 3), "rc1", None, None),
        ("1.2.3-RC1", False, (1, 2, 3), "RC1", None, None),
        ("2.0.0-beta.2", False, (2, 0, 0), "beta.2", None, None),
        ("2.0.0-alpha", False, (2, 0, 0), "alpha", None, None),
        ("1.0.0-a1", False, (1, 0, 0), "a1", None, None),
        ("1.2.3-rc1-alpine", False, (1, 2, 3), "rc1", "alpine", None),
        ("1.33.4-alpine3.20", False, (1, 33, 4), None, "alpine3.20", None),
        ("1.25.3-debian-12-r3", False, (1, 25, 3), None, "debian-12", 3),
        ("1.25.3-debian-11-r10", False, (1, 25, 3), None, "debian-11", 10),
        ("1.25.3-r3", False, (1, 25, 3), None, None, 3),
        ("16-bookworm", False, (16,), None, "bookworm", None),
        ("1.27-alpine-slim", False, (1, 27), None, "alpine-slim", None),
        ("1.0-revolution", False, (1, 0), None, "revolution", None),  # "r" + digits only is a revision
        ("20240101", False, (20240101,), None, None, None),
        ("2024.01.15", False, (2024, 1, 15), None, None, None),
        ("1234567", False, (1234567,), None, None, None),  # all digits: a number, not a SHA
        ("v2", True, (2,), None, None, None),
    ],
)
def test_parse_tag(tag, v, release, prerelease, variant, revision):
    assert parse_tag(tag) == Version(tag, v, release, prerelease, variant, revision)


@pytest.mark.parametrize(
    "tag",
    [
        "latest",
        "stable",
        "alpine",
        "mainline-alpine",
        "a1b2c3d",
        "1a2b3c4",  # 7 hex characters starting with a digit: a SHA, not 1 + prerelease
        "1a2b3c4-alpine",
        "0123456789abcdef0123456789abcdef01234567",
        "sha-a1b2c3d",
        "",
        "v",
        "V1.2",
        "1.2.",
        ".1.2",
        "1..2",
        "1.2.3-",
        "1.2.3--alpine",
        "1.2.x",
        "1.2.3a.4",
        "x" * 300,
        "1." + "1" * 299,
        "<script>alert(1)</script>",
        "1.2.3 ",
        "1.2.3\n",
        "１.２",
        "1.2/3",
    ],
)
def test_not_versions(tag):
    assert parse_tag(tag) is None


def test_stable_property():
    assert parse_tag("1.2.3").stable
    assert parse_tag("1.2.3-alpine").stable
    assert not parse_tag("1.2.3-rc1").stable
    assert not parse_tag("3.7.0b1").stable


# -- order -----------------------------------------------------------------------------------------

RENOVATE_SPEC = [
    "3.7.0b1",
    "3.7.0b5",
    "3.7.0",
    "3.7-alpine",
    "3.8.0b1-alpine",
    "3.8.0-alpine",
    "3.8.0",
    "3.8.2",
]


@pytest.mark.parametrize("seed", range(5))
def test_renovate_spec_order(seed):
    assert sort_tags(shuffled(RENOVATE_SPEC, seed)) == RENOVATE_SPEC


@pytest.mark.parametrize(
    "ordered",
    [
        ["v1.2.1", "v1.2.2", "v1.2.9", "v1.2.10", "v1.2.11"],
        ["1.9", "1.10", "1.100"],
        ["10.1.2", "10.1"],  # shorter is bigger
        ["1.2.3", "1.2", "1"],
        ["3.7.0b2", "3.7.0b10", "3.7.0rc1", "3.7.0"],
        ["1.2.3-alpha", "1.2.3-beta.2", "1.2.3-rc1", "1.2.3"],
        ["1.25.3-debian-12", "1.25.3-debian-12-r0", "1.25.3-debian-12-r2", "1.25.3-debian-12-r10"],
        ["1.25.3-debian-11-r9", "1.25.3-debian-12-r1"],
        ["20231231", "20240101", "20240102"],
        ["2023.12.31", "2024.1.5", "2024.01.15"],
        ["1.2.3", "v1.2.3"],  # a tie on version, broken by v-ness
        ["1.02", "1.2"],  # a tie on version, broken by the raw text
        ["1.27.3-alpine", "1.27.3-perl", "1.27.3"],
    ],
)
def test_sort_order(ordered):
    for seed in range(3):
        assert sort_tags(shuffled(ordered, seed)) == ordered


def test_sort_drops_non_versions_and_duplicates():
    tags = ["latest", "1.2", "a1b2c3d", "1.2", "<script>", "x" * 300, "stable", "1.10", "1.2", ""]
    assert sort_tags(tags) == ["1.2", "1.10"]
    assert sort_tags([]) == []
    assert sort_tags(iter(["2", "1"])) == ["1", "2"]


# -- newest_patch ------------------------------------------------------------------------------------

NGINX = [
    "1.33.0",
    "1.33.1",
    "1.33.4",
    "1.33",
    "1.34.1",
    "1.34",
    "1",
    "latest",
    "1.33.4-alpine3.20",
    "1.33.9-alpine3.20",
    "1.33.12-alpine3.21",
    "1.33.5b1",
    "1.33.6-rc1",
    "v1.33.7",
    "mainline",
]
BITNAMI = [
    "1.25.3-debian-12-r3",
    "1.25.3-debian-12-r4",
    "1.25.4-debian-12-r0",
    "1.25.5-debian-11-r7",
    "1.26.0-debian-12-r1",
    "1.25.4",
    "latest",
]


@pytest.mark.parametrize(
    ("tags", "current", "expected"),
    [
        (NGINX, "1.33.0", "1.33.4"),  # ignores 1.34.1, variants, prereleases, v1.33.7
        (NGINX, "1.33.4", "1.33.4"),  # already newest: itself
        (NGINX, "1.33.4-alpine3.20", "1.33.9-alpine3.20"),  # not -alpine3.21
        (NGINX, "1.33.12-alpine3.21", "1.33.12-alpine3.21"),
        (NGINX, "v1.33.0", "v1.33.7"),
        (NGINX, "1.33", "1.33"),  # a minor line has no patch level: itself
        (NGINX, "1", "1"),
        (NGINX, "1.33.5b0", "1.33.6-rc1"),  # a prerelease may move to a prerelease...
        (["1.33.5b1", "1.33.5"], "1.33.5b0", "1.33.5"),  # ... and prefers the stable release
        (NGINX, "1.33.3-rc1", "1.33.6-rc1"),
        (NGINX, "latest", None),
        (NGINX, "mainline", None),
        (NGINX, "a1b2c3d", None),
        (BITNAMI, "1.25.3-debian-12-r3", "1.25.4-debian-12-r0"),
        (BITNAMI, "1.25.4-debian-12-r0", "1.25.4-debian-12-r0"),
        (BITNAMI, "1.25.3-debian-11-r1", "1.25.5-debian-11-r7"),  # Debian 11 stays on 11
        (BITNAMI, "1.25.3", "1.25.4"),
        (["v1.2.3", "v1.2.9", "v1.2.10", "v1.3.0", "1.2.99"], "v1.2.3", "v1.2.10"),
        (["1.33.2"], "1.33.5", "1.33.5"),  # never a downgrade, even from a truncated list
        ([], "1.33.5", "1.33.5"),
        (["2024.01.15", "2024.01.30", "2024.02.01"], "2024.01.15", "2024.01.30"),
        (["1.2.3.4", "1.2.3.5", "1.2.4.0", "1.2.4"], "1.2.3.4", "1.2.4.0"),
        (["1.33.04"], "1.33.4", "1.33.4"),  # a tie keeps the current text
        (["1.33.5", "<script>", "1.33.x", "x" * 300], "1.33.0", "1.33.5"),
    ],
)
def test_newest_patch(tags, current, expected):
    assert newest_patch(shuffled(tags), current) == expected


# -- newest_in_line ---------------------------------------------------------------------------------

POSTGRES = [
    "16",
    "16.3",
    "16.4",
    "16.4-alpine",
    "16.4-bookworm",
    "16-alpine",
    "17.0",
    "17",
    "16.5rc1",
    "latest",
]
NODE = ["20", "20.11", "20.11.1", "20.12", "20.12.0", "20.12.2", "20.12.2-alpine", "21.0.0", "v20.99.0"]


@pytest.mark.parametrize(
    ("tags", "line", "like", "expected"),
    [
        (POSTGRES, "16", None, "16.4"),
        (POSTGRES, "16-alpine", None, "16.4-alpine"),
        (POSTGRES, "16", "16-bookworm", "16.4-bookworm"),
        (POSTGRES, "16.4", None, None),  # postgres has no 16.4.x
        (POSTGRES, "18", None, None),
        (POSTGRES, "16", "16.5rc0", "16.5rc1"),  # prereleases only for someone on one
        (NODE, "20", None, "20.12.2"),  # newest release, most precise tag of it
        (NODE, "20.11", None, "20.11.1"),
        (NODE, "20.12", "20.12-alpine", "20.12.2-alpine"),
        (NODE, "v20", None, "v20.99.0"),
        (["1.31.0", "1.31.2", "1.31.10", "1.32.0", "1.31"], "1.31", None, "1.31.10"),
        (
            ["1.31.2-debian-12-r1", "1.31.2-debian-12-r5", "1.31.3-debian-11-r0"],
            "1.31",
            "1.31-debian-12",
            "1.31.2-debian-12-r5",
        ),
        (POSTGRES, "latest", None, None),
        (POSTGRES, "16", "latest", None),
    ],
)
def test_newest_in_line(tags, line, like, expected):
    assert newest_in_line(shuffled(tags), line, like) == expected


# -- newest_stable ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tags", "like", "expected"),
    [
        (NGINX, None, "1.34.1"),  # most precise of the newest release; not the floating "1"
        (NGINX, "1.33.0", "1.34.1"),
        (NGINX, "1.33", "1.34"),  # precision of `like`
        (NGINX, "1.33.4-alpine3.20", "1.33.9-alpine3.20"),
        (NGINX, "v1.0.0", "v1.33.7"),
        (NGINX, "latest", None),
        (POSTGRES, "15.2-alpine", "16.4-alpine"),
        (POSTGRES, "15-alpine", "16-alpine"),
        (POSTGRES, "15.2.1", "17.0"),  # no tag of that precision: the newest of any
        (["3.13.0b1", "3.12.7", "3.12.7rc1"], None, "3.12.7"),
        (BITNAMI, "1.25.3-debian-12-r3", "1.26.0-debian-12-r1"),
        (BITNAMI, "1.0.0-debian-11-r0", "1.25.5-debian-11-r7"),
        (["latest", "a1b2c3d"], None, None),
        (["1.27.3", "1.26.0", "9999", "20240101"], None, "1.27.3"),  # a build id is not a release
        (["41", "42", "latest"], None, "42"),  # a repository of plain numbers still gets one
    ],
)
def test_newest_stable(tags, like, expected):
    assert newest_stable(shuffled(tags), like) == expected


# -- cluster_minor ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tags", "minor", "like", "expected"),
    [
        (NGINX, "1.33", None, "1.33.4"),
        (NGINX, "1.33.0", None, "1.33.4"),  # a full version names its minor
        (NGINX, "1.33", "1.32.1-alpine3.20", "1.33.9-alpine3.20"),
        (NGINX, "1.33", "v1.0.0", "v1.33.7"),
        (NGINX, "1.35", None, None),
        (NGINX, "1", None, None),  # not a minor
        (BITNAMI, "1.25", "1.24.0-debian-12-r9", "1.25.4-debian-12-r0"),
        (["1.33.1", "1.33.2.1", "1.33.2"], "1.33", "1.32.0", "1.33.2"),  # precision of `like`
        (["1.33.2.1", "1.34.0"], "1.33", "1.32.0", "1.33.2.1"),  # else any precision
        (["1.33.5rc1", "1.33.4"], "1.33", None, "1.33.4"),
    ],
)
def test_cluster_minor(tags, minor, like, expected):
    assert cluster_minor(shuffled(tags), minor, like) == expected


# -- nearest ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tags", "missing", "expected"),
    [
        (NGINX, "1.33.10", "1.33.4"),
        (NGINX, "1.33.2", "1.33.4"),  # newest of the line, even above the missing one
        (NGINX, "1.33.7-alpine3.20", "1.33.9-alpine3.20"),
        (NGINX, "1.35.0", None),
        (NGINX, "1.33.6-rc2", "1.33.6-rc1"),
        (NGINX, "latest", None),
        (BITNAMI, "1.25.3-debian-12-r9", "1.25.4-debian-12-r0"),
        (BITNAMI, "1.25.9-debian-11-r0", "1.25.5-debian-11-r7"),
        (POSTGRES, "16.9", None),  # precision 2: only the same release could match
        (["16.9-r1", "16.9-r2"], "16.9-r7", "16.9-r2"),
        (["1.33.10"], "1.33.10", None),  # never the missing tag itself
    ],
)
def test_nearest(tags, missing, expected):
    assert nearest(shuffled(tags), missing) == expected


# -- latest_equivalent ------------------------------------------------------------------------------


class Registry:
    def __init__(self, digests: dict[str, str]):
        self.digests = digests
        self.asked: list[str] = []

    def digest_of(self, tag: str) -> str | None:
        self.asked.append(tag)
        return self.digests.get(tag)


def test_latest_equivalent_newest_most_precise_first():
    reg = Registry({"1.27.3": "sha256:new", "1.27": "sha256:new", "1": "sha256:new", "1.27.2": "sha256:old"})
    tags = ["1", "1.27", "1.27.2", "1.27.3", "1.27.3-alpine", "1.28.0rc1", "latest", "a1b2c3d"]
    assert latest_equivalent(shuffled(tags), reg.digest_of, "sha256:new") == "1.27.3"
    assert reg.asked == ["1.27.3"]


def test_latest_equivalent_walks_down_and_skips_unstable():
    reg = Registry({"1.26.0": "sha256:L"})
    tags = ["1.26.0", "1.27.0", "1.27.1-alpine", "1.28.0rc1", "1.27.0-alpine", "latest"]
    assert latest_equivalent(tags, reg.digest_of, "sha256:L") == "1.26.0"
    assert reg.asked == ["1.27.1-alpine", "1.27.0", "1.27.0-alpine", "1.26.0"]


def test_latest_equivalent_bitnami():
    reg = Registry({"1.25.4-debian-12-r1": "sha256:L"})
    tags = ["1.25.4-debian-12-r0", "1.25.4-debian-12-r1", "1.25.3-debian-12-r9"]
    assert latest_equivalent(tags, reg.digest_of, "sha256:L") == "1.25.4-debian-12-r1"
    assert reg.asked == ["1.25.4-debian-12-r1"]


@pytest.mark.parametrize("limit", [0, 1, 5, 20])
def test_latest_equivalent_respects_limit(limit):
    tags = [f"1.0.{i}" for i in range(50)]
    reg = Registry({"1.0.0": "sha256:L"})
    assert latest_equivalent(tags, reg.digest_of, "sha256:L", limit=limit) is None
    assert reg.asked == [f"1.0.{i}" for i in range(49, 49 - limit, -1)]


def test_latest_equivalent_default_limit_and_no_match():
    reg = Registry({})
    assert latest_equivalent([f"2.{i}.0" for i in range(30)], reg.digest_of, "sha256:L") is None
    assert len(reg.asked) == 20
    assert latest_equivalent(["latest"], reg.digest_of, "sha256:L") is None


# -- is_floating ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tag", "floating"),
    [
        (None, True),
        ("latest", True),
        ("stable", True),
        ("stable-alpine", True),
        ("lts-slim", True),
        ("mainline", True),
        ("edge", True),
        ("nightly", True),
        ("main", True),
        ("1.31", True),
        ("16", True),
        ("v2", True),
        ("16-alpine", True),
        ("22.04", True),
        ("1.31.2", False),
        ("v1.2.3", False),
        ("16.4.0-alpine", False),
        ("1.25.3-debian-12-r3", False),
        ("20240101", False),  # a date
        ("main-a1b2c3d", False),  # a build of one commit
        ("a1b2c3d", False),
        ("sha-a1b2c3d", False),
        ("<script>", False),
    ],
)
def test_is_floating(tag, floating):
    assert is_floating(tag) is floating


# -- properties ---------------------------------------------------------------------------------------

_variant = st.sampled_from([None, "alpine", "alpine3.20", "alpine3.21", "debian-12", "bookworm", "slim"])
_pre = st.sampled_from(["", "b1", "b5", "b10", "rc1", "a2"])


@st.composite
def version_tags(draw: st.DrawFn, extensions: bool = True) -> str:
    release = ".".join(str(n) for n in draw(st.lists(st.integers(0, 12), min_size=1, max_size=4)))
    tag = ("v" if draw(st.booleans()) else "") + release + draw(_pre)
    if (variant := draw(_variant)) is not None:
        tag += f"-{variant}"
    if extensions and draw(st.booleans()):
        tag += f"-r{draw(st.integers(0, 12))}"
    return tag


_any_tag = st.one_of(
    version_tags(), st.text(max_size=12), st.sampled_from(["latest", "stable", "a1b2c3d", "x" * 200])
)


@given(st.lists(_any_tag, max_size=30), st.randoms())
def test_sort_is_a_total_order(tags, rnd):
    out = sort_tags(tags)
    assert len(out) == len(set(out))
    assert set(out) == {t for t in tags if parse_tag(t) is not None}
    assert sort_tags(out) == out  # idempotent
    again = list(tags)
    rnd.shuffle(again)
    assert sort_tags(again) == out  # independent of input order
    assert sort_tags(reversed(out)) == out


def renovate_compare(a: str, b: str) -> int:
    """A separate port of Renovate's docker ``_compare``: release (shorter is bigger), then
    unstable lower, then prerelease, then suffix (none is bigger)."""

    def split(tag: str) -> tuple[list[int], str, str]:
        prefix, _, suffix = tag.removeprefix("v").partition("-")
        m = re.fullmatch(r"(\d+(?:\.\d+)*)(\w*)", prefix)
        assert m is not None
        return [int(x) for x in m.group(1).split(".")], m.group(2), suffix

    ra, pa, sa = split(a)
    rb, pb, sb = split(b)
    for i in range(max(len(ra), len(rb))):
        if i >= len(ra):
            return 1
        if i >= len(rb):
            return -1
        if ra[i] != rb[i]:
            return ra[i] - rb[i]
    if pa != pb:
        if not pa:
            return 1
        if not pb:
            return -1
        return -1 if pa < pb else 1
    return (sb > sa) - (sb < sa)


@given(st.lists(version_tags(extensions=False), max_size=25))
def test_sort_agrees_with_renovate(tags):
    out = sort_tags(tags)
    for earlier, later in itertools.pairwise(out):
        # Renovate never puts `later` before `earlier`; it may call them equal (v-ness), order
        # prereleases alphabetically where we order them naturally (b10 > b5), and order two
        # variants in reverse where we use natural order.
        cmp = renovate_compare(earlier, later)
        pe, pl = parse_tag(earlier), parse_tag(later)
        natural_only = pe.release == pl.release and pe.prerelease and pl.prerelease
        two_variants = pe.variant and pl.variant and pe.variant != pl.variant  # incompatible anyway
        assert cmp <= 0 or natural_only or two_variants, (earlier, later)


@given(st.lists(_any_tag, max_size=30), version_tags())
def test_newest_patch_properties(tags, current):
    got = newest_patch(tags, current)
    assert got is not None
    assert got == current or got in tags
    cur, new = parse_tag(current), parse_tag(got)
    assert (new.v, new.variant, len(new.release), new.release[:2]) == (
        cur.v,
        cur.variant,
        len(cur.release),
        cur.release[:2],
    )
    assert new.stable or not cur.stable
    assert got == current or sort_tags([got, current]) == [current, got]  # never a downgrade
    assert newest_patch(tags, got) == got  # a fixed point


@given(st.lists(_any_tag, max_size=30), version_tags())
def test_queries_only_return_listed_compatible_tags(tags, like):
    ref = parse_tag(like)
    for got in (
        newest_stable(tags, like),
        newest_in_line(tags, like, None),
        cluster_minor(tags, like, like),
        nearest(tags, like),
    ):
        if got is not None:
            assert got in tags
            t = parse_tag(got)
            assert (t.v, t.variant) == (ref.v, ref.variant)
    stable = newest_stable(tags, like)
    assert stable is None or parse_tag(stable).stable


@given(st.lists(_any_tag, max_size=40), st.integers(0, 25))
def test_latest_equivalent_asks_at_most_limit(tags, limit):
    asked: list[str] = []

    def digest_of(tag: str) -> str | None:
        asked.append(tag)
        return None

    assert latest_equivalent(tags, digest_of, "sha256:x", limit=limit) is None
    assert len(asked) <= limit
    assert len(asked) == len(set(asked))
    assert all(parse_tag(t).stable for t in asked)


@given(st.text(max_size=150))
def test_parse_tag_never_raises(text):
    v = parse_tag(text)
    if v is not None:
        assert v.raw == text
        assert v.release
        assert all(n >= 0 for n in v.release)
        is_floating(text)


def test_tag_list_is_read_once_and_compares_like_a_list(monkeypatch):
    from bot import versions

    tags = versions.TagList(["1.0.0", "bad tag", "1.0.1", "1.0.0", "latest", "v2.0.0"])
    assert tags == ["1.0.0", "1.0.1", "latest", "v2.0.0"]  # invalid dropped, duplicates once
    assert "1.0.1" in tags and "bad tag" not in tags and len(tags) == 4 and tags[0] == "1.0.0"
    calls: list[str] = []
    real = versions.parse_tag
    monkeypatch.setattr(versions, "parse_tag", lambda t: calls.append(t) or real(t))
    for _ in range(3):
        assert versions.newest_patch(tags, "1.0.0") == "1.0.1"
        assert versions.newest_stable(tags) == "v2.0.0"
        assert versions.sort_tags(tags) == ["1.0.0", "1.0.1", "v2.0.0"]
    assert sorted(t for t in calls if t != "1.0.0") == ["1.0.1", "latest", "v2.0.0"]  # the list: once
    assert calls.count("1.0.0") == 1 + 3  # once in the list, and each time as the current tag
    plain = ["1.0.0", "1.0.1"]
    calls.clear()
    versions.newest_stable(plain)
    versions.newest_stable(plain)
    assert len(calls) == 4  # a plain list is parsed on every query
