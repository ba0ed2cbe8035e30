"""Issue 14 §1: files over the old 1 MiB cap are read (document by document, within the YAML
bounds), and the cap that remains is configurable and reported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli import main
from bot.scan import MAX_FILE_BYTES, LocalRepo, scan_file, scan_tree
from tests.support.generated import install_yaml
from tests.support.spans import check_spans

POD = "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - image: nginx:1.27\n"


def test_a_two_megabyte_install_yaml_is_read_to_its_last_document(tmp_path: Path) -> None:
    text, images = install_yaml(2 << 20)
    data = text.encode()
    assert len(data) > 2 << 20 and MAX_FILE_BYTES >= 32 << 20
    res = scan_file("manifests/install.yaml", data, LocalRepo(tmp_path))
    assert not res.errors
    assert [r.text for r in res.refs] == images
    check_spans(data, res.refs)


def test_the_cap_is_configurable_and_says_how_to_raise_it(tmp_path: Path) -> None:
    text, images = install_yaml(1 << 20)
    (tmp_path / "install.yaml").write_text(text)
    (tmp_path / "pod.yaml").write_text(POD)
    small = scan_tree(tmp_path, max_bytes=512 << 10)
    assert [r.text for r in small.refs] == ["nginx:1.27"]
    (err,) = small.errors
    assert err.path == "install.yaml" and "larger than 524,288 bytes" in err.message
    assert "--max-file-mb" in err.message
    assert sorted(r.text for r in scan_tree(tmp_path).refs) == sorted([*images, "nginx:1.27"])


def test_cli_max_file_mb(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text, _images = install_yaml(600 << 10)
    (tmp_path / "install.yaml").write_text(text)
    assert main(["scan", str(tmp_path), "--offline", "--format", "json", "--max-file-mb", "0.5"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["findings"] == [] and "larger than" in doc["errors"][0]["message"]
    assert main(["scan", str(tmp_path), "--offline", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["findings"]) == 12 and doc["errors"] == []


def test_operator_setting() -> None:
    from bot.settings import Settings

    assert Settings.from_env({}).max_file_bytes == MAX_FILE_BYTES
    assert Settings.from_env({"PULLABLE_MAX_FILE_BYTES": "1048576"}).max_file_bytes == 1 << 20
