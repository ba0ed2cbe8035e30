"""Argo CD Applications and ApplicationSets: Helm valuesObject, the helm.values string mapped back
into the file, helm.parameters pairs, kustomize.images strings."""

from __future__ import annotations

from pathlib import Path

from bot.model import ImageRef, Role, Source
from bot.scan import LocalRepo, ScanResult, argocd, claimant, kubernetes, scan_file
from tests.support.spans import scan_data

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "scan"


def scan(rel: str, data: bytes | None = None) -> ScanResult:
    data = (FIX / rel).read_bytes() if data is None else data
    res = scan_data(rel, data, kubernetes, FIX, at_first_part=True, exact=True)
    assert res.errors == []
    res.refs = [r for r in res.refs if r.chart is None]  # chart uses: tests/scan/test_charts.py
    return res


def parts(ref: ImageRef) -> list[tuple[Role, str, int, int, bool]]:
    return [(p.role, p.text, p.span.line, p.span.column, p.raw) for p in ref.parts]


def test_application_and_applicationset() -> None:
    refs = scan("argocd/applications.yaml").refs
    assert all(r.source is Source.ARGOCD for r in refs)
    got = [(r.line, r.column, r.text, r.reference, r.context.kind, r.context.field) for r in refs]
    assert got == [
        (15, 21, "docker.io/grafana/grafana:11.2.2", "docker.io/grafana/grafana:11.2.2", "Application",
         "spec.source.helm.valuesObject.image"),
        (20, 25, "quay.io/kiwigrid/k8s-sidecar:1.28.0", "quay.io/kiwigrid/k8s-sidecar:1.28.0", "Application",
         "spec.source.helm.valuesObject.sidecar.image"),
        (25, 25, "busybox:1.36.1", "docker.io/library/busybox:1.36.1", "Application",
         "spec.source.helm.values.initChownData.image"),
        (27, 34, "curlimages/curl:8.9.1", "docker.io/curlimages/curl:8.9.1", "Application",
         "spec.source.helm.values.downloadDashboardsImage"),
        (30, 18, "grafana/grafana-image-renderer:3.11.6", "docker.io/grafana/grafana-image-renderer:3.11.6",
         "Application", "spec.source.helm.parameters[0].value"),
        (59, 17, "gcr.io/heptio-images/ks-guestbook-demo:0.2", "gcr.io/heptio-images/ks-guestbook-demo:0.2",
         "ApplicationSet", "spec.template.spec.sources[0].kustomize.images[0]"),
        (60, 27, "ghcr.io/acme/frontend:1.4.0", "ghcr.io/acme/frontend:1.4.0", "ApplicationSet",
         "spec.template.spec.sources[0].kustomize.images[1]"),
        (65, 44, "ghcr.io/acme/backend:5.0", "ghcr.io/acme/backend:5.0", "ApplicationSet",
         "spec.template.spec.sources[1].helm.values.image"),
    ]  # fmt: skip
    assert {r.context.name for r in refs} == {"grafana", "guestbook"}


def test_values_string_in_a_literal_block_maps_exactly() -> None:
    refs = scan("argocd/applications.yaml").refs
    busybox, curl = refs[2], refs[3]
    assert parts(busybox) == [(Role.REPOSITORY, "busybox", 25, 25, True), (Role.TAG, "1.36.1", 26, 19, True)]
    assert busybox.parts[1].quote == '"'
    assert parts(curl) == [(Role.IMAGE, "curlimages/curl:8.9.1", 27, 34, True)]
    assert busybox.context.notes == ("in the spec.source.helm.values string",)


def test_values_string_with_escapes_is_located_but_not_editable() -> None:
    backend = scan("argocd/applications.yaml").refs[-1]
    assert parts(backend) == [
        (Role.REPOSITORY, "ghcr.io/acme/backend", 65, 44, False),
        (Role.TAG, "5.0", 65, 75, False),
    ]


def test_parameters_and_kustomize_parts() -> None:
    refs = scan("argocd/applications.yaml").refs
    assert parts(refs[4]) == [
        (Role.REPOSITORY, "grafana/grafana-image-renderer", 30, 18, True),
        (Role.TAG, "3.11.6", 32, 19, True),
    ]
    assert refs[4].context.notes == ("helm parameter imageRenderer.image",)
    assert parts(refs[5]) == [(Role.IMAGE, "gcr.io/heptio-images/ks-guestbook-demo:0.2", 59, 17, True)]
    # "frontend=ghcr.io/acme/frontend:1.4.0": the part is the image after "=", inside the quotes.
    assert parts(refs[6]) == [(Role.IMAGE, "ghcr.io/acme/frontend:1.4.0", 60, 27, True)]


def test_block_with_indentation_indicator_crlf_and_unparsable_values() -> None:
    text = (
        "apiVersion: argoproj.io/v1alpha1\r\nkind: Application\r\nmetadata:\r\n  name: a\r\nspec:\r\n"
        "  source:\r\n    helm:\r\n      values: |2-\r\n          image: redis:7.4\r\n"
        "  sources:\r\n    - helm:\r\n        values: |\r\n          {{ not yaml: [\r\n"
    )
    (ref,) = scan("app.yaml", text.encode()).refs
    # |2- keeps two spaces of the first line in the value; the layout still maps exactly. The
    # second values string is not YAML: it holds nothing, and the file is not an error.
    assert (ref.line, ref.column, ref.text, ref.parts[0].raw) == (9, 18, "redis:7.4", True)


def test_argocd_documents_are_read_through_the_kubernetes_finder() -> None:
    """Argo CD is no finder of its own: the Kubernetes finder claims the file and the manifest
    dispatcher (bot.scan.manifests) sends each Application to the Argo CD reader."""
    assert not hasattr(argocd, "claims") and not hasattr(argocd, "find")
    head = b"apiVersion: argoproj.io/v1alpha1\nkind: Application\n"
    assert claimant("apps/grafana.yaml", head) is kubernetes
    data = (FIX / "argocd/applications.yaml").read_bytes()
    found = scan_file("a.yaml", data, LocalRepo(FIX)).refs
    assert found == scan_file("a.yaml", data, LocalRepo(FIX), kubernetes).refs
    mine = [r for r in found if r.chart is None]  # chart uses: tests/scan/test_charts.py
    assert mine and {r.source for r in mine} == {Source.ARGOCD}


def test_a_parameter_holding_a_whole_image_is_one_reference() -> None:
    """`helm.parameters` `name: sidecar.image` with a full reference (this path once raised a
    TypeError, which the driver turned into an error that dropped the whole file)."""
    data = (
        b"apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: x}\nspec:\n"
        b"  source:\n    helm:\n      parameters:\n"
        b"        - name: sidecar.image\n          value: docker.io/library/busybox:1.36\n"
        b"        - name: image.repository\n          value: nginx\n"
        b'        - name: image.tag\n          value: "1.27"\n'
    )
    res = scan_file("apps/x.yaml", data, LocalRepo("."))
    assert res.errors == []
    sidecar, app = res.refs
    assert sidecar.reference == "docker.io/library/busybox:1.36"
    (part,) = sidecar.parts
    assert part.role is Role.IMAGE
    assert data[part.span.start : part.span.end] == b"docker.io/library/busybox:1.36"
    assert app.reference == "docker.io/library/nginx:1.27"


def test_image_maps_under_subchart_keys_in_values_object_and_string() -> None:
    data = (
        b"apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: cache\nspec:\n"
        b"  source:\n    chart: sessions\n    targetRevision: 2.4.1\n    helm:\n"
        b"      valuesObject:\n        redis: {repository: bitnami/redis, tag: 7.2.4}\n"
        b"      values: |\n        sentinel:\n          repository: bitnami/redis-sentinel\n"
        b"          tag: '7.2'\n        dependency:\n          repository: https://charts.example.com\n"
        b"          tag: '1.0'\n"
    )
    assert b"mage" not in data
    refs = scan("apps/cache.yaml", data).refs
    assert [(r.source, r.reference, r.context.field, parts(r)) for r in refs] == [
        (Source.ARGOCD, "docker.io/bitnami/redis:7.2.4", "spec.source.helm.valuesObject.redis",
         [(Role.REPOSITORY, "bitnami/redis", 11, 29, True), (Role.TAG, "7.2.4", 11, 49, True)]),
        (Source.ARGOCD, "docker.io/bitnami/redis-sentinel:7.2", "spec.source.helm.values.sentinel",
         [(Role.REPOSITORY, "bitnami/redis-sentinel", 14, 23, True), (Role.TAG, "7.2", 15, 17, True)]),
    ]  # fmt: skip
