"""Ansible: container modules, pulled images, k8s definitions, anywhere in plays and roles."""

from __future__ import annotations

from pathlib import Path

from bot.model import ImageRef, Role, Source
from bot.scan import LocalRepo, ScanResult, ansible, scan_file

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "scan"


def check_spans(root: Path, path: str, refs: list[ImageRef]) -> None:
    """Every part's bytes, in its own file, are its text; line and column match the offset. A
    reference's position is its first part's, unless its parts are variable definitions."""
    for ref in refs:
        expanded = any(n.startswith(("expanded from", "default of")) for n in ref.context.notes)
        if not expanded:
            assert (ref.line, ref.column) == (ref.parts[0].span.line, ref.parts[0].span.column)
        for p in ref.parts:
            data = (root / (p.path or path)).read_bytes()
            if p.raw:
                assert data[p.span.start : p.span.end] == p.text.encode(), p
            bol = data.rfind(b"\n", 0, p.span.start) + 1
            line = data.count(b"\n", 0, p.span.start) + 1
            column = len(data[bol : p.span.start].decode().lstrip("\ufeff")) + 1
            assert (p.span.line, p.span.column) == (line, column), p


def scan(rel: str, root: Path = FIX) -> ScanResult:
    data = (root / rel).read_bytes()
    res = scan_file(rel, data, LocalRepo(root), ansible)
    assert res.errors == []
    check_spans(root, rel, res.refs)
    assert all(r.source is Source.ANSIBLE for r in res.refs)
    return res


def test_role_tasks() -> None:
    refs = scan("ansible/roles/app/tasks/main.yml").refs
    got = [(r.line, r.column, r.text, r.reference, r.skip) for r in refs]
    assert (
        got
        == [
            (4, 11, "ghcr.io/acme/app:3.2.1", "ghcr.io/acme/app:3.2.1", None),  # docker_image source: pull
            # docker_image with source: build is not pulled.
            (18, 13, "postgres:16.4", "docker.io/library/postgres:16.4", None),
            (25, 13, "ghcr.io/acme/app:3.2.1", "ghcr.io/acme/app:3.2.1", None),  # role defaults
            (33, 16, "docker.io/library/redis:7.4", "docker.io/library/redis:7.4", None),  # inside block:
            (50, 24, "ghcr.io/acme/worker:1.8.0", "ghcr.io/acme/worker:1.8.0", None),  # k8s definition
            (65, 24, "ghcr.io/acme/seed:0.4.2", "ghcr.io/acme/seed:0.4.2", None),  # definition: | string
            *[(r.line, r.column, r.text, r.reference, r.skip) for r in refs[6:]],  # testansible_vars.py
        ]
    )
    assert len(refs) == 15
    assert [(p.role, p.text) for p in refs[0].parts] == [
        (Role.IMAGE, "ghcr.io/acme/app"),
        (Role.TAG, "3.2.1"),
    ]


def test_context() -> None:
    refs = scan("ansible/roles/app/tasks/main.yml").refs[:6]
    got = [(r.context.kind, r.context.name, r.context.container, r.context.needs_shell) for r in refs]
    assert got == [
        ("community.docker.docker_image", "Pull the application image", None, None),
        ("community.docker.docker_container", "Start the database", "db", None),
        ("docker_container", "Run migrations", "migrate", True),  # command: sh -c "..."
        ("containers.podman.podman_container", "Start redis", "cache", False),
        ("Deployment", "worker", "worker", None),
        ("Job", "seed", "seed", None),
    ]
    assert refs[4].context.notes == ("in kubernetes.core.k8s definition",)
    assert (
        refs[4].context.field == "[5].kubernetes.core.k8s.definition.spec.template.spec.containers[0].image"
    )
    assert refs[3].context.field == "[4].block[0].containers.podman.podman_container.image"


def test_handlers_and_playbooks() -> None:
    h, _templated = scan("ansible/roles/app/handlers/main.yml").refs
    assert (h.line, h.column, h.reference) == (4, 12, "docker.io/library/traefik:v3.1")
    assert h.context.container == "proxy"
    (p,) = scan("ansible/deploy.yml").refs
    assert (p.line, p.column, p.reference) == (7, 16, "docker.io/restic/restic:0.17.1")
    assert p.context.needs_shell is False  # entrypoint execs restic


def test_claims_by_path_and_content() -> None:
    for path in ("roles/web/tasks/main.yml", "roles/web/handlers/main.yaml", "x/tasks/setup.yml",
                 "playbooks/deploy.yml", "site.yml", "ops/playbook-db.yaml"):  # fmt: skip
        assert ansible.claims(path, b""), path
    assert ansible.claims("deploy.yml", b"---\n- hosts: all\n  tasks: []\n")
    assert ansible.claims("deploy.yml", b"- name: x\n  hosts: web\n")
    assert ansible.claims("steps.yml", b"- name: run\n  community.docker.docker_container:\n    name: x\n")
    assert not ansible.claims("deploy.yml", b"apiVersion: v1\nkind: Pod\n")
    assert not ansible.claims("list.yml", b"- a\n- b\n")
    assert not ansible.claims("roles/web/tasks/main.json", b"")
