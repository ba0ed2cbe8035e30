"""Golden before/after files per file kind, read by the real finders.

Each ``tests/fixtures/edit/<kind>/`` holds ``before.*`` and ``after.*`` (or ``before/`` and
``after/`` trees when one reference spans several files) and ``case.json``: the finder, the path
the file has in its repository, the target of each reference (keyed by its normalised reference
before the edit), and the references whose edit must be refused. The after file is written by
hand: the test proves the engine produces it byte for byte, that a re-scan reads every changed
reference as intended and every other one as before, and that planning again changes nothing.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import pytest

from bot.edit import EditError, apply_all, expected, plan, verify, written
from bot.model import ImageRef, Role, Source
from bot.scan import scan_file
from tests.edit.helpers import DictRepo, Spec, make

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "edit"
CASES = sorted(p.name for p in FIXTURES.iterdir() if (p / "case.json").is_file())


def tree(root: Path, side: str, meta: dict[str, Any]) -> dict[str, bytes]:
    """The files of one side of a case, by repository path."""
    d = root / side
    if d.is_dir():
        return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}
    (single,) = [p for p in root.iterdir() if p.name.split(".")[0] == side]
    return {meta["path"]: single.read_bytes()}


def scan(files: dict[str, bytes], meta: dict[str, Any], side: int) -> list[ImageRef]:
    """References of the scanned files: by the finder, plus any built by hand in the case (for
    constructs no finder reports yet; ``find`` gives the part's text before and after)."""
    refs: list[ImageRef] = []
    if meta.get("finder"):
        mod = importlib.import_module(f"bot.scan.{meta['finder']}")
        repo = DictRepo(dict(files))
        for path in meta.get("scan", [meta.get("path")]):
            got = scan_file(path, files[path], repo, mod)
            assert got.errors == [], got.errors
            refs += got.refs
    reported = {(r.path, r.reference) for r in refs}
    for r in meta.get("refs", []):
        specs = [
            Spec(Role(p["role"]), p["find"][side], p.get("after", ""), p.get("quote", ""), path=p.get("path"))
            for p in r["parts"]
        ]
        ref = make(files, r["path"], Source(r["source"]), specs, text=r.get("text"))
        if (ref.path, ref.reference) not in reported:  # once the finder reports it, the finder's wins
            refs.append(ref)
    return refs


@pytest.mark.parametrize("kind", CASES)
def test_golden(kind: str) -> None:
    root = FIXTURES / kind
    meta = json.loads((root / "case.json").read_text())
    before, after = tree(root, "before", meta), tree(root, "after", meta)
    targets: dict[str, dict[str, Any]] = meta["targets"]
    refuse: dict[str, dict[str, Any]] = meta.get("refuse", {})

    refs = scan(before, meta, 0)
    found = {r.reference for r in refs}
    assert set(targets) | set(refuse) <= found, "case.json names references the finder does not report"

    edits, intended, shown = [], {}, {}
    for r in refs:
        if r.reference in targets:
            t = targets[r.reference]
            mine = plan(r, t["target"], digest=t.get("digest"))
            edits += mine
            intended[r.key] = expected(t["target"], t.get("digest"))
            shown[r.key] = written(r, mine)
        elif r.reference in refuse:
            with pytest.raises(EditError, match=refuse[r.reference]["match"]):
                plan(r, refuse[r.reference]["target"])
    changed = apply_all(before, edits)
    assert {**before, **changed} == after
    assert set(changed) == {p for p in before if before[p] != after[p]}

    again = scan(after, meta, 1)
    assert verify(refs, again, intended) == []
    for b, a in zip(refs, again, strict=True):
        if b.key in intended:
            if "{{" not in a.text:  # a finder may show a resolved template as written
                assert shown[b.key] == a.text, "written() differs from what the file now says"
            t = targets[b.reference]  # type: ignore[index]
            assert plan(a, t["target"], digest=t.get("digest")) == (), f"not idempotent: {a.text}"
