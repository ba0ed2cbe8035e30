"""Issue 7 in Kubernetes YAML: references inside container args and env values (qualified only),
chart and operator keys (``*Image`` strings, ``imageName`` + ``imageTag``, image tables), kustomize
patches without apiVersion, and invalid references reported as invalid."""

from __future__ import annotations

import pytest

from bot.edit import apply, plan
from bot.model import Skip, Source
from bot.scan import LocalRepo, claimant, helm_values, kubernetes, kustomize, scan_file
from tests.support.spans import FIXTURES, parts, scan_data, scan_fixture

AGENT = "sha256:0d17b565c37bcbd895e9d92315a05c1c3c9a29f762b011a10c54a66cd53c9b31"


def rows(rel: str) -> list[tuple[int, int, str, str | None, str | None]]:
    _data, res = scan_fixture(rel)
    return [(r.line, r.column, r.text, r.context.kind, r.context.field) for r in res.refs]


def test_args_env_and_operator_keys() -> None:
    assert rows("kubernetes/prometheus-operator.yaml") == [
        (11, 19, "quay.io/prometheus-operator/prometheus-operator:v0.79.2", "Deployment",
         "spec.template.spec.containers[0].image"),
        (16, 44, "quay.io/prometheus-operator/prometheus-config-reloader:v0.79.2", "Deployment",
         "spec.template.spec.containers[0].args[2]"),
        (17, 44, "quay.io/thanos/thanos:v0.37.2", "Deployment", "spec.template.spec.containers[0].args[3]"),
        (27, 23, "ghcr.io/acme/sidecar:1.4.0", "Deployment", "spec.template.spec.containers[0].env[2].value"),
        (37, 14, "ghcr.io/cloudnative-pg/postgresql:17.2", "Cluster", "spec.imageName"),
        (44, 14, "registry.example.com/agents/collector:2.10", "Agent", "spec.imageName"),
        (46, 24, "quay.io/prometheus-operator/prometheus-config-reloader:v0.79.2", "Agent",
         "spec.configReloaderImage"),
        (47, 19, f"ghcr.io/acme/agent@{AGENT}", "Agent", "spec.containerImage"),
        (54, 17, "docker.io/prom/node-exporter:v1.8.2", "Agent", "spec.images.exporter"),
    ]  # fmt: skip
    # Not found, on purpose: the URL in DOCS_URL, "nginx:1.27" and an untagged name in prose,
    # flags and addresses in args, logoImage/pullImage/baseImage (no tag), a templated
    # dashboardImage outside values, the banner.png table entry, kubeadm's imageRepository.


def test_parts_inside_strings_span_only_the_reference() -> None:
    data, res = scan_fixture("kubernetes/prometheus-operator.yaml")
    reloader, thanos, sidecar = res.refs[1], res.refs[2], res.refs[3]
    assert parts(reloader) == [("image", reloader.text, 16, 44)]
    assert (reloader.context.container, reloader.context.notes) == ("prometheus-operator", ("in args",))
    assert thanos.parts[0].quote == '"'
    assert (sidecar.context.notes, sidecar.parts[0].quote) == (("in env value SIDECAR_IMAGE",), "'")
    assert all(r.source is Source.KUBERNETES and r.skip is None for r in res.refs)
    # A fix rewrites the reference's bytes and keeps the flag around it.
    edits = plan(reloader, "quay.io/prometheus-operator/prometheus-config-reloader:v0.80.0")
    assert [(e.old, e.new) for e in edits] == [(reloader.text, reloader.text.replace("v0.79.2", "v0.80.0"))]
    out = apply(data, edits)
    assert (
        b"- --prometheus-config-reloader=quay.io/prometheus-operator/prometheus-config-reloader:v0.80.0\n"
        in out
    )
    again = scan_data("kubernetes/prometheus-operator.yaml", out, kubernetes).refs
    assert again[1].reference == "quay.io/prometheus-operator/prometheus-config-reloader:v0.80.0"


def test_split_pair_parts() -> None:
    _data, res = scan_fixture("kubernetes/prometheus-operator.yaml")
    pair, table = res.refs[5], res.refs[8]
    assert parts(pair) == [("name", "registry.example.com/agents/collector", 44, 14), ("tag", "2.10", 45, 14)]
    assert pair.parts[1].quote == '"'
    assert parts(table) == [
        ("registry", "docker.io", 54, 17),
        ("repository", "prom/node-exporter", 55, 19),
        ("tag", "v1.8.2", 56, 12),
    ]


@pytest.mark.parametrize(
    "value",
    [
        "https://quay.io/org/img:v1",  # a URL
        "docker://quay.io/org/img:v1",
        "quay.io/org/img",  # no tag
        "org/img:v1",  # no registry
        "nginx:1.27",
        "1.2.3",
        "/etc/config/app.yaml",
        "user@example.com",
        "example.com/path",
        "see quay.io/org/img:v1.",  # sentence punctuation
        "--listen=0.0.0.0:8080",
        "host.local:5000",
        "{{ .Values.image }}",
    ],
)
def test_ordinary_strings_in_args_and_env_are_not_references(value: str) -> None:
    text = (
        "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n    - name: a\n      image: busybox:1.36\n"
        f"      args: [{value!r}]\n      env:\n        - name: X\n          value: {value!r}\n"
    )
    refs = scan_data("p.yaml", text.encode(), kubernetes).refs
    assert [r.text for r in refs] == ["busybox:1.36"]


def test_references_in_block_scalars_are_exact() -> None:
    text = (
        "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n    - name: a\n      image: busybox:1.36\n"
        "      command:\n        - sh\n        - -c\n        - |\n"
        "          crane copy registry.example.com/a/b:1 \\\n"
        '            "registry.example.com/a/b:1" && echo "\\x"\n'
        "      extraArgs: {reloader: 'localhost:5000/r/x@" + AGENT + "'}\n"
    )
    refs = scan_data("p.yaml", text.encode(), kubernetes).refs  # checks bytes at every raw span
    assert [(r.line, r.column, r.text, r.parts[0].raw) for r in refs] == [
        (6, 14, "busybox:1.36", True),
        (11, 22, "registry.example.com/a/b:1", True),
        (12, 14, "registry.example.com/a/b:1", True),
        (13, 30, f"localhost:5000/r/x@{AGENT}", True),
    ]
    assert refs[0].context.needs_shell is True


def test_image_plus_image_tag_is_one_reference() -> None:
    res = scan_data("c.yaml", b"app:\n  image: org/app\n  imageTag: '2.1'\n", kubernetes)
    (ref,) = res.refs
    assert (ref.text, ref.reference, parts(ref)) == (
        "org/app:2.1",
        "docker.io/org/app:2.1",
        [("name", "org/app", 2, 10), ("tag", "2.1", 3, 14)],
    )


def test_image_key_strings_outside_values_need_a_tag() -> None:
    text = b"a:\n  baseImage: ubuntu\n  buildImage: golang:1.23\n  bootImage: /boot/vmlinuz\n"
    assert [r.text for r in scan_data("c.yaml", text, kubernetes).refs] == ["golang:1.23"]
    # In Helm values, any *image key holds a reference, as Renovate reads them.
    assert [r.text for r in scan_data("values.yaml", text, helm_values).refs] == [
        "ubuntu", "golang:1.23", "/boot/vmlinuz"]  # fmt: skip


def test_invalid_references_are_reported_invalid_not_dropped() -> None:
    text = (
        "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n    - name: a\n      image: alpine:invalid!\n"
        "    - name: b\n      image: Alpine:3\n    - name: c\n      image: 'nginx:{{ .Values.tag }}'\n"
        "    - name: d\n      image: {repository: nginx, tag: '${TAG}'}\n"
    )
    refs = scan_data("p.yaml", text.encode(), kubernetes).refs
    assert [(r.line, r.text, r.reference, r.skip, r.detail) for r in refs] == [
        (6, "alpine:invalid!", None, Skip.INVALID, "invalid reference format"),
        (8, "Alpine:3", None, Skip.INVALID,
         "invalid reference format: repository name (library/Alpine) must be lowercase"),
        (10, "nginx:{{ .Values.tag }}", None, Skip.TEMPLATED, "templated value 'nginx:{{ .Values.tag }}'"),
        (12, "nginx:${TAG}", None, Skip.TEMPLATED, "templated value 'nginx:${TAG}'"),
    ]  # fmt: skip


def test_patch_files_are_read_as_kubernetes() -> None:
    base = "kustomize/overlays/staging/patches/"
    got = []
    for name in ("web-image.yaml", "sidecar.yaml", "worker-image.json.yaml"):
        data = (FIXTURES / base / name).read_bytes()
        assert claimant(base + name, data[:4096]) is kubernetes
        (ref,) = scan_fixture(base + name)[1].refs
        got.append((ref.line, ref.column, ref.text, ref.source, ref.context.kind, ref.context.container,
                    ref.context.notes))  # fmt: skip
    note = ("kustomize patch in kustomize/overlays/staging/kustomization.yaml",)
    assert got == [
        (9, 18, "ghcr.io/acme/web:2.5.0-rc.1", Source.KUBERNETES, "Deployment", "web", note),
        (7, 18, "docker.io/fluent/fluent-bit:3.1.9", Source.KUBERNETES, "Deployment", "log-shipper", note),
        (3, 10, "ghcr.io/acme/worker:1.9.0", Source.KUBERNETES, "Deployment", None, note),
    ]


def test_unlisted_yaml_without_kind_stays_plain_yaml() -> None:
    data = b"spec:\n  containers:\n    - name: x\n      image: nginx:1.27\n"
    (ref,) = scan_file("misc/notes.yaml", data, LocalRepo(FIXTURES), kubernetes).refs
    assert (ref.source, ref.context.kind, ref.context.container) == (Source.YAML, None, "x")
    data = b"kind: Deployment\nmetadata: {name: w}\nspec:\n  template:\n    spec:\n      containers:\n" \
        b"        - name: w\n          image: nginx:1.27\n"  # fmt: skip
    (ref,) = scan_data("misc/patch.yaml", data, kubernetes).refs
    assert (ref.source, ref.context.kind, ref.context.name, ref.context.notes) == (
        Source.KUBERNETES, "Deployment", "w", ("no apiVersion",))  # fmt: skip


def test_kustomization_inline_patches() -> None:
    data, res = scan_fixture("kustomize/overlays/staging/kustomization.yaml")
    (ref,) = res.refs
    assert (ref.source, ref.context.kind, ref.context.field, parts(ref)) == (
        Source.KUBERNETES,
        "CronJob",
        "patches[2].patch[0].value",
        [("image", "bitnami/kubectl:1.31", 23, 16)],
    )
    assert kustomize.claims("kustomize/overlays/staging/kustomization.yaml", data[:4096])
