"""Minimum release age (security.md S17, Renovate's ``minimumReleaseAge``): a tag pushed minutes
ago is not proposed; the image's creation time comes from its config blob, asked only for the
chosen target."""

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
CONFIG = repoconfig.load("cluster: {version: '1.33'}\n")


def test_a_tag_pushed_minutes_ago_is_not_proposed():
    lookup = AgedLookup({TARGET: NOW - dt.timedelta(minutes=5)})
    f = _evaluate(lookup, CONFIG)
    assert f.fix is None or not f.fix.edits
    assert f.advice is not None and "minimum release age" in f.advice and "3 days" in f.advice
    assert [c for c in lookup.calls if c[0] == "created"] == [("created", TARGET)]  # the target only


def test_an_old_enough_tag_is_proposed():
    f = _evaluate(AgedLookup({TARGET: NOW - dt.timedelta(days=4)}), CONFIG)
    assert f.fix is not None and f.fix.target == TARGET and f.fix.edits


def test_an_unknown_creation_time_does_not_hold_a_proposal():
    f = _evaluate(AgedLookup({TARGET: None}), CONFIG)
    assert f.fix is not None and f.fix.target == TARGET


def test_the_repository_chooses_the_age():
    lookup = AgedLookup({TARGET: NOW - dt.timedelta(hours=2)})
    short = repoconfig.load("cluster: {version: '1.33'}\nminimum_release_age: 1 hour\n")
    assert _evaluate(lookup, short).fix is not None
    off = repoconfig.load("cluster: {version: '1.33'}\nminimum_release_age: '0'\n")
    assert _evaluate(lookup, off).fix is not None
    assert _evaluate(lookup, CONFIG).fix is None or not _evaluate(lookup, CONFIG).fix.edits


def test_the_default_is_three_days():
    assert repoconfig.RepoConfig().options().min_release_age_s == 3 * 86400
    assert repoconfig.load("minimum_release_age: 12 hours\n").options().min_release_age_s == 12 * 3600
    assert rules.Options().min_release_age_s == 0  # the engine alone holds nothing back
