"""Issue 14 §3: chart-specific keys (``repo:`` + ``tag:``, ``imageRepository`` with the tag
elsewhere in the block); a repository with no tag anywhere is reported as skipped, not dropped."""

from __future__ import annotations

from bot.model import Role, Skip
from bot.scan import helm_values, kubernetes
from tests.support.spans import scan_data, scan_fixture


def test_repo_and_tag_and_image_repository_with_a_plain_tag() -> None:
    _data, res = scan_fixture("helm/chart-keys/values.yaml", helm_values)
    got = [(r.line, r.reference, r.skip) for r in res.refs]
    assert got == [
        (4, "quay.io/cilium/cilium:v1.16.0", None),
        (8, "registry.k8s.io/sig-storage/csi-provisioner:v5.0.1", None),
        (12, None, Skip.NO_TAG),  # a repository, no tag in its block: said, not guessed
    ]  # kubeadm's `imageRepository: registry.k8s.io` is a registry prefix, no reference
    assert [p.role for p in res.refs[1].parts] == [Role.REPOSITORY, Role.TAG]
    assert "no tag is written" in (res.refs[2].detail or "")


def test_no_tag_outside_helm_values_is_not_a_chart_default() -> None:
    text = b"apiVersion: example.io/v1\nkind: Agent\nspec:\n  image:\n    repository: ghcr.io/example/agent\n"
    (ref,) = scan_data("agent.yaml", text, kubernetes).refs
    assert ref.skip is Skip.NO_TAG and ref.reference is None
