"""The sample pull request and dashboard issue in docs/ are what the App renders today: a change
to the templates, the rules or examples/ that changes them fails here until they are regenerated
(``.venv/bin/python -m tests.support.samples``), so the documentation cannot drift from the code."""

from __future__ import annotations

import pytest

from tests.support import samples


@pytest.fixture(scope="module")
def rendered() -> dict[str, str]:
    return samples.render()


@pytest.mark.parametrize("name", ["sample-pull-request.md", "sample-dashboard-issue.md"])
def test_docs_sample_is_what_the_app_renders(rendered: dict[str, str], name: str) -> None:
    on_disk = (samples.DOCS / name).read_text(encoding="utf-8")
    assert on_disk == rendered[name], f"docs/{name} is stale: run .venv/bin/python -m tests.support.samples"


def test_samples_show_what_a_reviewer_and_an_operator_look_for(rendered: dict[str, str]) -> None:
    pr = rendered["sample-pull-request.md"]
    assert "### Rule `bitnami-retired`" in pr and "**Why:**" in pr and "<summary>Evidence</summary>" in pr
    assert "`bitnamilegacy/redis:7.2`" in pr and "<!-- pullable:pr " in pr
    issue = rendered["sample-dashboard-issue.md"]
    assert "## Needs attention" in issue and "## Open pull requests (1)" in issue and "#42" in issue
    assert "`/pullable unignore busybox`" in issue and "<!-- pullable:dashboard " in issue


def test_samples_are_linked_from_the_readme() -> None:
    readme = (samples.ROOT / "README.md").read_text(encoding="utf-8")
    for name in ("sample-pull-request.md", "sample-dashboard-issue.md", "scheduled-workflow.yml"):
        assert f"docs/{name}" in readme
