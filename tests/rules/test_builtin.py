"""Each built-in rule in rules/*.yaml against a fake registry: what it proposes, when it advises
instead, and that every target it proposes was verified."""

from __future__ import annotations

import dataclasses

import pytest

from bot import rules
from bot.model import Context, Source, Status
from bot.reference import parse
from bot.rules import Options

from .fakes import FakeLookup, digest, image_ref

TABLE = rules.load()

KUBECTL_TAGS = {"1.31.2": digest("k31.2"), "1.31.5": digest("k31.5"), "1.31": digest("k31.5"),
                "1.33.3": digest("k33.3"), "1.33.4": digest("k33.4"), "latest": digest("k33.4")}  # fmt: skip
REGISTRY = FakeLookup(
    {
        "docker.io/bitnami/kubectl": {"latest": digest("bk-latest")},
        "docker.io/bitnamilegacy/kubectl": {"1.31.4-debian-12-r3": digest("bl-k")},
        "docker.io/alpine/kubectl": KUBECTL_TAGS,
        "registry.k8s.io/kubectl": {"v1.33.4": digest("rk33.4"), "v1.33.2": digest("rk33.2")},
        "docker.io/bitnami/postgresql": {"latest": digest("bp-latest")},
        "docker.io/bitnamilegacy/postgresql": {"16.4.0-debian-12-r0": digest("bl-pg")},
        "registry.k8s.io/pause": {"3.9": digest("pause39")},
        "registry.k8s.io/busybox": {"1.27": digest("bb")},
        "docker.io/library/nginx": {
            "1.25.3-alpine": digest("n1"),
            "1.25.5-alpine": digest("n2"),
            "1.25.5": digest("n3"),
            "1.26.0-alpine": digest("n4"),
            "1.27.3": digest("n5"),
            "1.27": digest("n5"),
            "1.28.0-rc1": digest("n6"),
            "latest": digest("n5"),
            "mainline": digest("n5"),
        },
        "docker.io/library/python": {
            "3.12": digest("p12"),
            "3.12.6": digest("p6"),
            "3.12.7": digest("p7"),
            "3.12.7-slim": digest("p7s"),
            "3.12-slim": digest("p7s"),
            "3.13.0": digest("p13"),
        },
        "docker.io/library/postgres": {"16": digest("pg16"), "16.4": digest("pg16"), "16.3": digest("pg163")},
        "harbor.internal/dockerhub/library/nginx": {"1.27.3": digest("n5")},
    }
)


def decide(text: str, *, status: Status | None = None, opts: Options | None = None, lookup=REGISTRY, **kw):
    ref = image_ref(text, **kw)
    res = lookup.check(ref.reference)
    if status is not None:
        res = type(res)(res.reference, status, res.evidence)
    return rules.evaluate(ref, res, lookup, TABLE, opts or Options())


def verified(d: rules.Decision) -> None:
    """The proposed target resolves on the fake registry and the decision carries its digest."""
    assert d.target is not None
    res = REGISTRY.check(str(d.target))
    assert res.status is Status.OK
    assert d.digest == res.evidence.digest


def test_table_order_is_file_then_position():
    assert TABLE.ids[:4] == (
        "bitnami-kubectl-distroless",
        "bitnami-kubectl",
        "bitnami-retired",
        "k8s-registry-move",
    )
    assert TABLE.ids[-1] == "unreachable"


# --- bitnami-kubectl ----------------------------------------------------------------------------


def test_bitnami_kubectl_to_alpine_at_cluster_minor():
    d = decide("bitnami/kubectl:1.31", opts=Options(cluster_version="1.33"))
    assert d is not None and d.rule.id == "bitnami-kubectl"
    assert str(d.target) == "docker.io/alpine/kubectl:1.33.4"
    verified(d)


def test_bitnami_kubectl_uses_written_minor_without_cluster_version():
    d = decide("bitnamilegacy/kubectl:1.31.4-debian-12-r3")
    assert d is not None and str(d.target) == "docker.io/alpine/kubectl:1.31.5"


def test_bitnami_kubectl_advises_when_no_tag_of_the_minor():
    d = decide("bitnami/kubectl:1.29")
    assert d is not None and d.rule.id == "bitnami-kubectl" and d.target is None
    assert "docker.io/alpine/kubectl" in d.advice and "1.29" in d.advice


def test_bitnami_kubectl_latest_without_cluster_version_advises_setting_it():
    d = decide("bitnami/kubectl")
    assert d is not None and d.target is None
    assert "cluster.version" in d.advice


def test_bitnami_kubectl_distroless_only_when_opted_in_and_exec_only():
    opted = Options(cluster_version="1.33", enable=frozenset({"bitnami-kubectl-distroless"}))
    d = decide("bitnami/kubectl:1.31", opts=opted, needs_shell=False)
    assert d is not None and d.rule.id == "bitnami-kubectl-distroless"
    assert str(d.target) == "registry.k8s.io/kubectl:v1.33.4"
    for needs_shell in (True, None):  # a shell is needed, or we cannot know: alpine has one
        d = decide("bitnami/kubectl:1.31", opts=opted, needs_shell=needs_shell)
        assert d is not None and d.rule.id == "bitnami-kubectl"
    d = decide("bitnami/kubectl:1.31", opts=Options(cluster_version="1.33"), needs_shell=False)
    assert d is not None and d.rule.id == "bitnami-kubectl"


def test_bitnami_kubectl_target_that_does_not_verify_is_advice():
    flaky = FakeLookup(REGISTRY.repos, status={"docker.io/alpine/kubectl": Status.RATE_LIMITED})
    flaky.tags = REGISTRY.tags  # the listing worked, the manifest check did not
    d = decide("bitnami/kubectl:1.31", lookup=flaky, opts=Options(cluster_version="1.33"))
    assert d is not None and d.target is None
    assert "could not be verified" in d.advice and "rate-limited" in d.advice


def test_rule_params_can_be_overridden():
    opts = Options(cluster_version="1.33", params={"bitnami-kubectl": {"image": "registry.k8s.io/kubectl"}})
    d = decide("bitnami/kubectl:1.31", opts=opts)
    assert d is not None and str(d.target) == "registry.k8s.io/kubectl:v1.33.4"


# --- bitnami-retired ------------------------------------------------------------------------------


def test_bitnami_retired_moves_to_bitnamilegacy_same_tag_with_stop_gap_advice():
    d = decide("bitnami/postgresql:16.4.0-debian-12-r0")
    assert d is not None and d.rule.id == "bitnami-retired"
    assert str(d.target) == "docker.io/bitnamilegacy/postgresql:16.4.0-debian-12-r0"
    verified(d)
    assert "Stop-gap" in d.advice and "official or vendor image" in d.advice


def test_bitnami_retired_without_legacy_copy_advises():
    d = decide("bitnami/postgresql:15.1.0")
    assert d is not None and d.target is None
    assert "bitnamilegacy/postgresql:15.1.0 could not be verified" in d.advice


# --- k8s-registry-move ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new"),
    [("k8s.gcr.io/pause:3.9", "registry.k8s.io/pause:3.9"),
     ("gcr.io/google-containers/busybox:1.27", "registry.k8s.io/busybox:1.27"),
     ("gcr.io/google_containers/pause:3.9", "registry.k8s.io/pause:3.9")],
)  # fmt: skip
def test_k8s_registry_move(old, new):
    d = decide(old)
    assert d is not None and d.rule.id == "k8s-registry-move" and str(d.target) == new
    verified(d)


def test_k8s_registry_move_keeps_a_digest_the_new_registry_serves():
    d = decide(f"k8s.gcr.io/pause:3.9@{digest('pause39')}", status=Status.OK)
    assert d is not None and str(d.target) == f"registry.k8s.io/pause:3.9@{digest('pause39')}"


def test_k8s_registry_move_of_a_digest_only_reference_keeps_the_digest_or_proposes_nothing():
    """``k8s.gcr.io/pause@sha256:X`` moves to ``registry.k8s.io/pause@sha256:X`` when the new
    registry serves those bytes; never to whatever ``latest`` is there."""
    d = decide(f"k8s.gcr.io/pause@{digest('pause39')}", status=Status.OK)
    assert d is not None and d.rule.id == "k8s-registry-move"
    assert str(d.target) == f"registry.k8s.io/pause@{digest('pause39')}"
    assert d.digest == digest("pause39")
    lookup = FakeLookup({"registry.k8s.io/pause": {"latest": digest("other")}})
    d = decide(f"k8s.gcr.io/pause@{digest('pause39')}", status=Status.OK, lookup=lookup)
    assert d is None or d.target is None


def test_k8s_registry_move_missing_on_new_registry_advises():
    d = decide("k8s.gcr.io/defaultbackend:1.4")
    assert d is not None and d.target is None and "repo-missing" in d.advice


# --- floating tags --------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["nginx", "nginx:latest", "docker.io/library/nginx:latest"])
def test_latest_becomes_the_version_with_the_same_digest(text):
    d = decide(text)
    assert d is not None and d.rule.id == "floating-latest"
    assert str(d.target) == "docker.io/library/nginx:1.27.3"
    verified(d)


def test_latest_without_equivalent_becomes_newest_stable():
    tags = {"7.2.4": digest("r1"), "7.4.1": digest("r2"), "8.0.0-rc1": digest("r3"), "latest": digest("rX")}
    lookup = FakeLookup({"docker.io/library/redis": tags})
    d = decide("redis", lookup=lookup)
    assert d is not None and str(d.target) == "docker.io/library/redis:7.4.1"


def test_latest_pinned_by_digest_is_not_floating():
    assert decide(f"nginx@{digest('n5')}") is None


@pytest.mark.parametrize(
    ("text", "new"),
    [("python:3.12", "docker.io/library/python:3.12.7"),
     ("python:3.12-slim", "docker.io/library/python:3.12.7-slim"),
     ("postgres:16", "docker.io/library/postgres:16.4")],
)  # fmt: skip
def test_minor_only_tag_becomes_newest_patch_of_its_line(text, new):
    d = decide(text)
    assert d is not None and str(d.target) == new
    assert d.rule.id == ("floating-major" if text == "postgres:16" else "floating-minor")
    verified(d)


def test_minor_tag_with_no_longer_tags_is_left_alone():
    assert decide("postgres:16.4") is None


@pytest.mark.parametrize(
    "status", [Status.UNREACHABLE, Status.AUTH_REQUIRED, Status.RATE_LIMITED, Status.BLOCKED]
)
def test_floating_rules_do_not_fire_on_references_that_fail_to_resolve(status):
    """Unchecked (offline) is the one other status they take: see the offline tests below."""
    d = decide("nginx:latest", status=status)
    assert d is None or d.rule.id not in {"floating-latest", "floating-minor"}


# --- tag-missing / digest-missing -----------------------------------------------------------------


def test_tag_missing_takes_newest_patch_of_same_minor_and_variant():
    d = decide("nginx:1.25.9-alpine")
    assert d is not None and d.rule.id == "tag-missing"
    assert str(d.target) == "docker.io/library/nginx:1.25.5-alpine"
    verified(d)


def test_tag_missing_without_candidates_advises():
    d = decide("nginx:1.19.1")
    assert d is not None and d.rule.id == "tag-missing" and d.target is None
    assert "pick a supported tag" in d.advice


def test_tag_missing_with_pin_digest_writes_the_digest():
    d = decide("nginx:1.25.9-alpine", opts=Options(pin_digest=True))
    assert d is not None and str(d.target) == f"docker.io/library/nginx:1.25.5-alpine@{digest('n2')}"


def test_digest_missing_repins_the_same_tag():
    d = decide(f"nginx:1.27.3@{digest('gone')}")
    assert d is not None and d.rule.id == "digest-missing"
    assert str(d.target) == f"docker.io/library/nginx:1.27.3@{digest('n5')}"


def test_digest_missing_whose_tag_is_gone_too_says_what_to_do():
    d = decide(f"nginx:1.19.0@{digest('gone')}")
    assert d is not None and d.rule.id == "digest-missing" and d.target is None
    assert "by hand" in d.advice and "tag-missing" in d.advice


def test_digest_missing_without_tag_advises():
    d = decide(f"nginx@{digest('gone')}")
    assert d is not None and d.rule.id == "digest-missing-untagged" and d.target is None


# --- mirror ---------------------------------------------------------------------------------------


MIRROR = Options(mirror={"docker.io": "harbor.internal/dockerhub"}, enable=frozenset({"mirror"}))


def test_mirror_rewrites_when_the_mirror_has_the_image():
    d = decide("nginx:1.27.3", opts=MIRROR)
    assert d is not None and d.rule.id == "mirror"
    assert str(d.target) == "harbor.internal/dockerhub/library/nginx:1.27.3"


def test_mirror_leaves_images_it_lacks_alone():
    assert decide("postgres:16.3", opts=MIRROR) is None


def test_mirror_is_opt_in():
    opts = Options(mirror={"docker.io": "harbor.internal/dockerhub"})
    assert decide("nginx:1.27.3", opts=opts) is None


# --- advice ---------------------------------------------------------------------------------------


def test_auth_required_names_the_pull_secret_for_kubernetes():
    lookup = FakeLookup({}, status={"ghcr.io": Status.AUTH_REQUIRED})
    d = decide("ghcr.io/acme/private:1.0", lookup=lookup)
    assert d is not None and d.rule.id == "auth-required" and d.target is None
    assert "imagePullSecrets" in d.advice and "ghcr.io" in d.advice


@pytest.mark.parametrize(
    ("source", "needle"),
    [(Source.COMPOSE, "docker login ghcr.io"), (Source.GITHUB_ACTIONS, "credentials:"),
     (Source.GITLAB_CI, "DOCKER_AUTH_CONFIG")],
)  # fmt: skip
def test_auth_advice_is_phrased_for_the_file_kind(source, needle):
    lookup = FakeLookup({}, status={"ghcr.io": Status.AUTH_FAILED})
    d = decide("ghcr.io/acme/private:1.0", lookup=lookup, source=source)
    assert d is not None and d.rule.id == "auth-failed" and needle in d.advice


def test_repo_missing_and_unreachable_advise():
    d = decide("acme/gone:1.0")
    assert d is not None and d.rule.id == "repo-missing" and "docker.io/acme/gone" in d.advice
    lookup = FakeLookup({}, status={"registry.example.com": Status.UNREACHABLE})
    d = decide("registry.example.com/x:1", lookup=lookup)
    assert d is not None and d.rule.id == "unreachable" and "registry.example.com" in d.advice


def test_ok_pinned_reference_gets_no_rule():
    assert decide("nginx:1.27.3") is None


# --- engine behaviour -----------------------------------------------------------------------------


def test_disabled_rule_falls_through_to_the_next():
    d = decide("bitnami/kubectl:1.31", opts=Options(disable=frozenset({"bitnami-kubectl"})))
    assert d is not None and d.rule.id == "bitnami-retired"
    # bitnamilegacy has no :1.31, so this is advice, never a made-up target
    assert d.target is None and "bitnamilegacy/kubectl:1.31 could not be verified" in d.advice


def test_offline_replace_is_advice_never_an_unverified_target():
    ref = image_ref("k8s.gcr.io/pause:3.9")
    d = rules.evaluate(ref, None, None, TABLE, Options())
    assert d is not None and d.target is None and "offline" in d.advice


def test_names_never_come_from_the_registry():
    """A registry listing hostile tags cannot steer the target anywhere but the rule's name."""
    hostile = FakeLookup({
        "docker.io/alpine/kubectl": {"1.33.9/../../evil": digest("e"), "1.33.1 ": digest("e2"),
                                     "1.33.2": digest("ok")},
    })  # fmt: skip
    d = decide("bitnami/kubectl:1.31", lookup=hostile, opts=Options(cluster_version="1.33"))
    assert d is not None and str(d.target) == "docker.io/alpine/kubectl:1.33.2"
    assert parse(str(d.target)).name == "docker.io/alpine/kubectl"


# --- note vs advise -----------------------------------------------------------------------------


def test_a_fix_that_was_made_carries_no_fallback_advice():
    d = decide("bitnami/kubectl:1.31", opts=Options(cluster_version="1.31"))
    assert str(d.target) == "docker.io/alpine/kubectl:1.31.5"
    assert d.advice is None  # "no such tag was found" is only for when none was


def test_a_note_goes_with_the_fix_it_qualifies():
    d = decide("docker.io/bitnami/postgresql:16.4.0-debian-12-r0")
    assert str(d.target) == "docker.io/bitnamilegacy/postgresql:16.4.0-debian-12-r0"
    assert d.advice is not None and d.advice.startswith("Stop-gap only")


def test_a_note_needs_a_replace():
    with pytest.raises(rules.RuleError, match="note"):
        rules.load_text(
            "rules:\n- id: x\n  why: y\n  match: {status: tag-missing}\n  advise: a\n  note: b\n", "t.yaml"
        )


def test_bitnami_kubectl_is_not_swapped_where_files_are_copied_out_of_it():
    """`COPY --from=bitnami/kubectl /opt/bitnami/...`: alpine/kubectl has other paths, so only the
    frozen copy of the same image (bitnami-retired) keeps that build working."""
    ref = image_ref("bitnami/kubectl:1.31.4-debian-12-r3", source=Source.DOCKERFILE)
    ref = dataclasses.replace(ref, context=Context(field="COPY --from"))
    lookup = FakeLookup({"docker.io/bitnamilegacy/kubectl": {"1.31.4-debian-12-r3": digest("bl-k")},
                         "docker.io/alpine/kubectl": KUBECTL_TAGS})  # fmt: skip
    d = rules.evaluate(ref, lookup.check(ref.reference), lookup, TABLE, Options(cluster_version="1.31"))
    assert d is not None and d.rule.id == "bitnami-retired"
    assert str(d.target) == "docker.io/bitnamilegacy/kubectl:1.31.4-debian-12-r3"


def test_forbidden_and_blocked_get_advice_that_fits_what_happened():
    """403 / credentials without access is not "refused without credentials", and a host the
    network guard refuses was never contacted, so "could not be reached" would mislead."""
    lookup = FakeLookup({}, status={"ghcr.io": Status.FORBIDDEN, "10.1.2.3:5000": Status.BLOCKED})
    d = decide("ghcr.io/acme/private:1.0", lookup=lookup)
    assert d is not None and d.target is None
    assert "without credentials" not in d.advice
    assert "denied" in d.advice and "imagePullSecrets" in d.advice
    d = decide("10.1.2.3:5000/acme/app:1.0", lookup=lookup)
    assert d is not None and d.target is None
    assert "could not be reached" not in d.advice
    assert "network" in d.advice and "allow" in d.advice


# --- offline: the rules that need no registry answer ----------------------------------------------


@pytest.mark.parametrize(
    ("written", "rule", "says"),
    [
        ("gitea/gitea:latest", "floating-latest", "would pin this tag"),
        ("gitea/gitea", "floating-latest", "would pin this tag"),
        ("postgres:16", "floating-major", "would pin this tag"),
        ("python:3.12", "floating-minor", "would pin this tag"),
        ("bitnami/redis:7.2", "bitnami-retired", "would move this to docker.io/bitnamilegacy/redis"),
        ("k8s.gcr.io/pause:3.9", "k8s-registry-move", "would move this to registry.k8s.io/pause"),
    ],
)
def test_offline_applies_the_rules_that_need_no_registry_answer(written: str, rule: str, says: str):
    d = rules.evaluate(image_ref(written), None, None, TABLE, Options())
    assert d is not None and d.rule.id == rule and d.target is None
    assert d.advice is not None and d.advice.startswith(says) and "not verified (offline)" in d.advice


@pytest.mark.parametrize("written", ["redis:7.4.1", "redis:7.4.1-alpine", "nginx@sha256:" + "a" * 64])
def test_offline_leaves_pinned_references_alone(written: str):
    assert rules.evaluate(image_ref(written), None, None, TABLE, Options()) is None


def test_offline_never_applies_rules_about_registry_failures():
    """tag-missing, repo-missing, auth-required...: only the registry can say so."""
    for r in TABLE.rules:
        if r.match.statuses and Status.OK not in r.match.statuses:
            assert Status.UNCHECKED not in r.match.statuses, r.id


# --- issue 16: what should float ------------------------------------------------------------------


def test_dockerfile_syntax_directive_keeps_the_floating_major_docker_recommends():
    """`# syntax=docker/dockerfile:1` is Docker's recommended form: BuildKit picks up 1.x fixes."""
    lookup = FakeLookup({"docker.io/docker/dockerfile": {"1": digest("df1"), "1.10.0": digest("df1"),
                                                         "1.9.0": digest("df19")}})  # fmt: skip
    ref = image_ref("docker/dockerfile:1", source=Source.DOCKERFILE, path="Dockerfile")
    ref = dataclasses.replace(ref, context=Context(kind="directive", name="syntax", field="# syntax"))
    assert rules.evaluate(ref, lookup.check(ref.reference), lookup, TABLE, Options()) is None
    # the same tag in a FROM line still floats and is pinned
    from_ref = dataclasses.replace(ref, context=Context(kind="stage", field="FROM"))
    d = rules.evaluate(from_ref, lookup.check(ref.reference), lookup, TABLE, Options())
    assert d is not None and str(d.target) == "docker.io/docker/dockerfile:1.10.0"


def test_a_major_only_tag_is_described_as_major_only():
    d = decide("postgres:16")
    assert d is not None and d.rule.id == "floating-major"
    assert "major-only" in d.rule.why and "minor-only" not in d.rule.why
    d = decide("python:3.12")
    assert d is not None and d.rule.id == "floating-minor"
    assert "minor-only" in d.rule.why and "major" not in d.rule.why
