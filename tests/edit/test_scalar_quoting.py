"""A part that is a whole YAML scalar gets quotes when its new bare text would change type, even
in files whose other parts are pieces of larger strings (GitLab variables, compose defaults)."""

from __future__ import annotations

from bot import edit
from bot.scan import LocalRepo, scan_file

GITLAB = b"variables:\n  PG_VERSION: 16.2\nimage: postgres:$PG_VERSION\n"
COMPOSE = b"services:\n  db:\n    image: ${PG_IMAGE:-postgres:16.2}\n"


def _only(path: str, data: bytes):
    (ref,) = scan_file(path, data, LocalRepo(".")).refs
    return ref


def test_a_gitlab_variable_is_quoted_when_the_new_tag_reads_as_a_number() -> None:
    ref = _only(".gitlab-ci.yml", GITLAB)
    tag = next(p for p in ref.parts if p.text == "16.2")
    assert tag.scalar  # the whole value of PG_VERSION
    out = edit.apply(GITLAB, edit.plan(ref, "docker.io/library/postgres:16.10"))
    assert out == GITLAB.replace(b"PG_VERSION: 16.2", b'PG_VERSION: "16.10"')


def test_a_compose_default_is_a_piece_of_a_string_and_stays_bare() -> None:
    ref = _only("docker-compose.yml", COMPOSE)
    assert not any(p.scalar for p in ref.parts)
    out = edit.apply(COMPOSE, edit.plan(ref, "docker.io/library/postgres:16.10"))
    assert out == COMPOSE.replace(b"postgres:16.2}", b"postgres:16.10}")
