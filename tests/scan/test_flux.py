"""Flux objects: HelmRelease values read as Helm values, OCIRepository artifacts with a part per
written field, Kustomization and post-renderer images."""

from __future__ import annotations

from bot.edit import apply, plan
from bot.model import Skip, Source
from bot.scan import kubernetes
from tests.support.spans import parts, scan_data, scan_fixture

PLATFORM = "sha256:3b6d5b8c5f5e0e2d0c9e5f3b2a1d7c6e9f8a0b1c2d3e4f5a6b7c8d9e0f1a2b3c"


def test_oci_repositories_are_artifacts_with_their_own_source() -> None:
    _data, res = scan_fixture("flux/podinfo.yaml")
    podinfo, platform, tenants, kust = res.refs
    assert all(r.source is Source.FLUX for r in res.refs)
    assert [r.artifact for r in res.refs] == ["oci-artifact"] * 3 + ["image"]
    assert (podinfo.text, podinfo.reference) == (
        "ghcr.io/stefanprodan/manifests/podinfo:6.7.1",
        "ghcr.io/stefanprodan/manifests/podinfo:6.7.1",
    )
    assert parts(podinfo) == [
        ("repository", "oci://ghcr.io/stefanprodan/manifests/podinfo", 9, 8),
        ("tag", "6.7.1", 11, 10),
    ]
    assert (podinfo.context.kind, podinfo.context.name, podinfo.context.field) == (
        "OCIRepository", "podinfo", "spec.url")  # fmt: skip
    assert parts(platform) == [
        ("repository", "oci://ghcr.io/acme/platform/manifests", 20, 9),
        ("tag", "2024.11.0", 22, 10),
        ("digest", PLATFORM, 23, 13),
    ]
    assert platform.parts[0].quote == '"'
    assert platform.reference == f"ghcr.io/acme/platform/manifests:2024.11.0@{PLATFORM}"
    # A semver range is the controller's choice: skipped, never read as a tag.
    assert (tenants.skip, tenants.reference, tenants.text) == (
        Skip.TEMPLATED,
        None,
        "registry.example.com/tenants",
    )
    assert tenants.detail == "semver range '>=1.0.0 <2.0.0': the controller picks the tag"
    assert (kust.context.kind, kust.reference, parts(kust)) == (
        "Kustomization",
        "ghcr.io/stefanprodan/podinfo:6.7.1",
        [("name", "ghcr.io/stefanprodan/podinfo", 48, 13), ("tag", "6.7.1", 49, 15)],
    )


def test_oci_repository_tag_bump_edits_only_the_tag() -> None:
    data, res = scan_fixture("flux/podinfo.yaml")
    edits = plan(res.refs[0], "ghcr.io/stefanprodan/manifests/podinfo:6.7.2")
    assert [(e.old, e.new, e.span.line) for e in edits] == [("6.7.1", "6.7.2", 11)]
    assert apply(data, edits).count(b"6.7.2") == 1


def test_no_ref_means_latest_and_templated_url_is_skipped() -> None:
    text = (
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: OCIRepository\nmetadata: {name: a}\n"
        "spec:\n  url: oci://ghcr.io/org/a\n---\n"
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: OCIRepository\nmetadata: {name: b}\n"
        "spec:\n  url: oci://${REGISTRY}/org/b\n  ref: {tag: v1}\n"
    )
    a, b = scan_data("x.yaml", text.encode(), kubernetes).refs
    assert (a.reference, a.context.notes, parts(a)) == (
        "ghcr.io/org/a",
        ("no ref: the latest tag",),
        [("repository", "oci://ghcr.io/org/a", 5, 8)],
    )
    assert (b.skip, b.text) == (Skip.TEMPLATED, "${REGISTRY}/org/b:v1")


def test_helm_release_values_are_helm_values() -> None:
    _data, res = scan_fixture("flux/kube-prometheus-stack.yaml")
    got = [(r.line, r.column, r.text, r.reference, r.skip, r.context.field) for r in res.refs]
    assert got == [
        # Repository without a tag: the chart's default tag, reported rather than dropped.
        (20, 21, "prometheus-operator/prometheus-operator", None, Skip.CHART_DEFAULT,
         "spec.values.prometheusOperator.image"),
        (22, 21, "thanos/thanos:v0.37.2", "mirror.example.com/thanos/thanos:v0.37.2", None,
         "spec.values.prometheusOperator.thanosImage"),
        # A template expression as tag is a skip, never a tag.
        (27, 23, "kiwigrid/k8s-sidecar:{{ .Values.sidecarTag }}", None, Skip.TEMPLATED,
         "spec.values.grafana.sidecar.image"),
        (31, 23, "busybox:1.37.0", "mirror.example.com/busybox:1.37.0", None,
         "spec.values.grafana.initChownData.image"),
        (37, 23, "quay.io/prometheus/alertmanager:v0.27.0",
         "mirror.example.com/prometheus/alertmanager:v0.27.0", None,
         "spec.values.alertmanager.alertmanagerSpec.image"),
        # *Image strings are read as in values files.
        (41, 23, "quay.io/acme/ksm-sidecar", "quay.io/acme/ksm-sidecar", None,
         "spec.values.kube-state-metrics.customResourceState.sidecarImage"),
        (45, 19, "mirror.example.com/prometheus/node-exporter:v1.8.2",
         "mirror.example.com/prometheus/node-exporter:v1.8.2", None,
         "spec.postRenderers[0].kustomize.images[0]"),
    ]  # fmt: skip
    assert all(r.source is Source.FLUX and r.context.kind == "HelmRelease" for r in res.refs)
    first = res.refs[0]
    assert parts(first) == [
        ("repository", "prometheus-operator/prometheus-operator", 20, 21),
        ("registry", "mirror.example.com", 17, 22),
    ]
    assert (
        first.detail
        == "prometheus-operator/prometheus-operator: no tag written, the chart's appVersion is used"
    )


def test_flux_handler_face() -> None:
    """Flux is no finder of its own: the Kubernetes finder claims the file and the manifest
    dispatcher sends the kinds ``flux.handles`` to the Flux reader."""
    from bot.scan import claimant, flux

    assert not hasattr(flux, "claims") and not hasattr(flux, "find")
    assert claimant("clusters/prod/podinfo.yaml", b"apiVersion: source.toolkit.fluxcd.io/v1\n") is kubernetes
    assert flux.handles("helm.toolkit.fluxcd.io/v2", "HelmRelease")
    assert not flux.handles("image.toolkit.fluxcd.io/v1beta2", "ImagePolicy")
    data = b"apiVersion: source.toolkit.fluxcd.io/v1\nkind: OCIRepository\nspec:\n  url: oci://ghcr.io/o/m\n"
    refs = scan_data("f.yaml", data, kubernetes).refs
    assert [(r.text, r.source) for r in refs] == [("ghcr.io/o/m", Source.FLUX)]


def test_image_repository_is_a_repository_to_watch_not_an_image_to_pin() -> None:
    """Pinning `ImageRepository.spec.image` to a tag would break image automation: it is
    reported as repository-only (no reference, so no rule ever proposes a tag)."""
    _data, res = scan_fixture("flux/image-automation.yaml")
    watched, deployed = res.refs
    assert (watched.source, watched.skip, watched.reference) == (Source.FLUX, Skip.REPOSITORY_ONLY, None)
    assert parts(watched) == [("repository", "ghcr.io/stefanprodan/podinfo", 9, 10)]
    assert (watched.context.kind, watched.context.field) == ("ImageRepository", "spec.image")
    assert deployed.reference == "ghcr.io/stefanprodan/podinfo:6.7.0"
    assert deployed.source is Source.KUBERNETES


def test_helm_release_values_with_image_maps_under_subchart_keys() -> None:
    """The file never spells "image": the pre-filter still lets HelmRelease values through; a
    custom resource's `spec.values` is not Helm values."""
    _data, res = scan_fixture("flux/helmrelease-subcharts.yaml")
    assert [(r.source, r.reference, r.context.kind, r.context.field, parts(r)) for r in res.refs] == [
        (Source.FLUX, "docker.io/bitnami/redis:7.2.4", "HelmRelease", "spec.values.redis",
         [("repository", "bitnami/redis", 18, 19), ("tag", "7.2.4", 19, 12)]),
        (Source.FLUX, "docker.io/bitnami/redis-sentinel:7.2", "HelmRelease", "spec.values.sentinel",
         [("registry", "docker.io", 21, 17), ("repository", "bitnami/redis-sentinel", 22, 19),
          ("tag", "7.2", 23, 13)]),
    ]  # fmt: skip

    other = b"apiVersion: cache.example.com/v1\nkind: RedisCluster\nspec:\n  values:\n    redis:\n"
    other += b"      repository: bitnami/redis\n      tag: 7.2.4\n"
    assert scan_data("cache/redis.yaml", other, kubernetes).refs == []
