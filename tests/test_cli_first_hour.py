"""Issue 16, the command line as a new user meets it: one line and a distinct exit code for every
kind of failure, check/fix following --fail-on, stale answers made visible, quiet short runs and
readable long ones, fix FILE, the user's own Docker login, and operator rules."""

from __future__ import annotations

import io
import json
import os
import stat
import sys
import uuid
from pathlib import Path

import pytest

from bot import cli, report
from bot.model import Resolution, Status

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _ns() -> str:
    return "t" + uuid.uuid4().hex[:10]


# --- 9: one line, distinct exit codes -----------------------------------------------------------


def test_output_into_a_missing_directory_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(
        capsys, "scan", str(EXAMPLES / "k8s"), "--offline", "-o", "/nonexistent/dir/out.json"
    )
    assert code == cli.EXIT_USAGE == 2 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "/nonexistent/dir/out.json" in err and "does not exist" in err


def test_output_to_a_directory_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(capsys, "scan", str(EXAMPLES / "k8s"), "--offline", "-o", str(tmp_path))
    assert code == 2 and err.count("\n") == 1 and "is a directory" in err


def test_a_bad_port_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PORT", "abc")
    monkeypatch.setenv("WEBHOOK_SECRET", "x" * 40)
    code, _, err = _run(capsys, "serve")
    assert code == 2 and err == "pullable: PORT='abc' is not a whole number\n"


def test_an_internal_error_is_one_line_and_exit_3(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(*args: object, **kwargs: object) -> str:
        raise RuntimeError("boom")

    monkeypatch.setattr(report, "to_json", broken)
    monkeypatch.delenv("PULLABLE_DEBUG", raising=False)
    code, _, err = _run(capsys, "scan", str(EXAMPLES / "k8s"), "--offline", "--format", "json")
    assert code == cli.EXIT_INTERNAL == 3
    assert err.startswith("pullable: internal error: RuntimeError: boom\n") and "Traceback" not in err
    monkeypatch.setenv("PULLABLE_DEBUG", "1")  # and the traceback when asked for
    with pytest.raises(RuntimeError):
        cli.main(["scan", str(EXAMPLES / "k8s"), "--offline", "--format", "json"])


def test_exit_codes_are_documented_in_help_and_readme(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--help"], ["scan", "--help"], ["check", "--help"], ["fix", "--help"]):
        with pytest.raises(SystemExit):
            cli.main(argv)
        out = capsys.readouterr().out
        assert "exit codes:" in out and "1  findings" in out and "2  usage" in out and "3  internal" in out
    readme = (EXAMPLES.parent / "README.md").read_text()
    assert "3 internal error" in readme


# --- 10: check and fix follow --fail-on -----------------------------------------------------------


def _operator(tmp_path: Path, registry: object, host: str = "docker.io") -> Path:
    path = tmp_path / f"operator-{uuid.uuid4().hex[:6]}.yml"
    path.write_text(registry.config_yaml(host=host))  # type: ignore[attr-defined]
    return path


@pytest.mark.registry
def test_check_shows_the_replacement_scan_shows_and_fails_on_error(
    registry_open: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry_open.push("alpine/kubectl", "1.31.4")  # type: ignore[attr-defined]
    op = _operator(tmp_path, registry_open)
    code, out, _ = _run(capsys, "check", "bitnami/kubectl:1.31", "--config", str(op), "--no-cache")
    assert code == 1  # check fails on error by default: the image will not pull
    assert "-> alpine/kubectl:1.31.4  [bitnami-kubectl]" in out
    code, out, _ = _run(capsys, "check", "bitnami/kubectl:1.31", "--config", str(op), "--format", "json",
                        "--fail-on", "never")  # fmt: skip
    assert code == 0
    (r,) = json.loads(out)["results"]
    assert r["status"] in ("repo-missing", "tag-missing") and r["level"] == "error"
    assert r["rule"] == "bitnami-kubectl" and r["fix"]["after"] == "alpine/kubectl:1.31.4"
    # the same finding from scan
    (tmp_path / "job.yaml").write_text("kind: Pod\nspec:\n  containers:\n    - image: bitnami/kubectl:1.31\n")
    code, out, _ = _run(capsys, "scan", str(tmp_path / "job.yaml"), "--config", str(op), "--format", "json",
                        "--fail-on", "error")  # fmt: skip
    assert code == 1 and json.loads(out)["findings"][0]["fix"]["after"] == "alpine/kubectl:1.31.4"


@pytest.mark.registry
def test_fix_follows_fail_on_for_what_it_leaves(
    registry_open: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ns = _ns()
    registry_open.push(f"{ns}/app", "1.2.4")  # type: ignore[attr-defined]
    registry_open.push(f"{ns}/app", "1.2", content="1.2.4")  # type: ignore[attr-defined]
    op = _operator(tmp_path, registry_open)
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "compose.yaml").write_text(
        f"services:\n  a:\n    image: {ns}/app:1.2\n  b:\n    image: {ns}/gone:1\n"
    )
    code, _, _ = _run(capsys, "fix", str(repo), "--config", str(op), "--dry-run", "--fail-on", "error")
    assert code == 1  # {ns}/gone does not exist and no rule can fix it
    (repo / "compose.yaml").write_text(f"services:\n  a:\n    image: {ns}/app:1.2\n")
    code, _, _ = _run(capsys, "fix", str(repo), "--config", str(op), "--fail-on", "warning")
    assert code == 0  # the floating tag was fixed: nothing is left
    assert f"{ns}/app:1.2.4" in (repo / "compose.yaml").read_text()


# --- 11: stale answers ---------------------------------------------------------------------------


@pytest.mark.registry
def test_cached_answers_say_how_old_they_are_and_no_cache_asks_again(
    registry_open: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ns = _ns()
    op = str(_operator(tmp_path, registry_open))
    registry_open.push(f"{ns}/app", "1.0.0")  # type: ignore[attr-defined]
    ref = f"{ns}/app:1.0.1"
    cache = tmp_path / "cache"
    _, out, _ = _run(capsys, "check", ref, "--config", op, "--cache-dir", str(cache), "--format", "json")
    (first,) = json.loads(out)["results"]
    assert first["status"] == "tag-missing" and first["evidence"]["cached_age_s"] is None
    assert (cache / "registry-cache.sqlite3").is_file()  # --cache-dir is where it went
    registry_open.push(f"{ns}/app", "1.0.1")  # type: ignore[attr-defined]
    _, out, _ = _run(capsys, "check", ref, "--config", op, "--cache-dir", str(cache))
    assert "tag-missing" in out and "(cached, " in out and " s old)" in out
    _, out, _ = _run(capsys, "check", ref, "--config", op, "--cache-dir", str(cache), "--no-cache",
                     "--format", "json")  # fmt: skip
    (fresh,) = json.loads(out)["results"]
    assert fresh["status"] == "ok" and fresh["evidence"]["cached_age_s"] is None


# --- 12: progress, advice once, width, filters ------------------------------------------------------


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


class _FakeRegistry:
    def __init__(self) -> None:
        self.batches: list[int] = []

    def check_many(self, refs: list[str]) -> dict[str, Resolution]:
        self.batches.append(len(refs))
        return {r: Resolution(r, Status.OK) for r in refs}

    def check(self, reference: str) -> Resolution:
        return Resolution(reference, Status.OK)

    def tags(self, name: str) -> list[str]:
        return []

    def pinned_digest(self, reference: str) -> str | None:
        return None

    def platforms(self, reference: str) -> tuple[str, ...]:
        return ()


def test_registry_lookups_show_progress_on_a_terminal_only(monkeypatch: pytest.MonkeyPatch) -> None:
    refs = [f"docker.io/library/img{i}:1" for i in range(150)]
    fake = _FakeRegistry()
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    quiet = cli._Reporting(fake)  # type: ignore[arg-type]
    assert len(quiet.check_many(refs)) == 150 and fake.batches == [150]  # piped: one batch, no output
    quiet.tags("docker.io/library/img0")
    assert sys.stderr.getvalue() == ""
    tty = _Tty()
    monkeypatch.setattr(sys, "stderr", tty)
    loud = cli._Reporting(fake)  # type: ignore[arg-type]
    assert len(loud.check_many(refs)) == 150
    assert fake.batches[1:] == [64, 64, 22]
    assert "checking images [" in tty.getvalue() and "] 150/150" in tty.getvalue()
    loud.tags("docker.io/library/img0")
    loud.pinned_digest("docker.io/library/img0:1")
    assert "verifying fixes: 2 registry lookup(s)" in tty.getvalue()
    loud.done()
    assert tty.getvalue().endswith("\r")


def test_table_fits_the_width_has_a_header_and_gives_each_advice_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from bot import pipeline
    from bot.repoconfig import RepoConfig
    from bot.rules import load
    from bot.scan import scan_tree

    findings = pipeline.evaluate(scan_tree(EXAMPLES).refs, None, RepoConfig(), load())
    for width in (60, 80, 120):
        out = report.to_table(findings, [], 14, width=width)
        assert max(len(line) for line in out.splitlines()) <= width
    out = report.to_table(findings, [], 14, width=100)
    assert out.splitlines()[0].split()[:3] == ["LINE:COL", "IMAGE", "STATUS"]
    # the offline note for bitnami/postgresql is written twice in the examples: printed once, counted
    note = "would move this to docker.io/bitnamilegacy/postgresql"
    assert out.count(note) == 1 and "(2 references) " + note in out


def test_only_problems_and_severity_filter_what_is_shown_not_the_exit_code(
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, out, _ = _run(capsys, "scan", str(EXAMPLES), "--offline", "--format", "json")
    every = json.loads(out)["findings"]
    _, out, _ = _run(capsys, "scan", str(EXAMPLES), "--offline", "--format", "json", "--only", "problems")
    problems = json.loads(out)["findings"]
    assert 0 < len(problems) < len(every)
    assert all(f["rule"] or f["status"] == "invalid" for f in problems)
    code, out, _ = _run(capsys, "scan", str(EXAMPLES), "--offline", "--format", "json", "--severity", "error",
                        "--fail-on", "warning")  # fmt: skip
    assert [f["text"] for f in json.loads(out)["findings"]] == ["alpine:invalid!"]
    assert code == 1  # warnings were hidden, yet still judged
    _, out, _ = _run(capsys, "scan", str(EXAMPLES), "--offline", "--severity", "error")
    assert out.rstrip().splitlines()[-1].startswith(f"1 references shown of {len(every)} in 14 files")


# --- 14: fix FILE, unrecognised files, --offline --config ------------------------------------------


@pytest.mark.registry
def test_fix_a_single_file_like_scan_a_single_file(
    registry_open: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ns = _ns()
    registry_open.push(f"{ns}/app", "2.0.3")  # type: ignore[attr-defined]
    registry_open.push(f"{ns}/app", "2.0", content="2.0.3")  # type: ignore[attr-defined]
    op = _operator(tmp_path, registry_open)
    target = tmp_path / "Dockerfile"
    target.write_text(f"FROM {ns}/app:2.0\nRUN true\n")
    code, out, _ = _run(capsys, "fix", str(target), "--config", str(op))
    assert code == 0, out
    assert target.read_text() == f"FROM {ns}/app:2.0.3\nRUN true\n"
    assert "Dockerfile:1" in out


def test_an_unrecognised_file_says_why_it_has_no_references(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("we run nginx:1.27 in production\n")
    for command in ("scan", "fix"):
        code, out, err = _run(capsys, command, str(notes), "--offline" if command == "scan" else "--dry-run")
        assert code == 2 and out == ""
        assert "notes.txt: no finder claims this file" in err and "Dockerfiles" in err


def test_offline_still_reads_the_operator_config(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "scan", str(EXAMPLES / "k8s"), "--offline", "--config", "/nonexistent.yml")
    assert code == 2 and "/nonexistent.yml" in err and "cannot read" in err
    code, _, err = _run(capsys, "check", "nginx", "--offline", "--config", "/nonexistent.yml")
    assert code == 2 and "cannot read" in err


# --- 15: the user's own Docker login ------------------------------------------------------------


def _helper(bin_dir: Path, name: str, host: str, log: Path) -> None:
    """A docker-credential-<name> that knows testuser/testpassword for ``host`` only."""
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / f"docker-credential-{name}"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        "action = sys.argv[1]; server = sys.stdin.read().strip()\n"
        f"open({str(log)!r}, 'a').write(action + ' ' + server + '\\n')\n"
        f"if action == 'get' and server == {host!r}:\n"
        "    print(json.dumps({'ServerURL': server, 'Username': 'testuser', 'Secret': 'testpassword'}))\n"
        "else:\n"
        "    print('credentials not found in native keychain'); sys.exit(1)\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)


@pytest.mark.registry
@pytest.mark.parametrize("how", ["credHelpers", "credsStore", "auths"])
def test_the_cli_uses_the_users_docker_login(
    how: str, registry_basic: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    ns = _ns()
    host = registry_basic.host  # type: ignore[attr-defined]
    registry_basic.push(f"{ns}/private", "1.0")  # type: ignore[attr-defined]
    op = tmp_path / "operator.yml"
    op.write_text(registry_basic.config_yaml())  # type: ignore[attr-defined]  # endpoint, no credentials
    docker = Path(os.environ["DOCKER_CONFIG"])
    log = tmp_path / "helper.log"
    _helper(tmp_path / "bin", "test", host, log)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    login = {
        "credHelpers": {"credHelpers": {host: "test", "other.example:5000": "missing"}},
        "credsStore": {"credsStore": "test", "auths": {host: {}}},
        "auths": {"auths": {host: {"username": "testuser", "password": "testpassword"}}},
    }[how]
    (docker / "config.json").write_text(json.dumps(login))
    ref = f"{host}/{ns}/private:1.0"
    code, out, _ = _run(capsys, "check", ref, "--config", str(op), "--no-cache", "--format", "json")
    assert json.loads(out)["results"][0]["status"] == "ok" and code == 0
    if how != "auths":
        assert log.read_text() == f"get {host}\n"  # the host on stdin, asked once
    assert "testpassword" not in out
    code, out, _ = _run(capsys, "check", ref, "--config", str(op), "--no-cache", "--no-docker-login",
                        "--format", "json")  # fmt: skip
    assert json.loads(out)["results"][0]["status"] == "auth-required"


@pytest.mark.registry
def test_docker_login_is_per_exact_host_and_a_missing_helper_is_said(
    registry_basic: object,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ns = _ns()
    host = registry_basic.host  # type: ignore[attr-defined]
    registry_basic.push(f"{ns}/private", "1.0")  # type: ignore[attr-defined]
    op = tmp_path / "operator.yml"
    op.write_text(registry_basic.config_yaml())  # type: ignore[attr-defined]
    log = tmp_path / "helper.log"
    _helper(tmp_path / "bin", "test", host, log)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    docker = Path(os.environ["DOCKER_CONFIG"])
    # credentials for the same address on another port, and a helper that is not installed
    other = host.replace("127.0.0.1", "localhost")
    (docker / "config.json").write_text(json.dumps({"credHelpers": {other: "test"}, "credsStore": "nothere"}))
    code, out, err = _run(capsys, "check", f"{host}/{ns}/private:1.0", "--config", str(op), "--no-cache")
    assert code == 0  # auth-required may pull (a warning): check fails on error by default
    assert "auth-required" in out and not log.exists()
    assert "docker-credential-nothere is not on PATH" in err


def test_operator_docker_config_helpers_are_not_ignored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from bot.registry import RegistryConfig

    path = tmp_path / "config.json"
    path.write_text(json.dumps({"credHelpers": {"ghcr.io": "nothere"}}))
    config = RegistryConfig.from_mapping({"docker_config": str(path)}, env={})
    assert config.host("ghcr.io") is None
    assert "docker-credential-nothere is not on PATH" in caplog.text
    path.write_text(json.dumps({"credHelpers": {"ghcr.io": "../../bin/sh"}}))
    with pytest.raises(
        Exception, match=r"credHelpers\.ghcr\.io: '\.\./\.\./bin/sh' is not a credential helper"
    ):
        RegistryConfig.from_mapping({"docker_config": str(path)}, env={})


# --- 16: rules without forking -------------------------------------------------------------------

OURS = """rules:
  - id: internal-nginx
    why: Our platform serves nginx from its own registry.
    match: {name: docker.io/library/nginx}
    advise: Use harbor.internal/base/nginx instead of {reference}.
"""


def test_rules_dir_adds_validated_rules_in_file_name_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    (rules_dir / "05-ours.yaml").write_text(OURS)
    code, out, _ = _run(capsys, "scan", str(EXAMPLES / "charts"), "--offline", "--format", "json",
                        "--rules", str(rules_dir))  # fmt: skip
    assert code == 0
    nginx = next(f for f in json.loads(out)["findings"] if f["text"] == "docker.io/library/nginx")
    assert nginx["rule"] == "internal-nginx" and "harbor.internal/base/nginx" in nginx["advice"]
    # the same directory from the operator configuration, relative to it
    op = tmp_path / "operator.yml"
    op.write_text("rules: [rules]\n")
    _, out, _ = _run(
        capsys, "scan", str(EXAMPLES / "charts"), "--offline", "--format", "json", "--config", str(op)
    )
    assert any(f["rule"] == "internal-nginx" for f in json.loads(out)["findings"])


def test_bad_operator_rules_are_clear_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    (rules_dir / "05-ours.yaml").write_text(OURS.replace("advise:", "advice:"))
    code, _, err = _run(capsys, "scan", str(EXAMPLES / "k8s"), "--offline", "--rules", str(rules_dir))
    assert code == 2 and "05-ours.yaml" in err and "internal-nginx" in err and "advice" in err
    (rules_dir / "05-ours.yaml").write_text(OURS.replace("internal-nginx", "floating-latest"))
    code, _, err = _run(capsys, "scan", str(EXAMPLES / "k8s"), "--offline", "--rules", str(rules_dir))
    assert code == 2 and "'floating-latest' is already used by" in err
    code, _, err = _run(capsys, "scan", str(EXAMPLES / "k8s"), "--offline", "--rules", str(tmp_path / "nope"))
    assert code == 2 and "no such rules directory" in err
    (tmp_path / "op.yml").write_text("rules: [missing-dir]\n")
    code, _, err = _run(
        capsys, "scan", str(EXAMPLES / "k8s"), "--offline", "--config", str(tmp_path / "op.yml")
    )
    assert code == 2 and "rules[0]: missing-dir: no such directory" in err


def test_extends_in_a_local_checkout_is_said_not_silently_dropped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / ".github").mkdir()
    (tmp_path / ".github" / "pullable.yml").write_text("_extends: .github\npin: digest\n")
    (tmp_path / "Dockerfile").write_text("FROM nginx:1.27\n")
    code, _, err = _run(capsys, "scan", str(tmp_path), "--offline")
    assert code == 0 and "_extends: .github is read by the App" in err


@pytest.mark.registry
def test_the_app_never_reads_a_users_docker_login(registry_basic: object, tmp_path: Path) -> None:
    """The App's registry comes from operator configuration alone (Registry.from_file)."""
    from bot.registry import Registry

    ns = _ns()
    host = registry_basic.host  # type: ignore[attr-defined]
    registry_basic.push(f"{ns}/private", "1.0")  # type: ignore[attr-defined]
    (Path(os.environ["DOCKER_CONFIG"]) / "config.json").write_text(
        json.dumps({"auths": {host: {"username": "testuser", "password": "testpassword"}}})
    )
    op = tmp_path / "operator.yml"
    op.write_text(registry_basic.config_yaml())  # type: ignore[attr-defined]
    with Registry.from_file(str(op)) as app_registry:
        assert app_registry.check(f"{host}/{ns}/private:1.0").status is Status.AUTH_REQUIRED
