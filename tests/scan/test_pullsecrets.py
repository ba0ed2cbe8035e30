"""What files say about pull secrets (bot.scan.pullsecrets): each kind of pull secret and its
registry hosts, pods and their routes, Helm values scopes, and the namespace a manifest lands in."""

from __future__ import annotations

import base64
import json
import pickle
from pathlib import Path

import pytest

from bot.scan import scan_file, scan_tree
from bot.scan.pullsecrets import Facts, normalise_host, read
from bot.scan.yamlsrc import YamlRejected

SHOP = Path(__file__).parents[1] / "fixtures" / "pullsecrets" / "shop"
PASSWORD = "Fx7-pull-s3cret-9Q"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _secret(stype: str, body: str) -> str:
    return f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: pull\ntype: {stype}\n{body}"


def test_dockerconfigjson_with_several_registries_gives_every_host_and_nothing_else():
    (secret,) = read((SHOP / "secrets" / "regcred.yaml").read_text(), "secrets/regcred.yaml").secrets
    assert (secret.kind, secret.name, secret.namespace) == ("Secret", "regcred", "shop")
    # https://index.docker.io/v1/ is Docker Hub
    assert secret.hosts == ("docker.io", "ghcr.io", "registry.example.com")


def test_no_credential_is_kept_in_the_facts_that_scans_cache():
    """ScanResult (facts included) is pickled into the App's scan cache: not a byte of the
    credentials may be in it."""
    out = scan_tree(SHOP)
    blob = pickle.dumps(out.facts)
    auth = _b64(f"deploy-bot:{PASSWORD}")
    for secret in (PASSWORD, auth, "deploy-bot", "Qy-robot-T0ken-77", "shop+robot"):
        assert secret.encode() not in blob
    assert b"registry.example.com" in blob  # hosts are what is kept


@pytest.mark.parametrize(
    ("body", "hosts"),
    [
        # stringData, plain JSON
        ('stringData:\n  .dockerconfigjson: \'{"auths": {"ghcr.io": {"auth": "eDp5"}}}\'\n', ("ghcr.io",)),
        # data, base64 split over lines as kubectl never does but people paste
        (
            "data:\n  .dockerconfigjson: >-\n    "
            + _b64('{"auths":{"quay.io":{}}}')[:12]
            + "\n    "
            + _b64('{"auths":{"quay.io":{}}}')[12:]
            + "\n",
            ("quay.io",),
        ),
        # SOPS-encrypted: the hosts cannot be read
        ("data:\n  .dockerconfigjson: ENC[AES256_GCM,data:3v5o,iv:abc=,type:str]\n", None),
        # not JSON after decoding
        ("data:\n  .dockerconfigjson: " + _b64("not json") + "\n", None),
        # no data at all (created by hand, applied from elsewhere)
        ("", None),
    ],
)
def test_dockerconfigjson_hosts(body, hosts):
    text = (
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: pull\ntype: kubernetes.io/dockerconfigjson\n" + body
    )
    (secret,) = read(text, "s.yaml").secrets
    assert secret.hosts == hosts


def test_dockercfg_legacy_format_has_hosts_at_the_top():
    cfg = _b64('{"https://registry.gitlab.com": {"auth": "eDp5", "email": "a@b.c"}}')
    text = _secret("kubernetes.io/dockercfg", f"data:\n  .dockercfg: {cfg}\n")
    (secret,) = read(text, "s.yaml").secrets
    assert secret.hosts == ("registry.gitlab.com",)


def test_other_secrets_are_not_pull_secrets():
    text = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ntype: Opaque\nstringData:\n  password: x\n"
    assert read(text, "s.yaml").secrets == []


def test_sealed_external_and_generated_pull_secrets():
    facts = Facts(
        [
            read((SHOP / "secrets" / n).read_text(), f"secrets/{n}")
            for n in ("batch-pull.yaml", "external.yaml")
        ]
    )
    by_name = {s.name: s for s in facts.secrets}
    assert (by_name["batch-pull"].kind, by_name["batch-pull"].namespace, by_name["batch-pull"].hosts) == (
        "SealedSecret", "batch", None)  # fmt: skip
    assert (by_name["ghcr-pull"].kind, by_name["ghcr-pull"].hosts) == ("ExternalSecret", ("ghcr.io",))
    cluster = """apiVersion: external-secrets.io/v1beta1
kind: ClusterExternalSecret
metadata:
  name: everywhere
spec:
  namespaceSelector:
    matchLabels: {pull: "yes"}
  externalSecretSpec:
    target:
      name: hub-pull
      template:
        type: kubernetes.io/dockerconfigjson
"""
    (s,) = read(cluster, "c.yaml").secrets
    assert (s.name, s.namespace, s.hosts) == ("hub-pull", None, None)
    kust = """namespace: tools
secretGenerator:
  - name: gen-pull
    type: kubernetes.io/dockerconfigjson
    files:
      - .dockerconfigjson=docker-config.json
  - name: settings
    literals: [a=b]
resources: [job.yaml]
"""
    got = read(kust, "tools/kustomization.yaml")
    assert [(s.kind, s.name, s.namespace) for s in got.secrets] == [("secretGenerator", "gen-pull", "tools")]
    assert got.kustomizations[0].resources == ("tools/job.yaml",)


def test_pods_and_their_routes():
    facts = scan_tree(SHOP).facts
    pods = {p.name: p for f in facts for p in f.pods}
    cron = pods["nightly-report"]
    assert (cron.kind, cron.namespace, cron.secrets, cron.listed) == ("CronJob", "batch", (), False)
    assert cron.field == "spec.jobTemplate.spec.template.spec" and cron.keys[-1] == "spec"
    assert pods["builder"].service_account == "builder" and pods["web"].secrets == ("regcred",)
    assert pods["toolbox"].field == "spec"  # a Pod
    accounts = {a.name: a.secrets for f in facts for a in f.accounts}
    assert accounts == {"builder": ("regcred",), "runner": ()}


def test_an_image_reference_is_matched_to_its_pod_by_position():
    out = scan_tree(SHOP)
    facts = Facts(out.facts)
    for ref in (r for r in out.refs if r.chart is None):  # a chart use (issue 12) writes no image
        pod = facts.pod_of(ref.path, ref.parts[0].span.start)
        if ref.path.startswith(("apps/", "deploy/", "kustomize/")):
            assert pod is not None and ref.reference.rsplit("/", 1)[1].split(":")[0] in {
                pod.name, "toolbox", "report", "redis"}, (ref.reference, pod)  # fmt: skip
        else:
            assert pod is None


def test_two_documents_in_one_file_are_two_pods_and_a_bom_keeps_positions():
    data = (SHOP / "apps" / "builder" / "deployments.yaml").read_bytes()
    for raw in (data, b"\xef\xbb\xbf" + data):
        one = scan_file("d.yaml", raw, None)  # type: ignore[arg-type]
        facts = Facts(one.facts)
        names = [facts.pod_of("d.yaml", r.parts[0].span.start).name for r in one.refs]  # type: ignore[union-attr]
        assert names == ["builder", "runner"]


def test_helm_values_scopes():
    values = """global:
  imagePullSecrets:
    - shared-pull
controller:
  imagePullSecrets:
    - name: controller-pull
  image:
    repository: registry.example.com/ctl
    tag: "1.0"
webhook:
  image:
    repository: registry.example.com/hook
    tag: "1.0"
"""
    facts = Facts([read(values, "values.yaml")])
    ctl = values.index("registry.example.com/ctl")
    hook = values.index("registry.example.com/hook")
    (_, scopes) = facts.values_of("values.yaml", ctl)  # type: ignore[misc]
    assert [(c.keys, c.names) for c in scopes] == [(("global",), ("shared-pull",)),
                                                   (("controller",), ("controller-pull",))]  # fmt: skip
    (_, scopes) = facts.values_of("values.yaml", hook)  # type: ignore[misc]
    assert [c.names for c in scopes] == [("shared-pull",)]
    # values that never write imagePullSecrets say nothing (the chart may not take any)
    assert read("image:\n  repository: x\n  tag: '1'\n", "values.yaml").values == []


def test_helm_values_in_helmrelease_argocd_and_kustomize_charts():
    release = read((SHOP / "flux" / "storefront.yaml").read_text(), "flux/storefront.yaml")
    assert [(v.owner, v.namespace, v.object_namespace, v.field) for v in release.values] == [
        ("HelmRelease/storefront", "shop", "flux-system", "spec.values"),
        ("HelmRelease/search", "search", "flux-system", "spec.values"),
    ]
    app = """apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: shop}
spec:
  destination: {namespace: shop-prod}
  source:
    chart: shop
    helm:
      valuesObject:
        imagePullSecrets: [{name: regcred}]
        image: registry.example.com/shop/app:1.0
"""
    (v,) = read(app, "app.yaml").values
    assert (v.owner, v.namespace, v.scopes[0].names) == ("Application/shop", "shop-prod", ("regcred",))
    kust = """namespace: edge
helmCharts:
  - name: proxy
    valuesInline:
      global: {imagePullSecrets: [edge-pull]}
"""
    (v,) = read(kust, "edge/kustomization.yaml").values
    assert (v.owner, v.namespace, v.scopes[0].names) == ("helmCharts/proxy", "edge", ("edge-pull",))


def test_namespaces_from_kustomize_argocd_and_the_manifest():
    facts = Facts(scan_tree(SHOP).facts)
    assert facts.namespaces("kustomize/base/deployment.yaml", None) == {"staging"}
    assert facts.namespaces("deploy/argo/deployment.yaml", None) == {"payments"}
    assert facts.namespaces("apps/api/deployment.yaml", "api") == {"api"}
    assert facts.namespaces("elsewhere/x.yaml", None) == {None}


def test_a_base_used_by_two_overlays_lands_in_both_and_the_outer_namespace_wins():
    files = {
        "base/kustomization.yaml": "resources: [app.yaml]\nnamespace: base-ns\n",
        "overlays/dev/kustomization.yaml": "namespace: dev\nresources: [../../base]\n",
        "overlays/prod/kustomization.yaml": "namespace: prod\nresources:\n  - ../../base\n",
        "overlays/plain/kustomization.yaml": "resources: [../../base]\n",
        "loop/kustomization.yaml": "resources: [../loop]\n",
    }
    facts = Facts(read(text, path) for path, text in files.items())
    assert facts.namespaces("base/app.yaml", "written") == {"dev", "prod", "base-ns"}
    assert facts.namespaces("loop/x.yaml", None) == {None}  # a cycle ends, nothing hangs


def test_templated_and_odd_values_are_unknown_not_wrong():
    text = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
  namespace: "{{ .Release.Namespace }}"
spec:
  template:
    spec:
      imagePullSecrets:
        - name: "{{ .Values.pullSecret }}"
        - 42
        - name: real
      containers: []
"""
    (pod,) = read(text, "d.yaml").pods
    assert pod.namespace is None and pod.secrets == ("real",) and pod.listed


def test_bad_yaml_is_rejected_like_the_finders_do_and_scan_file_keeps_going():
    bad = "kind: Secret\ntype: kubernetes.io/dockerconfigjson\n  : : [\n"
    with pytest.raises(YamlRejected):
        read(bad, "x.yaml")
    assert scan_file("x.yaml", bad.encode(), None).facts == []  # type: ignore[arg-type]


def test_registry_host_normalisation():
    assert normalise_host("https://index.docker.io/v1/") == "docker.io"
    assert normalise_host("Registry.Example.com:443") == "registry.example.com"
    assert normalise_host("registry.example.com:5000/path") == "registry.example.com:5000"
    assert normalise_host("{{ .host }}") is None and normalise_host("") is None


def test_json_hosts_are_parsed_not_searched():
    """A password that looks like a host never becomes one."""
    cfg = json.dumps({"auths": {"ghcr.io": {"password": "evil.example.com"}}})
    text = _secret("kubernetes.io/dockerconfigjson", f"data:\n  .dockerconfigjson: {_b64(cfg)}\n")
    (secret,) = read(text, "s.yaml").secrets
    assert secret.hosts == ("ghcr.io",)


def test_argocd_values_string_is_read_where_it_maps_exactly_and_never_edited():
    out = scan_tree(SHOP)
    facts = Facts(out.facts)
    (ref,) = [r for r in out.refs if r.path == "argocd/billing.yaml" and r.chart is None]
    (values, scopes) = facts.values_of(ref.path, ref.parts[0].span.start)  # type: ignore[misc]
    assert (values.owner, values.namespace, values.inline) == ("Application/billing", "billing", True)
    assert [c.names for c in scopes] == [("regcred",)]
    folded = (SHOP / "argocd" / "billing.yaml").read_text().replace("values: |", "values: >")
    assert read(folded, "a.yaml").values == []  # positions cannot be trusted: not read


def test_a_failure_reading_facts_is_a_scan_error_and_the_references_stand(monkeypatch):
    from bot.scan import pullsecrets

    def broken(text: str, path: str) -> None:
        raise IndexError("list index out of range")

    monkeypatch.setattr(pullsecrets, "read", broken)
    data = (SHOP / "apps" / "web" / "deployment.yaml").read_bytes()
    one = scan_file("d.yaml", data, None)  # type: ignore[arg-type]
    assert len(one.refs) == 1 and one.facts == []
    assert [e.message for e in one.errors] == [
        "pull secrets: could not read: IndexError: list index out of range"
    ]


def test_a_file_is_composed_once_for_its_references_and_its_facts(monkeypatch):
    from bot.scan import yamlsrc

    calls: list[int] = []
    real = yamlsrc._compose

    def counting(chunk: str, line_of):
        calls.append(line_of())
        return real(chunk, line_of)

    monkeypatch.setattr(yamlsrc, "_compose", counting)
    data = (SHOP / "apps" / "builder" / "deployments.yaml").read_bytes()
    one = scan_file("d.yaml", data, None)  # type: ignore[arg-type]
    assert len(one.refs) == 2 and len(one.facts[0].pods) == 2
    assert sorted(calls) == [1, 17]  # each document once (the second starts at its ---)


def test_helm_templates_have_no_facts_and_no_errors():
    text = (
        b"apiVersion: v1\nkind: Pod\nspec:\n  imagePullSecrets: {{ toYaml .Values.pull }}\n"
        b"  containers:\n    - image: x\n"
    )
    one = scan_file("chart/templates/pod.yaml", text, None)  # type: ignore[arg-type]
    assert one.facts == [] and one.errors == []
