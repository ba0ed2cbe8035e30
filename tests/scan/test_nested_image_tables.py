"""An `image:` key whose value is a table of image maps (one per tool a hook needs) is read as
that table, not dropped because the map has no `repository` of its own."""

from __future__ import annotations

from bot.model import Role
from tests.support.spans import check_spans, scan_fixture


def test_an_image_key_holding_a_table_of_image_maps() -> None:
    data, res = scan_fixture("helm/nested-tables/values.yaml")
    assert res.errors == []
    by_field = {r.context.field: r for r in res.refs}
    assert sorted(by_field) == [
        "crds.upgradeJob.image.busybox",
        "crds.upgradeJob.image.kubectl",
        "operator.image",
    ]
    busybox = by_field["crds.upgradeJob.image.busybox"]
    assert (busybox.line, busybox.reference) == (8, "docker.io/library/busybox:1.36.1")
    assert [(p.role, p.text, p.span.line) for p in busybox.parts if p.text] == [
        (Role.REGISTRY, "docker.io", 8),
        (Role.REPOSITORY, "busybox", 9),
        (Role.TAG, "1.36.1", 10),
    ]
    # The empty tag falls back to the chart's appVersion, as for any values file.
    assert by_field["crds.upgradeJob.image.kubectl"].reference == "registry.k8s.io/kubectl:v0.79.2"
    assert by_field["operator.image"].reference == "quay.io/prometheus-operator/prometheus-operator:v0.79.2"
    check_spans(data, res.refs)
