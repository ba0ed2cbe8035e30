"""Kubernetes manifests and the catch-all YAML walker, and the hostile YAML of security.md §7.2
(F1-F15) run through the scan driver against every YAML finder."""

from __future__ import annotations

import re
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.model import Role, Skip, Source
from bot.scan import (
    MAX_FILE_BYTES,
    LocalRepo,
    ScanResult,
    ansible,
    helm_values,
    kubernetes,
    kustomize,
    scan_file,
)
from tests.support.spans import check_spans, scan_data

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "scan"
# Argo CD and Flux documents are read through the kubernetes finder (bot.scan.manifests).
YAML_FINDERS = [kubernetes, helm_values, kustomize, ansible]


def scan(rel: str, finder: ModuleType = kubernetes) -> ScanResult:
    data = (FIX / rel).read_bytes()
    res = scan_data(rel, data, finder, FIX, at_first_part=True)
    assert res.errors == []
    return res


def scan_text(text: str | bytes, finder: ModuleType = kubernetes, path: str = "x.yaml") -> ScanResult:
    data = text.encode() if isinstance(text, str) else text
    res = scan_file(path, data, LocalRepo(FIX), finder)
    check_spans(data, res.refs, at_first_part=True)
    return res


def test_workloads_containers_init_ephemeral_and_image_volumes() -> None:
    refs = scan("kubernetes/deployment.yaml").refs
    got = [(r.line, r.column, r.text, r.reference, r.context.kind, r.context.name) for r in refs]
    assert got == [
        (30, 19, "busybox:1.36", "docker.io/library/busybox:1.36", "Deployment", "web"),
        (34, 18, "ghcr.io/acme/web:2.4.1", "ghcr.io/acme/web:2.4.1", "Deployment", "web"),
        (42, 19, "quay.io/prometheus/statsd-exporter:v0.26.0",
         "quay.io/prometheus/statsd-exporter:v0.26.0", "Deployment", "web"),
        (44, 18, "nginx@sha256:0d17b565c37bcbd895e9d92315a05c1c3c9a29f762b011a10c54a66cd53c9b31",
         "docker.io/library/nginx@sha256:0d17b565c37bcbd895e9d92315a05c1c3c9a29f762b011a10c54a66cd53c9b31",
         "Deployment", "web"),
        (53, 24, "registry.example.com/ml/models:2024-10", "registry.example.com/ml/models:2024-10",
         "Deployment", "web"),
        (69, 22, "bitnami/kubectl:1.31", "docker.io/bitnami/kubectl:1.31", "CronJob", "cleanup"),
        (74, 22, "docker.io/library/alpine:3.20", "docker.io/library/alpine:3.20", "CronJob", "cleanup"),
    ]  # fmt: skip
    assert all(r.source is Source.KUBERNETES and r.skip is None for r in refs)
    assert [r.parts[0].quote for r in refs[:3]] == ['"', "", "'"]
    # The env value "image: nginx:1.25" is text inside a string, never a reference.
    assert not any("nginx:1.25" in r.text for r in refs)


def test_container_context_and_shell() -> None:
    refs = scan("kubernetes/deployment.yaml").refs
    got = [(r.context.container, r.context.needs_shell, r.context.field) for r in refs]
    assert got == [
        ("wait-for-db", True, "spec.template.spec.initContainers[0].image"),  # sh -c
        ("web", False, "spec.template.spec.containers[0].image"),  # execs /app/server
        ("metrics", None, "spec.template.spec.containers[1].image"),  # image entrypoint
        ("proxy", True, "spec.template.spec.containers[2].image"),  # heredoc in args
        (None, None, "spec.template.spec.volumes[0].image.reference"),
        ("cleanup", True, "spec.jobTemplate.spec.template.spec.containers[0].image"),  # /bin/bash -c
        ("debugger", None, "spec.jobTemplate.spec.template.spec.ephemeralContainers[0].image"),
    ]


def test_list_items_carry_their_own_kind_and_templates_are_skipped() -> None:
    a, b = scan("kubernetes/list.yaml").refs
    assert (a.line, a.column, a.reference) == (11, 18, "registry.k8s.io/e2e-test-images/agnhost:2.47")
    assert (a.context.kind, a.context.name, a.context.field) == (
        "Pod",
        "toolbox",
        "items[0].spec.containers[0].image",
    )
    assert (b.line, b.column, b.skip, b.reference) == (21, 23, Skip.TEMPLATED, None)
    assert (b.context.kind, b.context.name) == ("ReplicationController", "legacy")


def test_custom_resources_any_image_key() -> None:
    refs = scan("kubernetes/workflow.yaml").refs
    got = [(r.line, r.column, r.text, r.skip, r.context.kind, r.context.needs_shell) for r in refs]
    assert got == [
        (10, 16, "golang:1.23", None, "Workflow", False),
        (15, 16, "python:3.12-slim", None, "Workflow", False),
        (27, 14, "docker.io/golangci/golangci-lint:v1.61.0", None, "Task", True),  # Tekton script
        (32, 14, "Alpine:Latest", Skip.INVALID, "Task", None),
    ]
    assert refs[0].context.name == "build-"  # generateName
    assert refs[3].detail == "invalid reference format: repository name (library/Alpine) must be lowercase"
    # "image: not-an-image:1" inside the script's source string is not a key.
    assert len(refs) == 4


def test_plain_yaml_is_reported_as_yaml_with_helm_maps() -> None:
    a, b = scan("kubernetes/settings.yml").refs
    assert (a.source, a.line, a.column, a.reference) == (Source.YAML, 3, 10, "ghcr.io/acme/runner:5.2.0")
    assert (a.context.kind, a.context.field) == (None, "runner.image")
    assert (b.source, b.line, b.column, b.text, b.reference) == (
        Source.YAML, 7, 17, "redis:7.4", "docker.io/library/redis:7.4")  # fmt: skip
    assert [(p.role, p.text, p.span.line, p.span.column) for p in b.parts] == [
        (Role.REPOSITORY, "redis", 7, 17),
        (Role.TAG, "7.4", 8, 11),
    ]
    # pullImage: true is a *image key with a non-string: not the `image` key, so not reported.


def test_claims_any_yaml() -> None:
    assert kubernetes.claims("deploy/app.yaml", b"")
    assert kubernetes.claims("x.yml", b"")
    assert not kubernetes.claims("Dockerfile", b"FROM alpine")
    assert not kubernetes.claims("README.md", b"image: x")


def test_files_without_image_are_not_parsed() -> None:
    # Invalid YAML, but no image-like key anywhere: the pre-filter skips it, no error.
    assert scan_text("a: [unclosed\nb: {").errors == []
    res = scan_text("a: 1\n---\nimage: [unclosed\n")
    assert res.errors and "invalid YAML" in res.errors[0].message


def test_non_string_values_are_skipped() -> None:
    res = scan_text("image: 123\n---\nimage: [a, b]\n---\nimage: true\n---\nimage:\n")
    got = [(r.line, r.column, r.text, r.skip) for r in res.refs]
    assert got == [
        (1, 8, "123", Skip.NON_STRING),
        (3, 8, "[a, b]", Skip.NON_STRING),
        (5, 8, "true", Skip.NON_STRING),
    ]


def test_unicode_before_the_image_shifts_bytes_not_columns() -> None:
    res = scan_text(
        "# café ☕\nkind: Pod\napiVersion: v1\nspec:\n  containers:\n  - name: é\n    image: nginx:1.27\n"
    )
    (ref,) = res.refs
    assert (ref.line, ref.column, ref.context.container) == (7, 12, "é")


def test_bom_and_crlf() -> None:
    data = (
        "\ufeffapiVersion: v1\r\nkind: Pod\r\nspec:\r\n  containers:\r\n    - image: 'redis:7'\r\n".encode()
    )
    res = scan_text(data)
    (ref,) = res.refs
    assert data[ref.parts[0].span.start : ref.parts[0].span.end] == b"redis:7"
    assert (ref.line, ref.column) == (5, 15)


# --- security.md §7.2: hostile YAML ----------------------------------------------------------


def _laughs(levels: int = 9) -> str:
    lines = ["x-bomb:", '  a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        refs = ", ".join([f"*a{i - 1}"] * 9)
        lines.append(f"  a{i}: &a{i} [{refs}]")
    return "\n".join(lines) + "\nservice:\n  image: nginx:1.25\n  extra: *a" + str(levels - 1) + "\n"


def _merge_bomb(levels: int = 24) -> str:
    lines = ["m0: &m0 {image: nginx:1.25}"]
    lines += [f"m{i}: &m{i}\n  <<: [*m{i - 1}, *m{i - 1}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("finder", YAML_FINDERS, ids=lambda m: m.__name__.rsplit(".", 1)[1])
def test_f1_f2_f5_bombs_are_walked_once(finder: ModuleType) -> None:
    for text in (_laughs(), _merge_bomb(), "image: nginx:1.25\na: &a [*a]\nb: &b {k: *b, image: redis:7}\n"):
        res = scan_text(text, finder, "values.yaml")
        assert res.errors == []
        images = sorted(r.text for r in res.refs)
        assert images in (["nginx:1.25"], ["nginx:1.25", "redis:7"]), images


@pytest.mark.parametrize("finder", YAML_FINDERS, ids=lambda m: m.__name__.rsplit(".", 1)[1])
@pytest.mark.parametrize(
    ("text", "message"),
    [
        # F3: segfaults libyaml's composer. Our own pre-check or libyaml's own limit (PyYAML >= 6.0.4)
        # may be the one to refuse it; either way it is rejected with a reason that names nesting.
        ("image: " + "[" * 50_000 + "]" * 50_000 + "\n", re.compile("nesting|depth")),
        (
            "".join(f"{'  ' * i}k{i}:\n" for i in range(200)) + "  " * 200 + "image: x\n",
            "nesting deeper",
        ),  # F4
        ("---\nimage: nginx:1\n" * 10_000, "more than 2000 YAML documents"),  # F8
        ("image: nginx:1.25\u202e\u2066\n", "bidi"),  # F11
        ("image: nginx\x1b:1.25\n", "control"),  # F10 ESC
    ],
    ids=["F3-flow", "F4-block", "F8-docs", "F11-bidi", "F10-esc"],
)
def test_hazards_become_errors(finder: ModuleType, text: str, message: str | re.Pattern[str]) -> None:
    res = scan_text(text, finder, "values.yaml")
    assert res.refs == []
    assert len(res.errors) == 1, res.errors
    if isinstance(message, re.Pattern):
        assert message.search(res.errors[0].message), res.errors
    else:
        assert message in res.errors[0].message, res.errors


@pytest.mark.parametrize("finder", YAML_FINDERS, ids=lambda m: m.__name__.rsplit(".", 1)[1])
def test_duplicate_key_keeps_the_last_value_with_a_warning(finder: ModuleType) -> None:
    """F7, issue 14 §1: kubectl and Helm keep a duplicate key's last value, so do we, and say so;
    the file's other references are still reported (it used to be dropped whole)."""
    text = "---\nkind: ConfigMap\n---\nservice:\n  image: nginx:1.25\n  image: evil:1\n"
    text += "other:\n  image: redis:7\n"
    res = scan_text(text, finder, "values.yaml")
    assert sorted(r.text for r in res.refs) == ["evil:1", "redis:7"]
    (warning,) = res.errors
    assert warning.level == "warning"
    assert "duplicate key 'image' at line 5 (again at line 6)" in warning.message


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xff\xfei\x00m\x00a\x00g\x00e\x00", "UTF-16"),
        (b"image: caf\xe9:1\n", "invalid UTF-8"),
        (b"image: a\x00b\n", "binary"),
        (b"image: " + b"x" * MAX_FILE_BYTES + b"\n", "larger than"),  # F9
    ],
)
def test_f9_f10_bytes_are_refused_before_parsing(data: bytes, message: str) -> None:
    res = scan_file("big.yaml", data, LocalRepo(FIX), kubernetes)
    assert res.refs == [] and message in res.errors[0].message


def test_f6_python_tags_are_never_constructed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    text = (
        'image: !!python/object/apply:os.system ["touch pwned-marker"]\n'
        "spec:\n  containers:\n    - image: !!python/name:os.system\n"
    )
    res = scan_text(text)
    assert not (tmp_path / "pwned-marker").exists()
    got = [(r.line, r.column, r.skip) for r in res.refs]
    assert got == [(1, 8, Skip.NON_STRING), (4, 14, Skip.NON_STRING)]
    assert "python/object/apply" in (res.refs[0].detail or "")


def test_f8_every_document_is_read() -> None:
    text = "".join(f"---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: p{i}\nspec:\n  containers:\n"
                   f"    - image: nginx:1.2{i}\n" for i in range(3))  # fmt: skip
    res = scan_text(text)
    assert [(r.line, r.text, r.context.name) for r in res.refs] == [
        (8, "nginx:1.20", "p0"), (16, "nginx:1.21", "p1"), (24, "nginx:1.22", "p2")]  # fmt: skip


def test_f12_unquoted_numeric_tag_reads_as_written() -> None:
    (ref,) = scan_text("image:\n  repository: acme/app\n  tag: 1.10\n").refs
    assert (ref.text, ref.reference) == ("acme/app:1.10", "docker.io/acme/app:1.10")
    assert ref.context.notes == ("unquoted tag 1.10 is read by Helm as the number 1.1: quote it",)


def test_f13_yaml_11_directive_does_not_confuse_types() -> None:
    text = "%YAML 1.1\n---\nimage:\n  repository: on\n  tag: 22:22\nother:\n  image: 'on'\n"
    a, b = scan_text(text).refs
    assert (a.skip, a.reference) == (Skip.NON_STRING, None)  # `on` is a boolean, not a name
    assert (b.text, b.skip) == ("on", None)  # quoted: the string "on", a valid name
    assert b.reference == "docker.io/library/on"


def test_f14_custom_tags_are_skipped() -> None:
    res = scan_text("image: !Ref ImageParam\n---\nspec:\n  image: !include image.yaml\n")
    assert [(r.line, r.column, r.text, r.skip) for r in res.refs] == [
        (1, 13, "ImageParam", Skip.NON_STRING),
        (4, 19, "image.yaml", Skip.NON_STRING),
    ]
    assert res.refs[0].detail == "not a string: scalar tagged !Ref"


def test_f15_anchor_reported_once_at_the_anchor() -> None:
    text = (
        "x-img: &img\n  image: nginx:1.25\nweb:\n  <<: *img\n"
        "api:\n  image: &tag redis:7\nworker:\n  image: *tag\n"
    )
    res = scan_text(text)
    assert [(r.line, r.column, r.text) for r in res.refs] == [(2, 10, "nginx:1.25"), (6, 15, "redis:7")]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.sampled_from(
            [
                "image:",
                " ",
                "\n",
                "- ",
                "  ",
                "repository:",
                "tag:",
                "&a",
                "*a",
                "<<:",
                "{",
                "}",
                "[",
                "]",
                ",",
                "'",
                '"',
                "|",
                "nginx:1",
                "---\n",
                "!x",
                "kind:",
                "apiVersion:",
                "é",
                "\t",
                "#",
                "%YAML 1.1\n",
                "values:",
                "definition:",
            ]
        )
        | st.text(max_size=5),
        max_size=60,
    ),
    st.sampled_from(YAML_FINDERS),
)
def test_arbitrary_input_never_raises(pieces: list[str], finder: ModuleType) -> None:
    data = "".join(pieces).encode("utf-8", "surrogatepass")
    res = scan_file("values.yaml", data, LocalRepo(FIX), finder)
    check_spans(data, res.refs, at_first_part=True)


def test_the_driver_routes_each_fixture_to_its_finder() -> None:
    res = {}
    for rel in (
        "kubernetes/deployment.yaml",
        "kubernetes/settings.yml",
        "helm/postgresql/values.yaml",
        "helm/standalone/values-prod.yaml",
        "kustomize/overlays/prod/kustomization.yaml",
        "ansible/roles/app/tasks/main.yml",
        "ansible/deploy.yml",
        "argocd/applications.yaml",
    ):
        data = (FIX / rel).read_bytes()
        found = scan_file(rel, data, LocalRepo(FIX))
        assert found.errors == []
        res[rel] = sorted({str(r.source) for r in found.refs})
    assert res == {
        "kubernetes/deployment.yaml": ["kubernetes"],
        "kubernetes/settings.yml": ["yaml"],
        "helm/postgresql/values.yaml": ["helm-values"],
        "helm/standalone/values-prod.yaml": ["helm-values"],
        "kustomize/overlays/prod/kustomization.yaml": ["kustomize"],
        "ansible/roles/app/tasks/main.yml": ["ansible"],
        "ansible/deploy.yml": ["ansible"],
        "argocd/applications.yaml": ["argocd", "helm-chart"],
    }
