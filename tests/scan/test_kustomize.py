"""Kustomizations: each images entry becomes the reference kustomize writes, with a Part per field."""

from __future__ import annotations

from pathlib import Path

from bot.model import ImageRef, Role, Skip, Source
from bot.scan import ScanResult, kustomize
from tests.support.spans import scan_data

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "scan"
DIGEST = "sha256:5f1a7a6e6f25e3b0b4e5e5d0f0a7d5bd0e6a4f5f8a8dd7e3c9e1f6f7a1b2c3d4"


def scan(rel: str, data: bytes | None = None) -> ScanResult:
    data = (FIX / rel).read_bytes() if data is None else data
    res = scan_data(rel, data, kustomize, FIX, at_first_part=True, all_raw=True)
    assert res.errors == []
    return res


def parts(ref: ImageRef) -> list[tuple[Role, str, int, int]]:
    return [(p.role, p.text, p.span.line, p.span.column) for p in ref.parts]


def test_images_entries() -> None:
    refs = scan("kustomize/overlays/prod/kustomization.yaml").refs
    assert all(r.source is Source.KUSTOMIZE for r in refs)
    got = [(r.line, r.column, r.text, r.reference, r.skip, r.context.field) for r in refs]
    assert got == [
        (7, 11, "nginx:1.27.2", "docker.io/library/nginx:1.27.2", None, "images[0]"),
        (9, 11, "registry.example.com/acme/api:v2.3.0", "registry.example.com/acme/api:v2.3.0", None,
         "images[1]"),
        (12, 11, f"redis@{DIGEST}", f"docker.io/library/redis@{DIGEST}", None, "images[2]"),
        # images[3] (postgres) has only a name: it overrides nothing.
        (15, 11, "docker.io/library/busybox", None, Skip.TAG_FROM_BASE, "images[4]"),
        (23, 21, "bitnami/redis:7.4.1-debian-12-r0", "docker.io/bitnami/redis:7.4.1-debian-12-r0", None,
         "helmCharts[0].valuesInline.image"),
    ]  # fmt: skip
    assert refs[3].detail == (
        "docker.io/library/busybox: the tag is kept from the manifests' busybox; "
        "no base this scan can read names busybox"
    )
    assert refs[1].context.notes == ("overrides image ghcr.io/acme/api",)
    assert refs[4].context.name == "redis"


def test_a_part_per_field() -> None:
    tag_only, renamed, digest, name_only, inline = scan("kustomize/overlays/prod/kustomization.yaml").refs
    assert parts(tag_only) == [(Role.NAME, "nginx", 7, 11), (Role.TAG, "1.27.2", 8, 14)]
    assert tag_only.parts[1].quote == '"'
    assert parts(renamed) == [
        (Role.NAME, "ghcr.io/acme/api", 9, 11),
        (Role.REPOSITORY, "registry.example.com/acme/api", 10, 14),
        (Role.TAG, "v2.3.0", 11, 13),
    ]
    assert parts(digest) == [(Role.NAME, "redis", 12, 11), (Role.DIGEST, DIGEST, 13, 13)]
    assert [p.role for p in name_only.parts] == [Role.NAME, Role.REPOSITORY]
    assert [p.role for p in inline.parts] == [Role.REPOSITORY, Role.TAG]


def test_tag_and_digest_both_kept_and_non_strings() -> None:
    data = (
        b"images:\n- name: app\n  newTag: 1.10\n  digest: " + DIGEST.encode() + b"\n"
        b"- name: bad\n  newTag: [1]\n"
    )
    both, bad = scan("kustomization.yaml", data).refs
    assert (both.text, both.reference) == (f"app:1.10@{DIGEST}", f"docker.io/library/app:1.10@{DIGEST}")
    assert (bad.line, bad.column, bad.skip, bad.detail) == (5, 9, Skip.NON_STRING, "not a string: newTag")


def test_claims() -> None:
    assert kustomize.claims("overlays/prod/kustomization.yaml", b"")
    assert kustomize.claims("base/kustomization.yml", b"")
    assert kustomize.claims("base/Kustomization", b"")
    assert kustomize.claims("comp.yaml", b"apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n")
    assert not kustomize.claims("flux.yaml", b"apiVersion: kustomize.toolkit.fluxcd.io/v1\n")


def test_new_name_without_new_tag_takes_the_bases_tag() -> None:
    """Issue 14 §2: the tag comes from the base the entry rewrites (its manifests, and its own
    ``images:`` entries over them); a name no base uses stays skipped, saying so."""
    busybox, worker, nginx = scan("kustomize/rename/overlay/kustomization.yaml").refs
    assert busybox.reference == "mirror.example.com/library/busybox:1.36"
    assert busybox.context.notes[-1] == (
        "tag 1.36 from kustomize/rename/base/deployment.yaml, the image this entry renames"
    )
    assert [p.role for p in busybox.parts] == [Role.NAME, Role.REPOSITORY]  # the tag is the base's
    assert worker.reference == "registry.example.com/acme/worker:2.2.0"  # the base's newTag wins
    assert (nginx.reference, nginx.skip) == (None, Skip.TAG_FROM_BASE)
    assert "no base this scan can read names nginx" in (nginx.detail or "")
