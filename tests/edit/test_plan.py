"""plan(): what gets written where, in the author's style, and when it refuses."""

from __future__ import annotations

import dataclasses

import pytest

from bot.edit import EditError, apply, expected, plan, written
from bot.model import Context, Role, Skip, Source
from bot.scan.yamlimages import HEX_DIGEST
from tests.edit.helpers import Spec, make

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
IMG = Role.IMAGE


def one(text: str, source: Source = Source.KUBERNETES, path: str = "a.yaml", quote: str = ""):
    """A single-scalar reference written as ``image: <text>`` and its file."""
    q = quote
    data = f"# top\nimage: {q}{text}{q}  # comment\n".encode()
    return make({path: data}, path, source, [Spec(IMG, text, "image: " + q, q)]), data


def edited(text: str, target: str, **kw: object) -> str:
    ref, data = one(text)
    out = apply(data, plan(ref, target, **kw)).decode()  # type: ignore[arg-type]
    return out.split("image: ", 1)[1].split("  # comment")[0]


@pytest.mark.parametrize(
    ("written", "target", "want"),
    [
        ("nginx:1.27", "docker.io/library/nginx:1.28", "nginx:1.28"),
        ("docker.io/library/nginx:1.27", "docker.io/library/nginx:1.28", "docker.io/library/nginx:1.28"),
        ("docker.io/nginx:1.27", "docker.io/library/nginx:1.28", "docker.io/nginx:1.28"),
        (
            "index.docker.io/library/nginx:1.27",
            "docker.io/library/nginx:1.28",
            "index.docker.io/library/nginx:1.28",
        ),
        ("library/nginx:1.27", "docker.io/library/nginx:1.28", "library/nginx:1.28"),
        ("bitnami/kubectl:1.31", "docker.io/alpine/kubectl:1.33.4", "alpine/kubectl:1.33.4"),
        (
            "docker.io/bitnami/kubectl:1.31",
            "docker.io/alpine/kubectl:1.33.4",
            "docker.io/alpine/kubectl:1.33.4",
        ),
        ("docker.io/bitnami/redis:7", "docker.io/library/redis:7.4", "docker.io/library/redis:7.4"),
        ("bitnami/redis:7", "docker.io/library/redis:7.4", "redis:7.4"),
        ("k8s.gcr.io/pause:3.9", "registry.k8s.io/pause:3.9", "registry.k8s.io/pause:3.9"),
        ("nginx:1.27", "ghcr.io/org/nginx:1.27", "ghcr.io/org/nginx:1.27"),
        ("quay.io/org/kubectl:1", "docker.io/alpine/kubectl:1.33.4", "docker.io/alpine/kubectl:1.33.4"),
        ("localhost:5000/app:1", "localhost:5000/app:2", "localhost:5000/app:2"),
        ("nginx", "docker.io/library/nginx:1.27.3", "nginx:1.27.3"),
        ("nginx:latest", "docker.io/library/nginx:1.27.3", "nginx:1.27.3"),
    ],
)
def test_name_style_follows_the_author(written: str, target: str, want: str) -> None:
    assert edited(written, target) == want


@pytest.mark.parametrize(
    ("written", "target", "digest", "want"),
    [
        ("nginx:1.27", "docker.io/library/nginx:1.27", D1, f"nginx:1.27@{D1}"),
        (f"nginx:1.27@{D1}", "docker.io/library/nginx:1.28", D2, f"nginx:1.28@{D2}"),
        (f"nginx@{D1}", "docker.io/library/nginx", D2, f"nginx@{D2}"),
        ("nginx:1.27", f"docker.io/library/nginx:1.28@{D1}", None, f"nginx:1.28@{D1}"),
        ("nginx:1.27", f"docker.io/library/nginx:1.28@{D1}", D1, f"nginx:1.28@{D1}"),
    ],
)
def test_digest_in_the_string(written: str, target: str, digest: str | None, want: str) -> None:
    assert edited(written, target, digest=digest) == want


def test_a_pin_is_never_dropped_silently() -> None:
    ref, _ = one(f"nginx:1.27@{D1}")
    with pytest.raises(EditError, match="pinned to a digest"):
        plan(ref, "docker.io/library/nginx:1.28")
    assert edited(f"nginx:1.27@{D1}", "docker.io/library/nginx:1.28", unpin=True) == "nginx:1.28"


@pytest.mark.parametrize(
    ("target", "digest", "match"),
    [
        ("docker.io/library/nginx:1.28", "sha256:abc", "invalid target"),
        (f"docker.io/library/nginx:1.28@{D1}", D2, "another digest"),
        ("Not A Reference", None, "invalid target"),
    ],
)
def test_bad_targets_are_refused(target: str, digest: str | None, match: str) -> None:
    ref, _ = one("nginx:1.27")
    with pytest.raises(EditError, match=match):
        plan(ref, target, digest=digest)


def test_already_there_gives_no_edits() -> None:
    ref, _ = one(f"nginx:1.28@{D1}")
    assert plan(ref, "docker.io/library/nginx:1.28", digest=D1) == ()
    ref, _ = one("docker.io/nginx:1.28")
    assert plan(ref, "docker.io/library/nginx:1.28") == ()


def test_expected_is_what_a_rescan_reports() -> None:
    assert expected("docker.io/alpine/kubectl:1.33.4", D1) == f"docker.io/alpine/kubectl:1.33.4@{D1}"
    with pytest.raises(EditError):
        expected("docker.io/library/nginx:1", "md5:x")


# --- quoting -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tag", "quoted"),
    [
        ("1.30", True),
        ("1.10", True),
        ("8", True),
        ("16", True),
        ("true", True),
        ("on", True),
        ("y", True),
        ("null", True),
        ("1e3", True),
        ("2024-01-01", True),
        ("0x1f", True),
        ("1_000", True),
        ("1.30.1", False),
        ("v1.30", False),
        ("1.30-alpine", False),
        ("latest", False),
    ],
)
def test_a_plain_tag_is_quoted_only_when_yaml_would_change_its_type(tag: str, quoted: bool) -> None:
    data = b"image:\n  repository: nginx\n  tag: 1.2.3\n"
    ref = make(
        {"v.yaml": data},
        "v.yaml",
        Source.HELM_VALUES,
        [Spec(Role.REPOSITORY, "nginx"), Spec(Role.TAG, "1.2.3", "tag: ")],
    )
    (edit,) = plan(ref, f"docker.io/library/nginx:{tag}")
    assert edit.new == (f'"{tag}"' if quoted else tag)


def test_existing_quotes_are_kept_and_new_ones_match_the_siblings() -> None:
    data = b"image:\n  repository: 'nginx'\n  tag: 1.2.3\n"
    ref = make(
        {"v.yaml": data},
        "v.yaml",
        Source.HELM_VALUES,
        [Spec(Role.REPOSITORY, "nginx", quote="'"), Spec(Role.TAG, "1.2.3", "tag: ")],
    )
    out = apply(data, plan(ref, "docker.io/library/nginx:1.30"))
    assert out == b"image:\n  repository: 'nginx'\n  tag: '1.30'\n"
    data = b'image:\n  repository: nginx\n  tag: "1.2.3"\n'
    ref = make(
        {"v.yaml": data},
        "v.yaml",
        Source.HELM_VALUES,
        [Spec(Role.REPOSITORY, "nginx"), Spec(Role.TAG, "1.2.3", "tag: ", '"')],
    )
    assert apply(data, plan(ref, "docker.io/library/nginx:8")) == b'image:\n  repository: nginx\n  tag: "8"\n'


@pytest.mark.parametrize(
    ("source", "path", "data", "needle"),
    [
        (Source.DOCKERFILE, "Dockerfile", b"ARG T=1.2.3\nFROM nginx:${T}\n", "1.2.3"),
        (Source.COMPOSE, "compose.yaml", b"services:\n  a:\n    image: nginx:${T:-1.2.3}\n", "1.2.3"),
        (Source.GITLAB_CI, ".gitlab-ci.yml", b"job:\n  image: $REG/nginx:1.2.3\n", "1.2.3"),
    ],
)
def test_pieces_of_a_larger_string_are_never_quoted(
    source: Source, path: str, data: bytes, needle: str
) -> None:
    ref = make({path: data}, path, source, [Spec(Role.REPOSITORY, "nginx"), Spec(Role.TAG, needle)])
    (edit,) = plan(ref, "docker.io/library/nginx:1.30")
    assert edit.new == "1.30"


# --- split fields --------------------------------------------------------------------------

HELM = b"""image:
  registry: docker.io
  repository: bitnami/kubectl
  tag: "1.31.2"
  digest: ""
"""


def helm(data: bytes = HELM, notes: tuple[str, ...] = ()):
    specs = [Spec(Role.REGISTRY, "docker.io"), Spec(Role.REPOSITORY, "bitnami/kubectl"),
             Spec(Role.TAG, "1.31.2", quote='"')]  # fmt: skip
    if b"digest: sha" in data:
        specs.append(Spec(Role.DIGEST, D1))
    elif b'digest: ""' in data:
        specs.append(Spec(Role.DIGEST, "", 'digest: "', '"'))
    return make({"values.yaml": data}, "values.yaml", Source.HELM_VALUES, specs, notes=notes)


def test_helm_block_changes_only_the_scalars_that_change() -> None:
    edits = plan(helm(), "docker.io/alpine/kubectl:1.33.4")
    assert [(e.old, e.new) for e in edits] == [("bitnami/kubectl", "alpine/kubectl"), ("1.31.2", "1.33.4")]
    assert apply(HELM, edits) == HELM.replace(b"bitnami/kubectl", b"alpine/kubectl").replace(
        b"1.31.2", b"1.33.4"
    )
    edits = plan(helm(), "docker.io/bitnami/kubectl:1.31.3")
    assert [(e.old, e.new) for e in edits] == [("1.31.2", "1.31.3")]


def test_helm_registry_field_takes_a_registry_change() -> None:
    edits = plan(helm(), "registry.k8s.io/bitnami/kubectl:1.31.2")
    assert [(e.old, e.new) for e in edits] == [("docker.io", "registry.k8s.io")]


def test_helm_digest_goes_into_the_digest_field() -> None:
    edits = plan(helm(), "docker.io/bitnami/kubectl:1.31.2", digest=D1)
    assert apply(HELM, edits) == HELM.replace(b'digest: ""', f'digest: "{D1}"'.encode())
    pinned = HELM.replace(b'digest: ""', f"digest: {D1}".encode())
    edits = plan(helm(pinned), "docker.io/bitnami/kubectl:1.31.3", digest=D2)
    assert [(e.old, e.new) for e in edits] == [("1.31.2", "1.31.3"), (D1, D2)]
    edits = plan(helm(pinned), "docker.io/bitnami/kubectl:1.31.3", unpin=True)
    assert apply(pinned, edits).endswith(b'digest: ""\n')


def test_a_sha_field_takes_the_digest_as_hex() -> None:
    """kube-prometheus-stack's `sha:` holds the hex alone (the chart writes `@sha256:`); the
    finders say so with a note, and without it the same field would get the full digest."""
    hex1, hex2 = D1.removeprefix("sha256:"), D2.removeprefix("sha256:")
    data = f'image:\n  repository: acme/op\n  tag: v1.0.0\n  sha: "{hex1}"\n'.encode()
    specs = [Spec(Role.REPOSITORY, "acme/op"), Spec(Role.TAG, "v1.0.0"), Spec(Role.DIGEST, hex1, quote='"')]
    text = f"acme/op:v1.0.0@{D1}"
    ref = make(
        {"values.yaml": data}, "values.yaml", Source.HELM_VALUES, specs, text=text, notes=(HEX_DIGEST,)
    )
    edits = plan(ref, "docker.io/acme/op:v1.1.0", digest=D2)
    assert [(e.old, e.new) for e in edits] == [("v1.0.0", "v1.1.0"), (hex1, hex2)]
    assert written(ref, edits) == f"acme/op:v1.1.0@{D2}"
    unpinned = apply(data, plan(ref, "docker.io/acme/op:v1.1.0", unpin=True))
    assert unpinned.endswith(b'tag: v1.1.0\n  sha: ""\n')
    plain = dataclasses.replace(ref, context=Context())
    assert plan(plain, "docker.io/acme/op:v1.1.0", digest=D2)[-1].new == D2  # a `digest:` field


def test_helm_block_without_digest_field_pins_in_the_tag() -> None:
    data = HELM.replace(b'  digest: ""\n', b"")
    edits = plan(helm(data), "docker.io/bitnami/kubectl:1.31.2", digest=D1)
    assert apply(data, edits).endswith(f'tag: "1.31.2@{D1}"\n'.encode())
    # ...and a later update replaces both, in the same field.
    again = apply(data, edits)
    ref = make(
        {"v.yaml": again},
        "v.yaml",
        Source.HELM_VALUES,
        [Spec(Role.REPOSITORY, "bitnami/kubectl"), Spec(Role.TAG, f"1.31.2@{D1}", quote='"')],
    )
    (edit,) = plan(ref, "docker.io/bitnami/kubectl:1.31.3", digest=D2)
    assert edit.new == f"1.31.3@{D2}"


def test_helm_registry_fold_only_where_the_repository_already_names_one() -> None:
    data = b"image:\n  repository: k8s.gcr.io/pause\n  tag: '3.9'\n"
    ref = make(
        {"v.yaml": data},
        "v.yaml",
        Source.HELM_VALUES,
        [Spec(Role.REPOSITORY, "k8s.gcr.io/pause"), Spec(Role.TAG, "3.9", quote="'")],
    )
    assert apply(data, plan(ref, "registry.k8s.io/pause:3.10")) == (
        b"image:\n  repository: registry.k8s.io/pause\n  tag: '3.10'\n"
    )
    data = b"image:\n  repository: bitnami/redis\n  tag: '7.4'\n"
    ref = make(
        {"v.yaml": data},
        "v.yaml",
        Source.HELM_VALUES,
        [Spec(Role.REPOSITORY, "bitnami/redis"), Spec(Role.TAG, "7.4", quote="'")],
    )
    with pytest.raises(EditError, match="no `registry:` field"):
        plan(ref, "harbor.internal/dockerhub/bitnami/redis:7.4")
    assert plan(ref, "docker.io/bitnamilegacy/redis:7.4")[0].new == "bitnamilegacy/redis"


def test_global_image_registry_is_never_edited_for_one_image() -> None:
    ref = helm(notes=("global.imageRegistry docker.io applied",))
    with pytest.raises(EditError, match=r"global\.imageRegistry"):
        plan(ref, "registry.k8s.io/bitnami/kubectl:1.31.2")
    assert len(plan(ref, "docker.io/alpine/kubectl:1.31.2")) == 1


def test_helm_tag_field_needs_a_tag() -> None:
    with pytest.raises(EditError, match="without a tag"):
        plan(helm(), f"docker.io/bitnami/kubectl@{D1}")


def test_helm_name_key_is_a_map_field() -> None:
    data = b"image:\n  name: bitnami/kubectl\n  tag: 1.31.2\n"
    ref = make(
        {"v.yaml": data},
        "v.yaml",
        Source.HELM_VALUES,
        [Spec(Role.NAME, "bitnami/kubectl"), Spec(Role.TAG, "1.31.2")],
    )
    out = apply(data, plan(ref, "docker.io/alpine/kubectl:1.33.4"))
    assert out == b"image:\n  name: alpine/kubectl\n  tag: 1.33.4\n"


# --- kustomize -----------------------------------------------------------------------------

KUST = b"images:\n- name: bitnami/kubectl\n  newTag: '1.31'\n"


def test_kustomize_name_is_the_match_key_and_never_edited() -> None:
    ref = make(
        {"k.yaml": KUST},
        "k.yaml",
        Source.KUSTOMIZE,
        [Spec(Role.NAME, "bitnami/kubectl"), Spec(Role.TAG, "1.31", quote="'")],
    )
    assert apply(KUST, plan(ref, "docker.io/bitnami/kubectl:1.31.4")) == KUST.replace(b"1.31", b"1.31.4")
    with pytest.raises(EditError, match="add `newName: alpine/kubectl`"):
        plan(ref, "docker.io/alpine/kubectl:1.31.4")


def test_kustomize_new_name_and_digest() -> None:
    data = KUST + f"  newName: bitnami/kubectl\n  digest: {D1}\n".encode()
    ref = make(
        {"k.yaml": data},
        "k.yaml",
        Source.KUSTOMIZE,
        [
            Spec(Role.NAME, "bitnami/kubectl"),
            Spec(Role.TAG, "1.31", quote="'"),
            Spec(Role.REPOSITORY, "bitnami/kubectl", "newName: "),
            Spec(Role.DIGEST, D1),
        ],
    )
    out = apply(data, plan(ref, "docker.io/alpine/kubectl:1.33.4", digest=D2))
    assert out == (
        b"images:\n- name: bitnami/kubectl\n  newTag: '1.33.4'\n"
        + f"  newName: alpine/kubectl\n  digest: {D2}\n".encode()
    )


def test_kustomize_without_new_tag_has_no_place_for_a_tag() -> None:
    data = f"images:\n- name: nginx\n  digest: {D1}\n".encode()
    ref = make(
        {"k.yaml": data}, "k.yaml", Source.KUSTOMIZE, [Spec(Role.NAME, "nginx"), Spec(Role.DIGEST, D1)]
    )
    assert plan(ref, "docker.io/library/nginx", digest=D2)[0].new == D2
    with pytest.raises(EditError, match="no `newTag` field"):
        plan(ref, "docker.io/library/nginx:1.28", digest=D2)


# --- refusals and other files ----------------------------------------------------------------


def test_parts_that_are_not_literal_bytes_are_never_edited() -> None:
    ref, _ = one("nginx:1.27")
    bent = dataclasses.replace(ref, parts=(dataclasses.replace(ref.parts[0], raw=False),))
    with pytest.raises(EditError, match="escapes or folded"):
        plan(bent, "docker.io/library/nginx:1.28")
    # an unchanged non-literal part does not stop the parts that do change
    h = helm()
    h = dataclasses.replace(h, parts=(dataclasses.replace(h.parts[0], raw=False), *h.parts[1:]))
    assert [e.new for e in plan(h, "docker.io/bitnami/kubectl:1.31.3")] == ["1.31.3"]


def test_skipped_and_templated_references_are_refused() -> None:
    ref, _ = one("nginx:1.27")
    skipped = dataclasses.replace(ref, reference=None, skip=Skip.TEMPLATED, detail="templated value")
    with pytest.raises(EditError, match="cannot be edited"):
        plan(skipped, "docker.io/library/nginx:1.28")
    data = b"image:\n  repository: '{{ .Values.repo }}'\n  tag: 1.2.3\n"
    ref = make(
        {"v.yaml": data},
        "v.yaml",
        Source.HELM_VALUES,
        [Spec(Role.REPOSITORY, "{{ .Values.repo }}", quote="'"), Spec(Role.TAG, "1.2.3", "tag: ")],
        text="nginx:1.2.3",
    )
    with pytest.raises(EditError):
        plan(ref, "docker.io/library/alpine:1.2.3")


def test_parts_in_other_files_edit_those_files() -> None:
    files = {
        "roles/app/tasks/main.yml": b'- docker_container:\n    image: "{{ app_image }}:{{ app_tag }}"\n',
        "roles/app/defaults/main.yml": b"app_image: bitnami/kubectl\napp_tag: 1.31.2\n",
    }
    d = "roles/app/defaults/main.yml"
    ref = make(
        files,
        "roles/app/tasks/main.yml",
        Source.ANSIBLE,
        [Spec(Role.REPOSITORY, "bitnami/kubectl", path=d), Spec(Role.TAG, "1.31.2", path=d)],
    )
    edits = plan(ref, "docker.io/alpine/kubectl:1.33")
    assert {e.path for e in edits} == {d}
    assert apply(files[d], edits) == b'app_image: alpine/kubectl\napp_tag: "1.33"\n'
    edits = plan(ref, "docker.io/alpine/kubectl:1.33", digest=D1)  # tag@digest is a string: no quotes
    assert apply(files[d], edits) == f"app_image: alpine/kubectl\napp_tag: 1.33@{D1}\n".encode()


def test_ansible_docker_image_tag_field_takes_no_digest() -> None:
    data = b"- docker_image:\n    name: nginx\n    tag: '1.27'\n    source: pull\n"
    ref = make(
        {"t.yml": data}, "t.yml", Source.ANSIBLE, [Spec(IMG, "nginx"), Spec(Role.TAG, "1.27", quote="'")]
    )
    assert [e.new for e in plan(ref, "docker.io/library/nginx:1.28")] == ["1.28"]
    with pytest.raises(EditError, match="no `digest` field"):
        plan(ref, "docker.io/library/nginx:1.28", digest=D1)


def test_a_scheme_prefix_is_kept() -> None:
    data = b"steps:\n  - uses: docker://alpine:3.19\n"
    ref = make(
        {"w.yml": data},
        "w.yml",
        Source.GITHUB_ACTIONS,
        [Spec(IMG, "docker://alpine:3.19")],
        text="alpine:3.19",
    )
    assert apply(data, plan(ref, "docker.io/library/alpine:3.20")) == data.replace(b"3.19", b"3.20")


def test_ambiguous_layouts_are_refused() -> None:
    data = b"image: nginx\nrepository: nginx\ntag: 1.27\n"
    ref = make(
        {"x.yaml": data},
        "x.yaml",
        Source.YAML,
        [Spec(IMG, "nginx"), Spec(Role.REPOSITORY, "nginx", "repository: "), Spec(Role.TAG, "1.27")],
        text="nginx:1.27",
    )
    with pytest.raises(EditError, match="which part"):
        plan(ref, "docker.io/library/nginx:1.28")


def test_a_tag_from_the_charts_app_version_is_left_to_the_chart() -> None:
    from bot.scan import helm_values, scan_file
    from tests.edit.helpers import DictRepo

    files = {
        "chart/Chart.yaml": b"apiVersion: v2\nname: x\nversion: 1.0.0\nappVersion: 1.31.2\n",
        "chart/values.yaml": b"image:\n  repository: bitnami/kubectl\n",
    }
    (ref,) = scan_file("chart/values.yaml", files["chart/values.yaml"], DictRepo(files), helm_values).refs
    assert ref.reference == "docker.io/bitnami/kubectl:1.31.2"
    (edit,) = plan(ref, "docker.io/bitnamilegacy/kubectl:1.31.2")
    assert (edit.old, edit.new) == ("bitnami/kubectl", "bitnamilegacy/kubectl")
    with pytest.raises(EditError, match="no `tag` field"):
        plan(ref, "docker.io/bitnami/kubectl:1.31.3")


@pytest.mark.parametrize(
    ("path", "quoted"),
    [("group_vars/all", True), ("inventory/host_vars/web1", True), ("roles/a/vars/main.yml", True),
     (".env", False), ("docker/Dockerfile", False)],
)  # fmt: skip
def test_variable_files_are_yaml_when_ansible_says_so(path: str, quoted: bool) -> None:
    files = {"t.yml": b"- docker_container:\n    image: 'nginx:{{ v }}'\n", path: b"v: 1.2.3\n"}
    ref = make(
        files, "t.yml", Source.ANSIBLE, [Spec(Role.REPOSITORY, "nginx"), Spec(Role.TAG, "1.2.3", path=path)]
    )
    (edit,) = plan(ref, "docker.io/library/nginx:1.30")
    assert (edit.path, edit.new) == (path, '"1.30"' if quoted else "1.30")


def test_oci_scheme_of_a_flux_repository_is_kept() -> None:
    data = b"spec:\n  url: oci://ghcr.io/org/manifests\n  ref:\n    tag: 1.0.0\n"
    ref = make(
        {"r.yaml": data},
        "r.yaml",
        Source.FLUX,
        [Spec(Role.REPOSITORY, "oci://ghcr.io/org/manifests"), Spec(Role.TAG, "1.0.0")],
        text="ghcr.io/org/manifests:1.0.0",
    )
    ref = dataclasses.replace(ref, artifact="oci-artifact")
    assert apply(data, plan(ref, "ghcr.io/org/manifests:1.1.0")) == data.replace(b"1.0.0", b"1.1.0")
    out = apply(data, plan(ref, "ghcr.io/acme/manifests:1.0.0"))
    assert out == data.replace(b"org/", b"acme/")
    with pytest.raises(EditError, match="no `digest` field"):  # Flux wants ref.digest, not tag@digest
        plan(ref, "ghcr.io/org/manifests:1.1.0", digest=D1)
