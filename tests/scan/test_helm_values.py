"""Helm values: split image maps with a Part per written scalar, the chart's appVersion for an
empty tag, global.imageRegistry, flow style, numeric tags, aliases."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.model import ImageRef, Role, Skip, Source
from bot.scan import LocalRepo, ScanResult, helm_values, kubernetes, scan_file
from tests.support.spans import scan_data

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "scan"
DIGEST = "sha256:5f1a7a6e6f25e3b0b4e5e5d0f0a7d5bd0e6a4f5f8a8dd7e3c9e1f6f7a1b2c3d4"


def scan(rel: str, data: bytes | None = None) -> ScanResult:
    data = (FIX / rel).read_bytes() if data is None else data
    res = scan_data(rel, data, helm_values, FIX, at_first_part=True, all_raw=True)
    assert res.errors == []
    return res


def parts(ref: ImageRef) -> list[tuple[Role, str, int, int]]:
    return [(p.role, p.text, p.span.line, p.span.column) for p in ref.parts]


def test_bitnami_values() -> None:
    refs = scan("helm/postgresql/values.yaml").refs
    assert all(r.source is Source.HELM_VALUES for r in refs)
    got = [(r.line, r.column, r.text, r.reference, r.skip, r.context.field) for r in refs]
    assert got == [
        (9, 13, "docker.io/bitnami/postgresql:17.2.0-debian-12-r5",
         "docker.io/bitnami/postgresql:17.2.0-debian-12-r5", None, "image"),
        (19, 15, f"docker.io/bitnami/os-shell:12-debian-12-r34@{DIGEST}",
         f"docker.io/bitnami/os-shell@{DIGEST}", None, "volumePermissions.image"),
        (27, 15, "docker.io/bitnami/postgres-exporter", "docker.io/bitnami/postgres-exporter:17.2.0",
         None, "metrics.image"),
        (33, 25, "bitnami/pgbouncer:1.23", "docker.io/bitnami/pgbouncer:1.23", None, "backup.cronjob.image"),
        (38, 17, "acme/legacy:1.10", "docker.io/acme/legacy:1.10", None, "legacy.image"),
        (42, 14, "busybox:1.36", "docker.io/library/busybox:1.36", None, "shell.initImage"),
        (47, 11, "quay.io/acme/sidecar:v3.1.0", "quay.io/acme/sidecar:v3.1.0", None, "common.image"),
    ]  # fmt: skip


def test_one_part_per_written_scalar() -> None:
    main, perms, metrics, flow, legacy, inline, aliased = scan("helm/postgresql/values.yaml").refs
    assert parts(main) == [
        (Role.REGISTRY, "docker.io", 9, 13),
        (Role.REPOSITORY, "bitnami/postgresql", 10, 15),
        (Role.TAG, "17.2.0-debian-12-r5", 11, 8),
        (Role.DIGEST, "", 12, 12),  # digest: "" is written: a fix can fill it in place
    ]
    assert [p.quote for p in main.parts] == ["", "", "", '"']
    assert [p.role for p in perms.parts] == [Role.REGISTRY, Role.REPOSITORY, Role.TAG, Role.DIGEST]
    assert parts(flow) == [(Role.REPOSITORY, "bitnami/pgbouncer", 33, 25), (Role.TAG, "1.23", 33, 50)]
    assert parts(inline) == [(Role.IMAGE, "busybox:1.36", 42, 14)]
    assert parts(aliased) == [(Role.NAME, "quay.io/acme/sidecar", 47, 11), (Role.TAG, "v3.1.0", 48, 14)]
    assert metrics.parts[-1].role is Role.TAG and metrics.parts[-1].text == ""
    assert legacy.parts[-1].text == "1.10"


def test_notes_explain_the_effective_reference() -> None:
    main, perms, metrics, _flow, legacy, _inline, _aliased = scan("helm/postgresql/values.yaml").refs
    assert main.context.notes == ()  # global.imageRegistry is "" in this chart: not applied
    assert perms.context.notes == (
        "tag 12-debian-12-r34 is ignored: the digest wins (bitnami common.images)",
    )
    assert metrics.context.notes == ("tag from appVersion 17.2.0 in helm/postgresql/Chart.yaml",)
    assert legacy.context.notes == ("unquoted tag 1.10 is read by Helm as the number 1.1: quote it",)


def test_global_registry_applied_and_no_chart_means_chart_default() -> None:
    api, worker = scan("helm/standalone/values-prod.yaml").refs
    assert (api.line, api.column, api.text, api.reference) == (4, 15, "acme/api", None)
    assert api.skip is Skip.CHART_DEFAULT
    assert api.detail == "acme/api: no tag written, the chart's appVersion is used"
    assert (worker.text, worker.reference) == (
        "ghcr.io/acme/worker:2.0.1",
        "registry.internal.example.com/acme/worker:2.0.1",
    )
    assert worker.context.notes == (
        "global.imageRegistry registry.internal.example.com applied (overrides registry ghcr.io)",
    )
    # The overridden registry is not a part; the global one is, after the map's own parts.
    assert parts(worker) == [
        (Role.REPOSITORY, "acme/worker", 9, 17),
        (Role.TAG, "2.0.1", 10, 11),
        (Role.REGISTRY, "registry.internal.example.com", 2, 18),
    ]


def test_chart_yaml_one_directory_up(tmp_path: Path) -> None:
    (tmp_path / "chart" / "ci").mkdir(parents=True)
    (tmp_path / "chart" / "Chart.yaml").write_text(
        "apiVersion: v2\nname: x\nversion: 1.0.0\nappVersion: 2.5\n"
    )
    data = b"image:\n  repository: acme/x\n"
    (tmp_path / "chart" / "ci" / "values-ci.yaml").write_bytes(data)
    res = scan_file("chart/ci/values-ci.yaml", data, LocalRepo(tmp_path), helm_values)
    (ref,) = res.refs
    assert (ref.reference, ref.skip) == ("docker.io/acme/x:2.5", None)
    assert ref.context.notes == ("tag from appVersion 2.5 in chart/Chart.yaml",)


def test_non_string_and_templated_fields() -> None:
    data = (
        b"a:\n  image:\n    repository: acme/a\n    tag: true\n"
        b"b:\n  image:\n    repository: '{{ .Values.repo }}'\n    tag: 1.0.0\n"
        b"c:\n  image:\n    pullPolicy: Always\n"  # no repository: not an image
        b"d:\n  image:\n    repository: [x]\n"
    )
    a, b, d = scan("values.yaml", data).refs
    assert (a.line, a.column, a.skip, a.detail) == (
        3,
        17,
        Skip.NON_STRING,
        "tag is not a string: scalar (bool)",
    )
    assert (b.line, b.skip) == (7, Skip.TEMPLATED)
    assert (d.skip, d.detail) == (Skip.NON_STRING, "repository is a list")
    assert parts(d) == [(Role.REPOSITORY, "[x]", 14, 17)]


def test_claims_by_name_and_content() -> None:
    for path in ("values.yaml", "charts/x/values-prod.yml", "env/prod-values.yaml", "x/values/eu.yaml"):
        assert helm_values.claims(path, b""), path
    assert helm_values.claims("overrides.yaml", b"# mine\nimage:\n  repository: acme/x\n  tag: 1\n")
    assert helm_values.claims("site.yaml", b"global:\n  imageRegistry: quay.io\n")
    assert not helm_values.claims("deploy.yaml", b"apiVersion: v1\nkind: Pod\nimage:\n  repository: x\n")
    assert not helm_values.claims("deploy.yaml", b"kind: Pod\n")
    assert not helm_values.claims("values.json", b"")


def test_kube_prometheus_stack_blocks_without_tag_take_the_chart_default() -> None:
    refs = scan("helm/kube-prometheus-stack/values.yaml").refs
    got = [(r.line, r.column, r.text, r.reference, r.skip, r.context.field) for r in refs]
    assert got == [
        (8, 19, "registry.k8s.io/ingress-nginx/kube-webhook-certgen:v1.5.1",
         "registry.k8s.io/ingress-nginx/kube-webhook-certgen:v1.5.1", None,
         "prometheusOperator.admissionWebhooks.patch.image"),
        # `tag: ""` and no Chart.yaml beside the file: reported with the repository, not dropped.
        (16, 15, "quay.io/prometheus-operator/prometheus-operator", None, Skip.CHART_DEFAULT,
         "prometheusOperator.image"),
        (26, 17, "quay.io/prometheus-operator/prometheus-config-reloader", None, Skip.CHART_DEFAULT,
         "prometheusOperator.prometheusConfigReloader.image"),
        (36, 15, "quay.io/thanos/thanos:v0.37.2", "quay.io/thanos/thanos:v0.37.2", None,
         "prometheusOperator.thanosImage"),
    ]  # fmt: skip
    assert parts(refs[1]) == [
        (Role.REGISTRY, "quay.io", 16, 15),
        (Role.REPOSITORY, "prometheus-operator/prometheus-operator", 17, 17),
        (Role.TAG, "", 19, 11),
        (Role.DIGEST, "", 20, 11),  # sha: "" is written: `pin: digest` can fill it in place
    ]
    assert (
        refs[1].detail
        == "prometheus-operator/prometheus-operator: no tag written, the chart's appVersion is used"
    )


def test_image_tables_and_prefixed_pairs() -> None:
    data = (
        b"images:\n  controller:\n    registry: ghcr.io\n    repository: acme/ctl\n    tag: v1\n"
        b"  logo:\n    name: logo.png\nworker:\n  imageRepository: acme/worker\n  imageTag: '1.10'\n"
    )
    refs = scan("values.yaml", data).refs
    assert [(r.text, r.reference, parts(r)) for r in refs] == [
        ("ghcr.io/acme/ctl:v1", "ghcr.io/acme/ctl:v1",
         [(Role.REGISTRY, "ghcr.io", 3, 15), (Role.REPOSITORY, "acme/ctl", 4, 17), (Role.TAG, "v1", 5, 10)]),
        ("acme/worker:1.10", "docker.io/acme/worker:1.10",
         [(Role.REPOSITORY, "acme/worker", 9, 20), (Role.TAG, "1.10", 10, 14)]),
    ]  # fmt: skip


SHA_A = "aaaaaaaa0123456789abcdef0123456789abcdef0123456789abcdefbbbbbbbb"
SHA_B = "4e" * 32


def test_sha_is_the_hex_digest_rendered_after_the_tag() -> None:
    operator, reloader, webhook, mistaken = scan("helm/pinned-sha/values.yaml").refs
    quay = "quay.io/prometheus-operator"
    got = [(r.line, r.column, r.text, r.reference, r.skip) for r in (operator, reloader, webhook)]
    assert got == [
        (5, 15, f"{quay}/prometheus-operator:v0.79.2@sha256:{SHA_A}",
         f"{quay}/prometheus-operator:v0.79.2@sha256:{SHA_A}", None),
        # no tag: the chart renders appVersion, the digest still pins it
        (12, 15, f"{quay}/prometheus-config-reloader@sha256:{SHA_B}",
         f"{quay}/prometheus-config-reloader:v0.79.2@sha256:{SHA_B}", None),
        # sha: "" is not a pin
        (19, 15, "registry.k8s.io/ingress-nginx/kube-webhook-certgen:v1.5.1",
         "registry.k8s.io/ingress-nginx/kube-webhook-certgen:v1.5.1", None),
    ]  # fmt: skip
    assert parts(operator) == [
        (Role.REGISTRY, "quay.io", 5, 15),
        (Role.REPOSITORY, "prometheus-operator/prometheus-operator", 6, 17),
        (Role.TAG, "v0.79.2", 7, 10),
        (Role.DIGEST, SHA_A, 8, 11),  # the hex as written, inside its quotes
    ]
    assert [p.quote for p in operator.parts] == ["", "", "", '"']
    assert parts(reloader)[-1] == (Role.DIGEST, SHA_B, 16, 10)
    assert parts(webhook)[-1] == (Role.DIGEST, "", 22, 11)
    data = (FIX / "helm/pinned-sha/values.yaml").read_bytes()
    for p in operator.parts + reloader.parts:
        assert data[p.span.start : p.span.end].decode() == p.text
    hex_note = "sha is the digest's hex without sha256:"
    assert operator.context.notes == (hex_note,)  # no "tag is ignored": the chart keeps both
    assert reloader.context.notes == (hex_note, "tag from appVersion v0.79.2 in helm/pinned-sha/Chart.yaml")
    assert webhook.context.notes == (hex_note,)
    # `sha: sha256:...` renders `@sha256:sha256:...`, which nothing can pull
    assert (mistaken.reference, mistaken.skip) == (None, Skip.INVALID)
    assert mistaken.text == f"acme/tool:1.0@sha256:sha256:{SHA_A}"


def test_image_maps_under_keys_that_do_not_name_an_image() -> None:
    refs = scan("helm/bare-maps/values.yaml").refs
    got = [(r.line, r.column, r.reference, r.context.field, parts(r)) for r in refs]
    assert got == [
        (3, 15, "docker.io/bitnami/redis:7.2.4", "redis",
         [(Role.REPOSITORY, "bitnami/redis", 3, 15), (Role.TAG, "7.2.4", 4, 8)]),
        (6, 21, "docker.io/library/busybox:1.36", "busybox",
         [(Role.REGISTRY, "docker.io", 6, 21), (Role.REPOSITORY, "library/busybox", 6, 44),
          (Role.TAG, "1.36", 6, 67)]),
        (9, 17, "docker.io/bitnami/postgresql:16.4.0", "postgresql.image",
         [(Role.REPOSITORY, "bitnami/postgresql", 9, 17), (Role.TAG, "16.4.0", 10, 10)]),
        (13, 17, "quay.io/prometheuscommunity/postgres-exporter:v0.15.0", "postgresql.metrics.exporter",
         [(Role.REGISTRY, "quay.io", 13, 17),
          (Role.REPOSITORY, "prometheuscommunity/postgres-exporter", 14, 19), (Role.TAG, "v0.15.0", 15, 12)]),
    ]  # fmt: skip
    # Nothing from the chart repository and the backup location below them.
    assert all(r.line < 17 for r in refs)


@pytest.mark.parametrize(
    ("not_an_image", "an_image"),
    [
        # a chart repository: a URL, and `version`
        ("repository: https://charts.example.com/stable\n  tag: '1.0'",
         "repository: charts.example.com/stable\n  tag: '1.0'"),
        ("repository: acme/stable\n  tag: '1.0'\n  version: 1.2.3", "repository: acme/stable\n  tag: '1.0'"),
        # a git or download source
        ("repository: acme/config\n  tag: v1\n  path: deploy/", "repository: acme/config\n  tag: v1"),
        ("repository: acme/config\n  tag: v1\n  url: https://x.example.com",
         "repository: acme/config\n  tag: v1"),
        # the tag must be one Docker accepts, and written
        ("repository: acme/app\n  tag: ''", "repository: acme/app\n  tag: '1'"),
        ("repository: acme/app\n  tag: '{{ .Chart.AppVersion }}'", "repository: acme/app\n  tag: '1'"),
        ("repository: acme/app\n  tag: [1]", "repository: acme/app\n  tag: 1"),
        # the repository must be a plain image name
        ("repository: My App\n  tag: '1'", "repository: my-app\n  tag: '1'"),
        ("repository: acme/app:2\n  tag: '1'", "repository: acme/app\n  tag: '1'"),
        ("repository: ${REPO}\n  tag: '1'", "repository: acme/app\n  tag: '1'"),
    ],
)  # fmt: skip
def test_a_bare_map_must_plainly_be_an_image(not_an_image: str, an_image: str) -> None:
    def found(body: str, key: str = "sessions") -> list[str | None]:
        return [r.reference for r in scan("values.yaml", f"{key}:\n  {body}\n".encode()).refs]

    assert found(not_an_image) == []
    (ref,) = found(an_image)
    assert ref is not None
    assert found(an_image, key="gitSync") == found(an_image, key="chartSource") == []


def test_bare_maps_only_in_values() -> None:
    """The same map in a Kubernetes object or in YAML that is not Helm values is not an image."""
    body = b"redis:\n  repository: bitnami/redis\n  tag: 7.2.4\n"
    assert [r.reference for r in scan("values.yaml", body).refs] == ["docker.io/bitnami/redis:7.2.4"]
    obj = b"apiVersion: cache.example.com/v1\nkind: RedisCluster\nspec:\n  " + body.replace(
        b"\n  ", b"\n    "
    )
    assert scan("values.yaml", obj).refs == []
    for data in (obj, body):
        assert scan_file("deploy/redis.yaml", data, LocalRepo(FIX), kubernetes).refs == []


def test_a_map_writing_only_a_tag_is_skipped_with_the_charts_repository_named() -> None:
    """The repository comes from the chart this file overrides: reported as skipped, never
    dropped (an empty tag pins nothing, and says so); a table of maps is read as before."""
    refs = scan("helm/tag-only/values.yaml").refs
    got = [(r.line, r.text, r.reference, r.skip, r.context.field) for r in refs]
    assert got == [
        (3, "tag: 1.27.3", None, Skip.REPOSITORY_FROM_CHART, "image"),
        (6, "tag: v0.15.0", None, Skip.REPOSITORY_FROM_CHART, "metrics.image"),
        (10, "busybox:1.36", "docker.io/library/busybox:1.36", None, "sidecars.image.busybox"),
        (13, 'tag: ""', None, Skip.REPOSITORY_FROM_CHART, "backup.image"),
    ]
    assert parts(refs[0]) == [(Role.TAG, "1.27.3", 3, 9)]
    assert refs[0].detail == "tag: 1.27.3 written; the repository is the chart's default"
    assert refs[3].detail == 'tag: "": nothing pinned, the chart\'s default image is used'


def test_a_tag_only_map_outside_helm_values_is_not_an_image() -> None:
    text = b"apiVersion: v1\nkind: ConfigMap\ndata: {}\nimage:\n  tag: 1.0\n"
    res = scan_data("k8s/cm.yaml", text, kubernetes, FIX)
    assert res.refs == []
