"""Ansible variables resolved to their definitions: role defaults and vars, inventory group_vars
and host_vars, play vars and vars_files, block and task vars; precedence, ambiguity, spans in
the defining files (BOM included), and the cases left skipped with their reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.model import ImageRef, Skip
from bot.scan import LocalRepo, ansible, claimant, scan_file
from bot.scan.ansible_vars import role_dir
from tests.edit.helpers import DictRepo
from tests.scan.test_ansible import FIX, check_spans, scan

ANSIBLE = FIX / "ansible"
DEFAULTS = "roles/app/defaults/main.yml"
ALL = "inventory/group_vars/all.yml"
WEB = "roles/web/defaults/main.yml"


def where(ref: ImageRef) -> list[tuple[str, str, str | None, int, int]]:
    """(role, text, file, line, column) of each part; file None for the using file."""
    return [(str(p.role), p.text, p.path, p.span.line, p.span.column) for p in ref.parts]


def by_line(rel: str) -> dict[int, ImageRef]:
    return {r.line: r for r in scan(rel, ANSIBLE).refs}


def test_role_defaults_split_into_name_and_version() -> None:
    r = by_line("roles/app/tasks/main.yml")[25]
    assert (r.column, r.text, r.reference, r.skip) == (
        13,
        "ghcr.io/acme/app:3.2.1",
        "ghcr.io/acme/app:3.2.1",
        None,
    )
    assert where(r) == [
        ("repository", "ghcr.io/acme/app", DEFAULTS, 3, 17),
        ("tag", "3.2.1", DEFAULTS, 4, 21),
    ]
    assert r.parts[1].quote == '"' and r.parts[0].quote == ""
    assert r.context.container == "migrate" and r.context.kind == "docker_container"
    assert r.context.notes == (
        "expanded from {{ app_image_name }}:{{ app_image_version }}",
        f"app_image_name from {DEFAULTS}:3 (role defaults)",
        f"app_image_version from {DEFAULTS}:4 (role defaults)",
    )


def test_group_vars_all_beats_role_defaults_and_the_other_is_noted() -> None:
    r = by_line("roles/app/tasks/main.yml")[70]
    assert r.reference == "docker.io/fluent/fluent-bit:3.1.9"  # not the default 3.1.6
    # The defaults file has a multi-byte comment before line 8: byte spans stay exact.
    assert where(r) == [("repository", "fluent/fluent-bit", DEFAULTS, 8, 20), ("tag", "3.1.9", ALL, 4, 19)]
    assert (
        f"log_shipper_tag from {ALL}:4 (group_vars/all); also set, with lower precedence, in {DEFAULTS}:9"
        in (r.context.notes)
    )


def test_variables_defined_through_variables() -> None:
    r = by_line("roles/app/tasks/main.yml")[75]
    assert r.reference == "mirror.gcr.io/prom/node-exporter:v1.8.2"
    assert where(r) == [
        ("registry", "mirror.gcr.io", ALL, 2, 18),
        ("repository", "prom/node-exporter", DEFAULTS, 11, 39),
        ("tag", "v1.8.2", DEFAULTS, 12, 24),
    ]


def test_role_vars_in_a_file_with_a_bom_and_a_default_literal() -> None:
    r = by_line("roles/app/tasks/main.yml")[79]
    assert (r.column, r.text) == (12, "docker.io/library/redis:7.4.1")
    assert where(r) == [
        ("image", "docker.io/library/redis", "roles/app/vars/main.yml", 3, 14),
        ("tag", "7.4.1", None, 80, 35),  # inside default('...') in the task itself
    ]
    assert r.parts[0].span.start == 69  # 3 BOM bytes + 53 of comment + "cache_image: "
    assert r.parts[1].quote == "'"
    assert "cache_tag is not defined: default '7.4.1' used" in r.context.notes


def test_whole_reference_from_a_default_literal() -> None:
    r = by_line("roles/app/tasks/main.yml")[86]
    assert (r.reference, where(r)) == (
        "docker.io/dpage/pgadmin4:8.12",
        [("image", "dpage/pgadmin4:8.12", None, 86, 39)],
    )


def test_handler_with_literal_name_and_defaulted_tag() -> None:
    _literal, r = scan("roles/app/handlers/main.yml", ANSIBLE).refs
    assert (r.line, r.column, r.reference) == (10, 13, "docker.io/library/traefik:v3.1.6")
    assert where(r) == [("repository", "traefik", None, 10, 13), ("tag", "v3.1.6", DEFAULTS, 15, 13)]
    assert r.parts[1].quote == "'"


def test_nested_mapping_access() -> None:
    r = by_line("roles/app/tasks/main.yml")[106]
    assert r.reference == "docker.io/jaegertracing/all-in-one:1.62.0"
    assert where(r) == [
        ("repository", "jaegertracing/all-in-one", DEFAULTS, 20, 10),
        ("tag", "1.62.0", DEFAULTS, 21, 9),
    ]


def test_a_component_pieced_together_is_resolved_but_not_editable() -> None:
    r = by_line("roles/app/tasks/main.yml")[101]
    assert r.reference == "ghcr.io/acme/app:3.2.1-migrate"
    ((p),) = r.parts
    assert (p.raw, p.path, p.span.line, p.span.column) == (False, None, 101, 13)


@pytest.mark.parametrize(
    ("line", "skip", "detail"),
    [
        (
            91,
            Skip.VARIABLE,
            f"alertmanager_version: defined in {DEFAULTS}:14, inventory/group_vars/monitoring.yml:3: "
            "which applies depends on the host's groups",
        ),
        (
            96,
            Skip.TEMPLATED,
            "{{ app_image_name | lower }} is not a plain variable or default(): not resolved",
        ),
        (
            111,
            Skip.VARIABLE,
            "mystery_image: not defined in the play or task vars, role defaults/vars or any inventory "
            "group_vars/host_vars in the repository (extra vars or another inventory may set it)",
        ),
    ],
)
def test_undecidable_and_unsupported_stay_skipped(line: int, skip: Skip, detail: str) -> None:
    r = by_line("roles/app/tasks/main.yml")[line]
    assert (r.reference, r.skip, r.detail) == (None, skip, detail)
    assert [p.path for p in r.parts] == [None] and "{{" in r.parts[0].text


def test_playbook_play_vars_files_block_task_and_host_vars() -> None:
    refs = scan("site.yml", ANSIBLE).refs
    got = [(r.line, r.column, r.reference, where(r)) for r in refs]
    assert got == [
        (12, 17, "docker.io/prom/prometheus:v2.54.1",
         [("repository", "prom/prometheus", None, 12, 17), ("tag", "v2.54.1", None, 5, 25)]),
        (16, 17, "docker.io/grafana/grafana:11.2.0",
         [("image", "grafana/grafana:11.2.0", "inventory/group_vars/monitoring.yml", 2, 16)]),
        (20, 17, "docker.io/grafana/loki:3.2.0", [("image", "grafana/loki:3.2.0", "vars/images.yml", 2, 13)]),
        (28, 21, "docker.io/prom/blackbox-exporter:v0.25.0",
         [("repository", "prom/blackbox-exporter", None, 28, 21), ("tag", "v0.25.0", None, 30, 27)]),
        (38, 17, "docker.io/restic/restic:0.17.1",
         [("repository", "restic/restic", None, 38, 17),
          ("tag", "0.17.1", "inventory/host_vars/db1.yml", 1, 13)]),
    ]  # fmt: skip
    assert "blackbox_tag from site.yml:30 (task vars); also set, with lower precedence, in site.yml:23" in (
        refs[3].context.notes
    )
    assert "loki_image from vars/images.yml:2 (play vars_files)" in refs[2].context.notes


def test_vars_files_are_claimed_and_report_nothing_themselves() -> None:
    for rel in (DEFAULTS, "roles/app/vars/main.yml", ALL, "inventory/host_vars/db1.yml"):
        assert claimant(rel, b"") is ansible, rel
        data = (ANSIBLE / rel).read_bytes()
        assert scan_file(rel, data, LocalRepo(ANSIBLE)).refs == []
    broken = scan_file("group_vars/all.yml", b"a: [\n", LocalRepo(ANSIBLE))
    assert broken.errors and "invalid YAML" in broken.errors[0].message


def test_two_inventories_defining_the_same_variable_is_a_skip() -> None:
    files = {
        "roles/web/tasks/main.yml": b'- docker_container:\n    name: web\n    image: "nginx:{{ web_tag }}"\n',
        "inventories/prod/group_vars/all.yml": b"web_tag: 1.27.3\n",
        "inventories/staging/group_vars/all.yml": b"web_tag: 1.27.4\n",
    }
    (r,) = scan_file(
        "roles/web/tasks/main.yml", files["roles/web/tasks/main.yml"], DictRepo(files), ansible
    ).refs
    assert (r.reference, r.skip) == (None, Skip.VARIABLE)
    assert r.detail == (
        "web_tag: defined at the same level (group_vars/all) in inventories/prod/group_vars/all.yml:1, "
        "inventories/staging/group_vars/all.yml:1: depends on the inventory or host in use"
    )
    # One inventory: decided, with the role default noted as overridden.
    del files["inventories/staging/group_vars/all.yml"]
    files["roles/web/defaults/main.yml"] = b"web_tag: '1.25'\n"
    (r,) = scan_file(
        "roles/web/tasks/main.yml", files["roles/web/tasks/main.yml"], DictRepo(files), ansible
    ).refs
    assert (r.reference, where(r)[1]) == (
        "docker.io/library/nginx:1.27.3",
        ("tag", "1.27.3", "inventories/prod/group_vars/all.yml", 1, 10),
    )


@pytest.mark.parametrize(
    ("value", "skip", "detail"),
    [
        (b"web_tag: 1.10\n", Skip.NON_STRING,
         f"web_tag: {WEB}:1: unquoted 1.10 is read as the number 1.1: quote it"),
        (b"web_tag: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n  6162\n", Skip.VARIABLE,
         f"web_tag: {WEB}:1: vault-encrypted"),
        (b"web_tag: [1, 2]\n", Skip.NON_STRING, f"web_tag: {WEB}:1: a list, not a string"),
        (b"web_tag: true\n", Skip.NON_STRING, f"web_tag: {WEB}:1: 'true' is not a string"),
    ],
)  # fmt: skip
def test_values_that_are_not_the_written_string(value: bytes, skip: Skip, detail: str) -> None:
    task = b'- docker_container:\n    image: "nginx:{{ web_tag }}"\n'
    files = {"roles/web/tasks/main.yml": task, "roles/web/defaults/main.yml": value}
    (r,) = scan_file("roles/web/tasks/main.yml", task, DictRepo(files), ansible).refs
    assert (r.reference, r.skip, r.detail) == (None, skip, detail)


def test_defaults_main_folder_and_a_bom_in_the_task_file(tmp_path: Path) -> None:
    (tmp_path / "roles/db/tasks").mkdir(parents=True)
    (tmp_path / "roles/db/defaults/main").mkdir(parents=True)
    (tmp_path / "roles/db/defaults/main/images.yml").write_bytes(b"# \xc3\xa9\ndb_image: postgres:16.4\n")
    task = b'\xef\xbb\xbf- name: db\n  docker_container:\n    image: "{{ db_image }}"\n'
    (tmp_path / "roles/db/tasks/main.yml").write_bytes(task)
    (r,) = scan_file("roles/db/tasks/main.yml", task, LocalRepo(tmp_path), ansible).refs
    assert (r.line, r.column, r.reference) == (3, 13, "docker.io/library/postgres:16.4")
    assert where(r) == [("image", "postgres:16.4", "roles/db/defaults/main/images.yml", 2, 11)]
    check_spans(tmp_path, "roles/db/tasks/main.yml", [r])


def test_unresolved_loops_report_the_depth() -> None:
    task = b'- docker_container:\n    image: "{{ a }}"\n'
    files = {"roles/x/tasks/main.yml": task, "roles/x/defaults/main.yml": b'a: "{{ b }}"\nb: "{{ a }}"\n'}
    (r,) = scan_file("roles/x/tasks/main.yml", task, DictRepo(files), ansible).refs
    assert (r.skip, r.detail) == (Skip.TEMPLATED, "variables nested too deeply")


def test_role_dir() -> None:
    assert role_dir("roles/app/tasks/main.yml", ("tasks", "handlers")) == "roles/app"
    assert role_dir("tasks/main.yml", ("tasks",)) == ""
    assert role_dir("a/roles/x/templates/sub/c.j2", ("templates",)) == "a/roles/x"
    assert role_dir("site.yml", ("tasks",)) is None


def test_molecule_platforms() -> None:
    refs = scan("roles/app/molecule/default/molecule.yml", ANSIBLE).refs
    got = [(r.line, r.column, r.reference, r.skip, r.context.kind, r.context.name) for r in refs]
    assert got == [
        (
            8,
            13,
            "docker.io/geerlingguy/docker-rockylinux9-ansible:latest",
            None,
            "molecule platform",
            "instance",
        ),
        (16, 12, "docker.io/library/debian:12", None, "molecule platform", "debian"),
        (18, 12, None, Skip.VARIABLE, "molecule platform", "custom"),
    ]
    assert refs[0].context.notes == (
        "pre_build_image: run as is",
        "default of geerlingguy/docker-${MOLECULE_DISTRO:-rockylinux9}-ansible:latest",
    )
    assert not refs[0].parts[0].raw  # pieced from the default: not editable in place
    assert refs[1].context.notes == ("base of the image Molecule builds",)
    assert refs[1].parts[0].raw and refs[1].context.field == "platforms[1].image"
    assert claimant("roles/app/molecule/default/molecule.yml", b"") is ansible
    assert (
        claimant("roles/app/molecule/default/converge.yml", b"---\n- name: Converge\n  hosts: all\n")
        is ansible
    )
