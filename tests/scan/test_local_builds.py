"""Issue 14 §2: images the repository builds itself (a compose service with ``build:`` and
``image:``, a Skaffold artifact, a Tilt ``docker_build``) are never pulls: reported as skipped
(``built-locally``), never checked, called rotten nor changed, and so are the other places that
deploy the same image."""

from __future__ import annotations

from bot import pipeline
from bot.model import Resolution, Skip, Status
from bot.repoconfig import RepoConfig
from bot.rules import load
from bot.scan import scan_tree
from tests.support.spans import FIXTURES


def _by_text() -> dict[tuple[str, str], object]:
    res = scan_tree(FIXTURES / "local-builds", contain=False)
    assert res.errors == []
    web = [r for r in res.refs if r.text == "registry.example.com/shop/web:1.0.0"]
    assert [r.context.name for r in web] == ["web", "proxy"]  # the proxy runs what web builds
    assert all(r.skip is Skip.BUILT_LOCALLY for r in web)
    return {(r.path, r.text): r for r in res.refs}


def test_built_images_are_skipped_everywhere_they_are_used() -> None:
    refs = _by_text()
    built = {k for k, r in refs.items() if r.skip is Skip.BUILT_LOCALLY}  # type: ignore[attr-defined]
    assert built == {
        ("docker-compose.yml", "registry.example.com/shop/web:1.0.0"),  # build: + image:, and proxy
        ("skaffold.yaml", "shop-api"),
        ("Tiltfile", "shop-worker"),
        ("k8s/deployment.yaml", "shop-api"),  # deployed, built by Skaffold
        ("k8s/deployment.yaml", "shop-worker:dev"),  # deployed, built by Tilt
    }
    assert refs[("k8s/deployment.yaml", "redis:7.4")].reference == "docker.io/library/redis:7.4"  # type: ignore[attr-defined]
    assert refs[("docker-compose.yml", "postgres:16.4")].skip is None  # type: ignore[attr-defined]


class _Missing:
    """A registry where every tag is missing: what a never-pushed local build looks like."""

    def check(self, reference: str) -> Resolution:
        return Resolution(reference, Status.TAG_MISSING)

    def tags(self, name: str) -> list[str]:
        return ["1.0.1"]

    def pinned_digest(self, reference: str) -> str | None:
        return None


def test_never_checked_nor_changed() -> None:
    res = scan_tree(FIXTURES / "local-builds", contain=False)
    findings = pipeline.evaluate(res.refs, _Missing(), RepoConfig(), load())
    for f in findings:
        if f.ref.skip is Skip.BUILT_LOCALLY:
            assert f.status is Status.UNCHECKED and f.fix is None, f
