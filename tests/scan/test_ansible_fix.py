"""`pullable fix` on Ansible variables and Jinja templates, through bot.pipeline.run: the edits
land in the defining files (the winning definition only), the re-scan proves them, and a
reference whose definition cannot be decided is never edited."""

from __future__ import annotations

import shutil
from pathlib import Path

from bot.model import Finding
from tests.test_pipeline import CASES, fix_tree


def fixes(root: Path) -> dict[tuple[str, int], Finding]:
    return {(f.ref.path, f.ref.line): f for f in fix_tree(root).applied}


def test_variable_fixes_edit_the_winning_definitions(tmp_path: Path) -> None:
    work = tmp_path / "repo"
    shutil.copytree(CASES / "ansible-vars" / "before", work)
    applied = fixes(work)
    got = {
        k: (f.fix.rule, f.fix.after, sorted({(e.path, e.old, e.new) for e in f.fix.edits}))
        for k, f in applied.items()
        if f.fix is not None
    }
    defaults, tasks = "roles/tools/defaults/main.yml", "roles/tools/tasks/main.yml"
    assert got == {
        (tasks, 5): ("bitnami-kubectl", "alpine/kubectl:1.31.5",
                     [(defaults, "1.31", "1.31.5"), (defaults, "bitnami/kubectl", "alpine/kubectl")]),
        (tasks, 11): ("floating-minor", "redis:7.2.5", [("inventory/group_vars/all.yml", "7.2", "7.2.5")]),
        (tasks, 16): ("floating-latest", "nginx:1.27.3", [(tasks, "nginx", "nginx:1.27.3")]),
        ("roles/tools/handlers/main.yml", 4): ("floating-major", "postgres:16.4",
                                               [("roles/tools/handlers/main.yml", "16", "16.4")]),
        ("roles/tools/templates/compose.yml.j2", 4): ("bitnami-kubectl", "alpine/kubectl:1.31.5",
                     [(defaults, "1.31", "1.31.5"), (defaults, "bitnami/kubectl", "alpine/kubectl")]),
    }  # fmt: skip
    # The overridden role default is left as it was: it is not what the hosts pull.
    assert b'cache_tag: "7.0"' in (work / defaults).read_bytes()


def test_an_undecidable_variable_is_not_fixed(tmp_path: Path) -> None:
    work = tmp_path / "repo"
    shutil.copytree(CASES / "ansible-vars" / "before", work)
    (work / "inventory/group_vars/tools.yml").write_text('cache_tag: "7.2"\n')
    applied = fixes(work)
    assert ("roles/tools/tasks/main.yml", 11) not in applied  # group tools vs all: per host
    assert b'cache_tag: "7.2"   #' in (work / "inventory/group_vars/all.yml").read_bytes()
    assert (work / "inventory/group_vars/tools.yml").read_text() == 'cache_tag: "7.2"\n'
    assert ("roles/tools/tasks/main.yml", 5) in applied  # the others still go through


def test_template_fixes_touch_only_the_reference_bytes(tmp_path: Path) -> None:
    work = tmp_path / "repo"
    shutil.copytree(CASES / "jinja-template" / "before", work)
    fix_tree(work)
    before = (CASES / "jinja-template" / "before/roles/web/templates/compose.yml.j2").read_bytes()
    after = (work / "roles/web/templates/compose.yml.j2").read_bytes()
    assert after == before.replace(b"k8s.gcr.io/pause", b"registry.k8s.io/pause").replace(
        b"'redis:7.2'", b"'redis:7.2.5'"
    )
