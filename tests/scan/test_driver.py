"""The scan driver: which files reach a finder, how broken files become errors, and that byte
spans survive a BOM. A stand-in finder keeps these tests independent of the real ones."""

from __future__ import annotations

import os
import re
import types
from collections.abc import Iterator

import pytest

import bot.scan as scan
from bot.model import ImageRef, Part, Role, Source
from bot.scan.common import make_ref
from bot.scan.text import Locator


def _fake_finder() -> types.ModuleType:
    mod = types.ModuleType("fake_finder")
    mod.SOURCE = Source.YAML

    def claims(path: str, head: bytes) -> bool:
        return path.endswith(".img")

    def find(text: str, path: str, repo: scan.Repo) -> Iterator[ImageRef]:
        if "boom" in text:
            raise RuntimeError("finder bug")
        loc = Locator(text)
        for m in re.finditer(r"image=(\S+)", text):
            span = loc.span(m.start(1), m.end(1))
            yield make_ref(path, Source.YAML, m.group(1), [Part(Role.IMAGE, m.group(1), span)])

    mod.claims, mod.find = claims, find
    return mod


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scan, "_loaded", [_fake_finder()])


def test_bom_is_removed_and_spans_shifted(fake: None, tmp_path) -> None:
    data = "\ufeff# é\nimage=nginx:1.27\n".encode()
    (tmp_path / "a.img").write_bytes(data)
    res = scan.scan_tree(tmp_path)
    (ref,) = res.refs
    span = ref.parts[0].span
    assert data[span.start : span.end] == b"nginx:1.27"
    assert (ref.line, ref.column) == (2, 7)
    assert ref.reference == "docker.io/library/nginx:1.27"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"image=a\x00b", "binary"),
        (b"\xff\xfei\x00m\x00", "UTF-16"),
        (b"image=caf\xe9", "invalid UTF-8"),
        (b"x" * (scan.MAX_FILE_BYTES + 1), "larger than"),
        (b"boom", "RuntimeError"),
    ],
)
def test_bad_files_become_errors(fake: None, tmp_path, data: bytes, message: str) -> None:
    (tmp_path / "bad.img").write_bytes(data)
    (tmp_path / "good.img").write_bytes(b"image=redis:7\n")
    res = scan.scan_tree(tmp_path)
    assert [r.text for r in res.refs] == ["redis:7"]
    assert len(res.errors) == 1 and res.errors[0].path == "bad.img"
    assert message in res.errors[0].message


def test_unclaimed_files_are_not_read_past_their_head(fake: None, tmp_path) -> None:
    (tmp_path / "blob.bin").write_bytes(b"\x00" * 10)
    res = scan.scan_tree(tmp_path)
    assert res.files == 0 and not res.errors


def test_vendored_dirs_and_git_are_skipped(fake: None, tmp_path) -> None:
    for d in (".git", "node_modules", "vendor", "src"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "x.img").write_text("image=alpine:3.20\n")
    res = scan.scan_tree(tmp_path)
    assert [r.path for r in res.refs] == ["src/x.img"]


def test_ignore_globs(fake: None, tmp_path) -> None:
    (tmp_path / "keep.img").write_text("image=a:1\n")
    (tmp_path / "skip").mkdir()
    (tmp_path / "skip" / "x.img").write_text("image=b:1\n")
    res = scan.scan_tree(tmp_path, ignore=["skip"])
    assert [r.path for r in res.refs] == ["keep.img"]


def test_symlinks_never_leave_the_root(fake: None, tmp_path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.img").write_text("image=evil:1\n")
    root = tmp_path / "repo"
    root.mkdir()
    (root / "inside.img").write_text("image=ok:1\n")
    os.symlink(outside / "secret.img", root / "link.img")
    os.symlink(outside, root / "linkdir")
    os.symlink(root / "inside.img", root / "alias.img")
    res = scan.scan_tree(root)
    assert sorted(r.path for r in res.refs) == ["alias.img", "inside.img"]
    repo = scan.LocalRepo(root)
    assert repo.read_text("link.img") is None
    assert repo.read_text("../outside/secret.img") is None
    assert repo.listdir("linkdir") == []


def test_progress_is_reported(fake: None, tmp_path) -> None:
    for i in range(3):
        (tmp_path / f"{i}.img").write_text("image=a:1\n")
    seen: list[tuple[int, int]] = []
    scan.scan_tree(tmp_path, progress=lambda d, t: seen.append((d, t)))
    assert seen == [(1, 3), (2, 3), (3, 3)]
