"""bench/recall.py: every candidate line of the fixture trees is explained by a finding, a skip or
a documented rule; and lines nothing explains are listed."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "scan"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_recall", ROOT / "bench" / "recall.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


recall = _load()
TREES = sorted(p.name for p in FIXTURES.iterdir() if p.is_dir())


@pytest.mark.parametrize("tree", TREES)
def test_fixture_trees_have_no_unexplained_candidates(tree: str) -> None:
    r = recall.recall(FIXTURES, under=f"{tree}/")
    assert r.unexplained == []
    assert r.errors == []
    assert sum(r.candidates.values()) > 0  # the tree was read


def test_examples_have_no_unexplained_candidates() -> None:
    r = recall.recall(ROOT / "examples")
    assert r.unexplained == []
    assert sum(r.found.values()) >= 20


def test_gaps_are_listed_and_explanations_hold(tmp_path: Path) -> None:
    (tmp_path / "deploy.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations:\n"
        "    note: the image is rebuilt nightly\n"  # prose in a value: explained
        "spec:\n  containers:\n    - name: a\n      image: busybox:1.36\n"
        "      imagePullPolicy: Always\n"  # a sibling of a finding: explained
        "      env:\n        - name: SIDECAR_IMAGE_REF\n"
        "          value: see quay.io/acme/side:1.0 here\n"  # qualified, found: explained
        "        - name: OTHER_IMAGE\n"  # a value naming the env var: prose
        "          value: nginx\n"
        "  # image: old/unused:1\n"  # a comment
        "  sidecar_image_ref: quay.io/acme/side:2.0\n"  # nobody reads this key: a gap
    )
    r = recall.recall(tmp_path)
    assert [(g.path, g.line, g.source, g.text) for g in r.unexplained] == [
        ("deploy.yaml", 18, "kubernetes", "sidecar_image_ref: quay.io/acme/side:2.0"),
    ]
    assert (r.found["kubernetes"], r.candidates["kubernetes"]) == (2, 7)


def test_prints_a_table_and_the_gaps(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "Dockerfile").write_text(
        "FROM alpine:3.20 AS base\nFROM base\nFROM scratch\nRUN echo image\n"
    )
    (tmp_path / "x.yaml").write_text("build:\n  myImageRef: ghcr.io/a/b:1\n")
    assert recall.main([str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["source", "found", "skipped", "candidates", "unexplained"]
    assert out[1].split() == ["dockerfile", "1", "0", "4", "1"]
    assert out[2].split() == ["kubernetes", "0", "0", "1", "1"]  # candidates: by claiming finder
    assert out[3:] == [
        "Dockerfile:4: [dockerfile] RUN echo image",
        "x.yaml:2: [kubernetes] myImageRef: ghcr.io/a/b:1",
    ]
