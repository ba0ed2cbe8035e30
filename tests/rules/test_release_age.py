"""Minimum release age (security.md S17, Renovate's ``minimumReleaseAge``): a tag pushed minutes
ago is not proposed, the next candidate old enough is; the image's creation time comes from its
config blob, asked only for the chosen targets."""

from __future__ import annotations

import datetime as dt

from bot import pipeline, repoconfig, rules

from .fakes import FakeLookup, image_ref
from .test_builtin import REGISTRY

TABLE = rules.load()
NOW = dt.datetime.now(dt.UTC)


class AgedLookup(FakeLookup):
    """The fake registry, plus when each image was created (``Registry.created``)."""

    def __init__(self, created: dict[str, dt.datetime | None]) -> None:
        super().__init__(REGISTRY.repos)
        self.created_at = created

    def created(self, reference: str) -> dt.datetime | None:
        self.calls.append(("created", reference))
        return self.created_at.get(reference)


def _evaluate(lookup: FakeLookup, config: repoconfig.RepoConfig):
    ref = image_ref("bitnami/kubectl:1.31")
    (finding,) = pipeline.evaluate([ref], lookup, config, TABLE)
    return finding


TARGET = "docker.io/alpine/kubectl:1.33.4"
OLDER = "docker.io/alpine/kubectl:1.33.3"
CONFIG = repoconfig.load("cluster: {version: '1.33'}\n")
YOUNG, OLD = NOW - dt.timedelta(minutes=5), NOW - dt.timedelta(days=10)


def test_a_tag_pushed_minutes_ago_is_passed_over_for_the_next_one():
    """Renovate's internalChecksFilter "strict": the newest tag old enough is proposed, saying
    which newer one waits."""
    lookup = AgedLookup({TARGET: YOUNG, OLDER: OLD})
    f = _evaluate(lookup, CONFIG)
    assert f.fix is not None and f.fix.target == OLDER and f.fix.edits
    assert f.fix.advice == "newer 1.33.4 held back: published less than 3 days ago"
    assert [c for c in lookup.calls if c[0] == "created"] == [("created", TARGET), ("created", OLDER)]


def test_when_no_candidate_is_old_enough_nothing_is_proposed():
    lookup = AgedLookup({TARGET: YOUNG, OLDER: NOW - dt.timedelta(hours=1)})
    f = _evaluate(lookup, CONFIG)
    assert f.fix is None or not f.fix.edits
    # the advice names the newest one, as before there was a fallback
    assert f.advice is not None and "1.33.4 was published" in f.advice and "3 days" in f.advice
    assert [c[1] for c in lookup.calls if c[0] == "created"] == [TARGET, OLDER]


def test_an_old_enough_tag_is_proposed():
    lookup = AgedLookup({TARGET: NOW - dt.timedelta(days=4)})
    f = _evaluate(lookup, CONFIG)
    assert f.fix is not None and f.fix.target == TARGET and f.fix.edits and f.fix.advice is None
    assert [c for c in lookup.calls if c[0] == "created"] == [("created", TARGET)]  # the target only


def test_an_unknown_creation_time_does_not_hold_a_proposal():
    f = _evaluate(AgedLookup({TARGET: None}), CONFIG)
    assert f.fix is not None and f.fix.target == TARGET


def test_the_repository_chooses_the_age():
    lookup = AgedLookup({TARGET: NOW - dt.timedelta(hours=2), OLDER: NOW - dt.timedelta(hours=2)})
    short = repoconfig.load("cluster: {version: '1.33'}\nminimum_release_age: 1 hour\n")
    assert _evaluate(lookup, short).fix.target == TARGET  # type: ignore[union-attr]
    off = repoconfig.load("cluster: {version: '1.33'}\nminimum_release_age: '0'\n")
    assert _evaluate(lookup, off).fix.target == TARGET  # type: ignore[union-attr]
    held = _evaluate(lookup, CONFIG)
    assert held.fix is None or not held.fix.edits


def test_the_default_is_three_days():
    assert repoconfig.RepoConfig().options().min_release_age_s == 3 * 86400
    assert repoconfig.load("minimum_release_age: 12 hours\n").options().min_release_age_s == 12 * 3600
    assert rules.Options().min_release_age_s == 0  # the engine alone holds nothing back
