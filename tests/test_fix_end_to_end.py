"""`pullable fix` / `scan` end to end against real registries on loopback (distribution 2.8):
digest pins, multi-platform indexes, every built-in fixing rule, idempotence, file kinds whose
references are split or indirect, and credentials that must never show in any output."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from bot import cli

pytestmark = pytest.mark.registry


def _repo(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


def _pod(*images: str) -> str:
    """A Pod manifest with one container per image, written as given (quotes included)."""
    lines = ["apiVersion: v1", "kind: Pod", "spec:", "  containers:"]
    for i, image in enumerate(images):
        lines += [f"    - name: c{i}", f"      image: {image}"]
    return "\n".join(lines) + "\n"


def _operator(tmp_path: Path, *registries, hosts=("docker.io",), credentials=False) -> Path:
    mapping: dict = {"registries": {}}
    for reg, host in zip(registries, hosts, strict=True):
        mapping["registries"].update(reg.config_mapping(host=host, credentials=credentials)["registries"])
    path = tmp_path / "operator.yml"
    path.write_text(json.dumps(mapping))
    return path


def _fix(root: Path, operator: Path, capsys, *extra: str) -> str:
    assert cli.main(["fix", str(root), "--config", str(operator), *extra]) == 0
    return capsys.readouterr().out


def _scan(root: Path, operator: Path, capsys, *extra: str) -> dict:
    cli.main(["scan", str(root), "--config", str(operator), "--format", "json", *extra])
    return json.loads(capsys.readouterr().out)


def _ns() -> str:
    """A repository namespace of its own per test (the registry is shared by the session)."""
    return "t" + uuid.uuid4().hex[:10]


@pytest.mark.parametrize("media", ["oci", "docker"])
def test_pin_digest_writes_the_index_digest_and_keeps_the_tag(media, registry_open, tmp_path, capsys):
    ns = _ns()
    plats = ("linux/amd64", "linux/arm64")
    index = registry_open.push(f"{ns}/app", "1.2.4", platforms=plats, media=media)
    registry_open.push(f"{ns}/app", "1.2.3", media=media)
    registry_open.push(f"{ns}/app", "1.2", content="x", platforms=plats, media=media)
    op = _operator(tmp_path, registry_open)
    root = _repo(tmp_path / "repo", {
        ".github/pullable.yml": "pin: digest\n",
        "deploy.yaml": _pod(f"{ns}/app:1.2"),
    })  # fmt: skip
    out = _fix(root, op, capsys)
    assert f"{ns}/app:1.2 -> {ns}/app:1.2.4@{index}  [floating-minor]" in out
    assert f"image: {ns}/app:1.2.4@{index}\n" in (root / "deploy.yaml").read_text()
    # idempotent, and scan now reads the reference as ok
    assert "0 reference(s) fixed, changed 0 file(s)" in _fix(root, op, capsys)
    (finding,) = _scan(root, op, capsys)["findings"]
    assert finding["status"] == "ok" and finding["digest"] == index and finding["rule"] is None


def test_tag_at_digest_is_repinned_when_the_tag_moves_and_advised_when_the_tag_is_gone(
    registry_open, tmp_path, capsys
):
    ns = _ns()
    old = registry_open.push(f"{ns}/web", "2.0.1")
    registry_open.delete_manifest(f"{ns}/web", old)
    moved = registry_open.push(f"{ns}/web", "2.0.1", content="rebuilt")
    gone = registry_open.push(f"{ns}/gone", "1.0.0")
    registry_open.push(f"{ns}/gone", "1.0.1")
    registry_open.delete_manifest(f"{ns}/gone", gone)
    op = _operator(tmp_path, registry_open)
    body = _pod(f"{ns}/web:2.0.1@{old}", f"{ns}/gone:1.0.0@{gone}")
    root = _repo(tmp_path / "repo", {"deploy.yaml": body})
    doc = _scan(root, op, capsys)
    assert [f["status"] for f in doc["findings"]] == ["digest-missing", "digest-missing"]
    out = _fix(root, op, capsys)
    assert (root / "deploy.yaml").read_text() == body.replace(f"web:2.0.1@{old}", f"web:2.0.1@{moved}"), out
    assert f"{ns}/web:2.0.1@{old} -> {ns}/web:2.0.1@{moved}  [digest-missing]" in out
    assert f"{ns}/gone:1.0.0" in out and "[digest-missing]  advice:" in out
    assert "0 reference(s) fixed" in _fix(root, op, capsys)


def test_latest_becomes_the_versioned_tag_with_the_same_digest(registry_open, tmp_path, capsys):
    ns = _ns()
    registry_open.push(f"{ns}/tool", "3.1.0")
    registry_open.push(f"{ns}/tool", "3.2.0", content="current")
    registry_open.push(f"{ns}/tool", "3.3.0-rc1")
    registry_open.push(f"{ns}/tool", "latest", content="current")
    op = _operator(tmp_path, registry_open)
    root = _repo(tmp_path / "repo", {
        "docker-compose.yml": f"services:\n  a:\n    image: {ns}/tool\n  b:\n    image: {ns}/tool:latest\n",
    })  # fmt: skip
    out = _fix(root, op, capsys)
    assert (root / "docker-compose.yml").read_text() == (
        f"services:\n  a:\n    image: {ns}/tool:3.2.0\n  b:\n    image: {ns}/tool:3.2.0\n"
    )
    assert "2 reference(s) fixed, changed 1 file(s)" in out
    assert "advice" not in out


def test_tag_missing_moves_to_the_nearest_patch_and_minor_only_without_patches_is_left(
    registry_open, tmp_path, capsys
):
    ns = _ns()
    registry_open.push(f"{ns}/db", "16.4")
    registry_open.push(f"{ns}/db", "16")
    registry_open.push(f"{ns}/svc", "1.4.2-alpine")
    registry_open.push(f"{ns}/svc", "1.4.7-alpine")
    registry_open.push(f"{ns}/svc", "1.4.9")
    registry_open.push(f"{ns}/svc", "1.5.0-alpine")
    op = _operator(tmp_path, registry_open)
    root = _repo(tmp_path / "repo", {
        "a.yaml": f"apiVersion: v1\nkind: Pod\nspec:\n  containers:\n"
                  f"    - name: a\n      image: {ns}/db:16.4\n"
                  f"    - name: b\n      image: {ns}/svc:1.4.5-alpine\n",
    })  # fmt: skip
    out = _fix(root, op, capsys)
    text = (root / "a.yaml").read_text()
    assert f"image: {ns}/db:16.4\n" in text
    assert f"image: {ns}/svc:1.4.7-alpine\n" in text, out


def test_two_references_to_one_image_in_one_file_are_both_fixed_once(registry_open, tmp_path, capsys):
    ns = _ns()
    registry_open.push(f"{ns}/x", "1.0.3")
    op = _operator(tmp_path, registry_open)
    body = (f"apiVersion: v1\nkind: Pod\nspec:\n  initContainers:\n    - name: i\n      image: {ns}/x:1.0.1\n"
            f"  containers:\n    - name: a\n      image: \"{ns}/x:1.0.1\"\n")  # fmt: skip
    root = _repo(tmp_path / "repo", {"p.yaml": body})
    out = _fix(root, op, capsys)
    assert (root / "p.yaml").read_text() == body.replace("x:1.0.1", "x:1.0.3")
    assert "2 reference(s) fixed, changed 1 file(s)" in out


def test_dockerfile_arg_used_by_two_froms(registry_open, tmp_path, capsys):
    ns = _ns()
    registry_open.push(f"{ns}/py", "3.12.7")
    op = _operator(tmp_path, registry_open)
    body = (
        f"ARG BASE={ns}/py:3.12.1\nFROM ${{BASE}} AS build\nRUN true\nFROM ${{BASE}}\n"
        "COPY --from=build /a /a\n"
    )
    root = _repo(tmp_path / "repo", {"Dockerfile": body})
    out = _fix(root, op, capsys)
    assert (root / "Dockerfile").read_text() == body.replace("3.12.1", "3.12.7"), out
    assert "0 edit(s) dropped" in out
    assert "0 reference(s) fixed" in _fix(root, op, capsys)


def test_compose_default_and_kustomization_and_helm_values(registry_open, tmp_path, capsys):
    ns = _ns()
    registry_open.push(f"{ns}/pg", "16.4.2")
    registry_open.push(f"{ns}/ng", "1.27.3")
    registry_open.push(f"{ns}/rd", "7.2.6")
    op = _operator(tmp_path, registry_open)
    compose = f"services:\n  db:\n    image: ${{PG_IMAGE:-{ns}/pg:16.4.0}}\n"
    kust = (
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f'images:\n  - name: nginx\n    newName: {ns}/ng\n    newTag: "1.27.0"\n'
    )
    values = f"image:\n  registry: docker.io\n  repository: {ns}/rd\n  tag: 7.2.1\n"
    root = _repo(tmp_path / "repo", {"docker-compose.yml": compose, "kustomization.yaml": kust,
                                      "chart/values.yaml": values})  # fmt: skip
    out = _fix(root, op, capsys)
    assert (root / "docker-compose.yml").read_text() == compose.replace("16.4.0", "16.4.2"), out
    assert (root / "kustomization.yaml").read_text() == kust.replace("1.27.0", "1.27.3"), out
    assert (root / "chart/values.yaml").read_text() == values.replace("7.2.1", "7.2.6"), out


def test_helm_global_image_registry(registry_open, tmp_path, capsys):
    ns = _ns()
    registry_open.push(f"{ns}/rd", "7.2.6")
    host = "registry.example.com"
    op = _operator(tmp_path, registry_open, hosts=(host,))
    values = (
        f"global:\n  imageRegistry: {host}\n"
        f"image:\n  registry: docker.io\n  repository: {ns}/rd\n  tag: 7.2.1\n"
    )
    root = _repo(tmp_path / "repo", {"chart/values.yaml": values})
    out = _fix(root, op, capsys)
    assert (root / "chart/values.yaml").read_text() == values.replace("7.2.1", "7.2.6"), out


def test_k8s_gcr_move_and_bitnami_retired_note(registry_open, tmp_path, capsys):
    registry_open.push("pause", "3.10")
    ns = _ns()
    registry_open.push(f"bitnamilegacy/{ns}", "16.4.0-debian-12-r0")
    op = _operator(tmp_path, registry_open, registry_open, registry_open,
                   hosts=("k8s.gcr.io", "registry.k8s.io", "docker.io"))  # fmt: skip
    root = _repo(tmp_path / "repo", {
        "p.yaml": _pod("k8s.gcr.io/pause:3.10", f"bitnami/{ns}:16.4.0-debian-12-r0"),
    })  # fmt: skip
    doc = _scan(root, op, capsys)
    by = {f["text"]: f for f in doc["findings"]}
    b = by[f"bitnami/{ns}:16.4.0-debian-12-r0"]
    assert b["rule"] == "bitnami-retired" and b["fix"]["after"] == f"bitnamilegacy/{ns}:16.4.0-debian-12-r0"
    assert "Stop-gap" in (b["fix"]["advice"] or "")
    out = _fix(root, op, capsys)
    text = (root / "p.yaml").read_text()
    assert "image: registry.k8s.io/pause:3.10\n" in text, out
    assert f"image: bitnamilegacy/{ns}:16.4.0-debian-12-r0\n" in text, out


def test_mirror_rule(registry_open, tmp_path, capsys):
    ns = _ns()
    registry_open.push(f"{ns}/m", "1.0.0")
    registry_open.push(f"dockerhub/{ns}/m", "1.0.0")
    mapping = registry_open.config_mapping(host="docker.io")
    mapping["registries"].update(registry_open.config_mapping(host="harbor.internal")["registries"])
    op = tmp_path / "op.yml"
    op.write_text(json.dumps(mapping))
    root = _repo(tmp_path / "repo", {
        ".github/pullable.yml": "mirror:\n  docker.io: harbor.internal/dockerhub\n",
        "p.yaml": _pod(f"{ns}/m:1.0.0"),
    })  # fmt: skip
    out = _fix(root, op, capsys)
    assert f"image: harbor.internal/dockerhub/{ns}/m:1.0.0\n" in (root / "p.yaml").read_text(), out
    assert "0 reference(s) fixed" in _fix(root, op, capsys)


# --- credentials ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["registry_basic", "registry_token"])
def test_wrong_password_is_auth_failed_and_no_password_is_ever_printed(
    kind, request, tmp_path, capsys, caplog, monkeypatch
):
    reg = request.getfixturevalue(kind)
    ns = _ns()
    reg.push(f"private/{ns}", "1.0.0")
    reg.push(f"private/{ns}", "1.0.4")
    secret = "Wr0ng-" + uuid.uuid4().hex
    monkeypatch.setenv("PULLABLE_TEST_PASSWORD", secret)
    op = _operator(tmp_path, reg, hosts=(reg.host,), credentials=True)
    image = reg.ref(f"private/{ns}", "1.0.0")
    root = _repo(tmp_path / "repo", {"p.yaml": _pod(image)})
    caplog.set_level("DEBUG")
    doc = _scan(root, op, capsys)
    # the pod lists no pull secret for this private registry: the pull-secret check says so too
    (f, missing) = doc["findings"]
    assert missing["rule"] == "pull-secret-missing" and missing["status"] == "auth-failed"
    assert f["status"] == "auth-failed", f
    assert f["rule"] == "auth-failed" and "rejected" in f["advice"] and "imagePullSecrets" in f["advice"]
    out = _fix(root, op, capsys)
    assert "[auth-failed]  advice:" in out
    assert cli.main(["check", image, "--config", str(op), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["results"][0]["status"] == "auth-failed"
    seen = capsys.readouterr()
    everything = json.dumps(doc) + out + seen.out + seen.err + caplog.text
    assert secret not in everything

    # the right password: ok and fixable; anonymous: auth-required
    monkeypatch.setenv("PULLABLE_TEST_PASSWORD", reg.password)
    (root / "p.yaml").write_text(_pod(reg.ref(f"private/{ns}", "1.0")))
    reg.push(f"private/{ns}", "1.0", content="floating")
    out = _fix(root, op, capsys)
    assert (root / "p.yaml").read_text() == _pod(reg.ref(f"private/{ns}", "1.0.4")), out
    everything = out + caplog.text
    assert reg.password not in everything
    anonymous = _operator(tmp_path, reg, hosts=(reg.host,))
    (f, missing) = _scan(root, anonymous, capsys)["findings"]
    assert f["status"] == "auth-required" and f["rule"] == "auth-required"
    assert missing["rule"] == "pull-secret-missing"


def test_mirror_together_with_another_rule_is_fixed_in_one_run(registry_open, tmp_path, capsys):
    """`latest` and a missing tag are repaired *and* moved to the mirror by one `fix`: a second
    run must change nothing (it used to move the repaired reference to the mirror then)."""
    ns = _ns()
    for repo in (f"{ns}/m", f"dockerhub/{ns}/m"):
        registry_open.push(repo, "1.0.3")
        registry_open.push(repo, "latest", content=f"{ns}/m:1.0.3")
    mapping = registry_open.config_mapping(host="docker.io")
    mapping["registries"].update(registry_open.config_mapping(host="harbor.internal")["registries"])
    op = tmp_path / "op.yml"
    op.write_text(json.dumps(mapping))
    root = _repo(tmp_path / "repo", {
        ".github/pullable.yml": "mirror:\n  docker.io: harbor.internal/dockerhub\n",
        "p.yaml": _pod(f"{ns}/m:latest", f"{ns}/m:1.0.1"),
    })  # fmt: skip
    out = _fix(root, op, capsys)
    mirrored = f"harbor.internal/dockerhub/{ns}/m:1.0.3"
    assert (root / "p.yaml").read_text() == _pod(mirrored, mirrored), out
    assert f"p.yaml:6  {ns}/m:latest -> {ns}/m:1.0.3  [floating-latest]" in out
    assert f"p.yaml:6  {ns}/m:1.0.3 -> {mirrored}  [mirror]" in out
    assert "2 reference(s) fixed, changed 1 file(s)" in out
    assert "0 reference(s) fixed, changed 0 file(s)" in _fix(root, op, capsys)
