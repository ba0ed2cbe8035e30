"""The command line as a user drives it: scan and check, offline (the registry-backed paths are
tested end to end in tests/registry and tests/test_pipeline.py against a loopback registry)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_scan_offline_json_covers_every_file_kind(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "scan", str(EXAMPLES), "--offline", "--format", "json")
    assert code == 0
    doc = json.loads(out)
    sources = {f["source"] for f in doc["findings"]}
    assert {"kubernetes", "helm-values", "helm-template", "kustomize", "compose", "dockerfile",
            "ansible", "github-actions", "gitlab-ci", "argocd"} <= sources  # fmt: skip
    by_text = {f["text"]: f for f in doc["findings"]}
    job = by_text["bitnami/kubectl:1.31"]
    assert job["path"] == "k8s/cleanup-cronjob.yaml"
    assert (job["line"], job["column"]) == (17, 22)
    assert job["reference"] == "docker.io/bitnami/kubectl:1.31"
    assert job["status"] == "unchecked"
    assert job["context"]["needs_shell"] is True
    assert by_text["alpine:invalid!"]["status"] == "invalid"
    data = (EXAMPLES / job["path"]).read_bytes()
    part = job["parts"][0]
    assert data[part["start"] : part["end"]] == b"bitnami/kubectl:1.31"


def test_scan_offline_sarif_to_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_file = tmp_path / "pullable.sarif"
    code, out, _ = _run(capsys, "scan", str(EXAMPLES), "--offline", "--format", "sarif", "-o", str(out_file))
    assert code == 0 and out == ""
    doc = json.loads(out_file.read_text())
    assert doc["version"] == "2.1.0"
    uris = {
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in doc["runs"][0]["results"]
    }
    assert "argocd/web-app.yaml" in uris


def test_scan_table_is_the_default(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "scan", str(EXAMPLES / "k8s"), "--offline")
    assert code == 0
    assert out.splitlines()[0].split() == ["LINE:COL", "IMAGE", "STATUS", "RESOLVED", "/", "PROPOSED"]
    assert out.splitlines()[1] == "cleanup-cronjob.yaml"
    assert "bitnami/kubectl:1.31" in out


def test_scan_a_single_file(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(
        capsys, "scan", str(EXAMPLES / "docker" / "Dockerfile"), "--offline", "--format", "json"
    )
    assert code == 0
    assert [f["text"] for f in json.loads(out)["findings"]][:2] == [
        "docker/dockerfile:1",
        "node:18.99.1-alpine",
    ]


def test_scan_missing_path_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "scan", "/nonexistent/dir", "--offline")
    assert code == 2 and "no such file" in err


def test_bad_operator_config_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "pullable.yaml"
    cfg.write_text("registries:\n  docker.io:\n    endpoint: 42\n")
    code, _, err = _run(capsys, "check", "nginx:1.27", "--config", str(cfg))
    assert code == 2 and "endpoint" in err


def test_check_offline_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "check", "nginx:1.27", "Nginx", "--offline", "--format", "json")
    assert code == 1  # one input is invalid
    first, second = json.loads(out)["results"]
    assert first == {"input": "nginx:1.27", "valid": True, "reference": "docker.io/library/nginx:1.27",
                     "error": None, "familiar": "nginx:1.27", "status": "unchecked", "digest": None,
                     "detail": None, "level": "warning", "rule": "floating-minor", "fix": None,
                     "advice": "would pin this tag (newest-in-line); not verified (offline), so nothing is "
                               "proposed"}  # fmt: skip
    assert second["valid"] is False and second["reference"] is None and second["error"]


def test_unknown_command_exits_2() -> None:
    with pytest.raises(SystemExit) as exc:
        main(["frobnicate"])
    assert exc.value.code == 2


def test_console_script_runs(tmp_path: Path) -> None:
    exe = shutil.which("pullable", path=str(Path(sys.executable).parent))
    assert exe, "the console script is installed with the package"
    res = subprocess.run([exe, "check", "--offline", "alpine"], capture_output=True, text=True, check=False)
    assert res.returncode == 0 and "docker.io/library/alpine" in res.stdout


def test_serve_refuses_to_start_without_a_webhook_secret(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("WEBHOOK_SECRET", raising=False)
    code, _, err = _run(capsys, "serve")
    assert code == 2 and "WEBHOOK_SECRET" in err


def test_app_commands_are_listed(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for name in ("scan", "check", "fix", "serve", "worker"):
        assert name in out


def test_progress_bar_only_on_a_terminal_and_only_for_long_scans(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from bot import cli

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert cli._progress() is None  # piped: nothing on stderr
    tty = Tty()
    monkeypatch.setattr(sys, "stderr", tty)
    show = cli._progress()
    assert show is not None
    show(10, 100)  # short scans draw nothing
    assert tty.getvalue() == ""
    show(500, 1000)
    assert "scanning [###############...............] 500/1000" in tty.getvalue()
    show(1000, 1000)
    assert tty.getvalue().endswith("\r")  # the bar is wiped when done


def test_scan_table_escapes_what_a_repository_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """File names (and anything else a repository provides) reach the terminal escaped: an escape
    sequence cannot retitle or clear it, a newline cannot forge a line."""
    evil = "app\x1b]0;pwned\x07\x1b[2J\nFORGED ok.yaml\u202e"
    (tmp_path / "Dockerfile").write_text("FROM nginx:1.27\n")
    (tmp_path / evil).mkdir()
    (tmp_path / evil / "Dockerfile").write_text("FROM alpine:3.20\n")
    code, out, err = _run(capsys, "scan", str(tmp_path), "--offline")
    assert code == 0
    for bad in ("\x1b", "\x07", "\u202e"):
        assert bad not in out and bad not in err
    assert not any(line.startswith("FORGED") for line in out.splitlines())
    assert "\\x1b]0;pwned\\x07" in out and "\\x0aFORGED" in out


@pytest.mark.parametrize(
    ("image", "code"),
    [
        ("gitea/gitea:latest", 1),  # floating tag
        ("postgres:16", 1),  # minor-only tag
        ("bitnami/redis:7.2.4", 1),  # retired namespace
        ("k8s.gcr.io/pause:3.9", 1),  # frozen registry
        ('"Foo//bar:x"', 1),  # invalid reference
        ("redis:7.4.1", 0),
        ("gitea/gitea:1.22.3@sha256:" + "b" * 64, 0),
    ],
)
def test_offline_scan_fails_on_what_needs_no_registry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], image: str, code: int
) -> None:
    """What the pre-commit hook runs: ``scan --offline --fail-on warning`` on the changed files."""
    compose = tmp_path / "compose.yml"
    compose.write_text(f"services:\n  app:\n    image: {image}\n")
    got, out, _ = _run(capsys, "scan", "--offline", "--fail-on", "warning", str(compose))
    assert got == code, out


def test_files_of_a_repository_are_read_by_their_path_there(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Several files (the pre-commit hook): a workflow is claimed as one, and the repository's
    own .github/pullable.yml applies."""
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    (tmp_path / ".github" / "workflows" / "ci.yml").write_text("jobs:\n  t:\n    container: node:18\n")
    (tmp_path / ".github" / "pullable.yml").write_text("ignore:\n  paths: ['vendored/*']\n")
    (tmp_path / "vendored").mkdir()
    (tmp_path / "vendored" / "compose.yml").write_text("services:\n  a:\n    image: gitea/gitea:latest\n")
    monkeypatch.chdir(tmp_path)
    code, out, _ = _run(capsys, "scan", "--offline", "--format", "json", ".github/workflows/ci.yml",
                        "vendored/compose.yml")  # fmt: skip
    assert code == 0
    (found,) = json.loads(out)["findings"]
    assert (found["path"], found["source"], found["rule"]) == (".github/workflows/ci.yml", "github-actions",
                                                                "floating-major")  # fmt: skip
    code, _, err = _run(capsys, "scan", "--offline", "--root", ".", str(tmp_path.parent))
    assert code == 2 and "not a file inside" in err


def test_the_pre_commit_hook_fails_on_what_needs_no_registry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import re
    import shlex

    import yaml

    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hook["language"] == "python" and hook["id"] == "pullable"
    argv = shlex.split(hook["entry"])
    assert argv[:3] == ["pullable", "scan", "--offline"]
    files = ["Dockerfile", "deploy/compose.yml", ".github/workflows/ci.yml", "charts/web/values.yaml",
             "roles/db/tasks/main.yml", "docker/app.dockerfile", "k8s/job.yaml.j2"]  # fmt: skip
    assert all(re.search(hook["files"], f) for f in files)
    assert not any(re.search(hook["files"], f) for f in ("README.md", "bot/cli.py", "Dockerfile.md/x.py"))
    monkeypatch.chdir(tmp_path)
    Path("Dockerfile").write_text("FROM python:3.12.7-slim\n")
    Path("compose.yml").write_text("services:\n  a:\n    image: redis:7.4.1\n")
    assert _run(capsys, *argv[1:], "Dockerfile", "compose.yml")[0] == 0
    for bad in ("gitea/gitea:latest", "bitnami/redis:7.4.1", "k8s.gcr.io/pause:3.9", '"Foo//x"'):
        Path("compose.yml").write_text(f"services:\n  a:\n    image: {bad}\n")
        assert _run(capsys, *argv[1:], "Dockerfile", "compose.yml")[0] == 1, bad
