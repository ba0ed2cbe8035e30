"""Issue 14 §2: an empty tag in Helm values is what the chart's own templates render, read from
the chart (``printf "v%s" .Chart.AppVersion``, the cluster version, a sub-chart's appVersion);
when the chart does not say, the reference is skipped with the reason, never guessed."""

from __future__ import annotations

from bot.model import Skip
from bot.scan import helm_values
from tests.support.spans import scan_fixture


def test_printf_v_appversion() -> None:
    _data, res = scan_fixture("helm/node-exporter/values.yaml", helm_values)
    (ref,) = res.refs
    assert ref.reference == "quay.io/prometheus/node-exporter:v1.8.2"  # not :1.8.2
    assert ref.context.notes == (
        'tag from appVersion 1.8.2 in helm/node-exporter/Chart.yaml, as the chart renders it (printf "v%s")',
    )


def test_cluster_version_default_is_skipped_and_app_default_is_read() -> None:
    _data, res = scan_fixture("helm/kubectl-version/values.yaml", helm_values)
    kubectl, app = res.refs
    assert (kubectl.reference, kubectl.skip) == (None, Skip.CHART_DEFAULT)
    assert kubectl.detail == (
        "bitnami/kubectl: no tag written: the chart defaults it to the cluster's Kubernetes version"
    )
    assert app.reference == "docker.io/acme/cleanup:2.3.0"


def test_sub_chart_values_take_the_sub_charts_appversion() -> None:
    _data, res = scan_fixture("helm/umbrella/values.yaml", helm_values)
    grafana, cache = res.refs
    assert grafana.reference == "docker.io/grafana/grafana:11.2.0"  # not the umbrella's 9.9.9
    assert grafana.context.notes == ("tag from appVersion 11.2.0 in helm/umbrella/charts/grafana/Chart.yaml",)
    assert (cache.reference, cache.skip) == (None, Skip.CHART_DEFAULT)
    assert "sub-chart redis's appVersion" in (cache.detail or "")
