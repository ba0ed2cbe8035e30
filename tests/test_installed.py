"""What users install: the wheel, built from the source tree, installed (not editable) into a fresh
venv from the hash-pinned lock, and run from a directory outside the source tree.

``scripts/test`` downloads the locked wheels to ``.ci/wheelhouse`` first, so everything here
installs with ``--no-index`` and reaches nothing but 127.0.0.1.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.support.registry import free_port

ROOT = Path(__file__).resolve().parents[1]
WHEELHOUSE = ROOT / ".ci" / "wheelhouse"
LOCK = ROOT / "requirements" / "app.txt"


def _env(home: Path) -> dict[str, str]:
    """A user's shell: no PYTHONPATH, no active venv, no pip configuration of this machine."""
    keep = {k: v for k, v in os.environ.items()
            if not k.startswith(("PIP_", "PYTHON", "VIRTUAL_ENV", "PULLABLE_", "UV_"))}  # fmt: skip
    return {**keep, "HOME": str(home), "PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


def _pip(venv: Path, env: dict[str, str], *args: str) -> None:
    """The test venv's pip is this interpreter's (``--python``), so no pip is installed into it."""
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q",
         "--no-index", "--find-links", str(WHEELHOUSE), *args],
        check=True, env=env, cwd=venv.parent,
    )  # fmt: skip


class Installed:
    def __init__(self, venv: Path, home: Path) -> None:
        self.venv, self.home = venv, home
        self.env = _env(home)

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``pullable ARGS`` from the venv, in a home directory outside the source tree."""
        return subprocess.run(
            [str(self.venv / "bin" / "pullable"), *args],
            cwd=self.home, env=self.env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip


def _build_wheel(out: Path) -> None:
    """From a copy holding only what the build reads, so stale ``build/`` files cannot leak in."""
    src = out / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "bot", src / "bot", symlinks=True, ignore=ignore)
    shutil.copytree(ROOT / "rules", src / "rules", ignore=ignore)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index",
         "-w", str(out / "dist"), str(src)],
        check=True, env=_env(out), cwd=out,
    )  # fmt: skip


@contextmanager
def _once(tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[tuple[Path, bool]]:
    """A directory shared by the xdist workers of this run, and whether it still needs making:
    the wheel and the venvs are built once per run, not once per worker."""
    shared = tmp_path_factory.getbasetemp().parent / "installed"
    shared.mkdir(exist_ok=True)
    with (shared / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = shared / f"{name}.done"
        yield shared / name, not done.exists()
        done.touch()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (WHEELHOUSE / ".stamp").is_file():
        pytest.fail("no .ci/wheelhouse: run scripts/test, which downloads the locked wheels first")
    with _once(tmp_path_factory, "wheel") as (out, todo):
        if todo:
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir()
            _build_wheel(out)
        (found,) = (out / "dist").glob("pullable-*.whl")
        return found


def _venv(tmp_path_factory: pytest.TempPathFactory, name: str, *installs: list[str]) -> Installed:
    with _once(tmp_path_factory, name) as (base, todo):
        venv = base / "venv"
        if todo:
            shutil.rmtree(base, ignore_errors=True)
            (base / "home").mkdir(parents=True)
            subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
            for args in installs:
                _pip(venv, _env(base), *args)
        return Installed(venv, base / "home")


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """``pullable[app]``: the lock (hash-checked, no dependency resolution), then the wheel."""
    return _venv(
        tmp_path_factory, "app", ["--require-hashes", "--no-deps", "-r", str(LOCK)], ["--no-deps", str(wheel)]
    )


def test_the_wheel_carries_the_rules_the_app_manifest_and_the_settings_list(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    rules = sorted(p.name for p in (ROOT / "rules").iterdir())
    assert {f"bot/rules/builtin/{n}" for n in rules} <= names
    assert {"bot/web/app.yml", "bot/env.example", "bot/py.typed"} <= names
    assert not [n for n in names if n.startswith(("tests/", "examples/", "bench/", "scripts/"))]


def test_installed_package_imports_from_site_packages_not_the_checkout(installed: Installed) -> None:
    out = subprocess.run(
        [str(installed.venv / "bin" / "python"), "-c",
         "import bot, bot.rules; print(bot.__file__); print(len(bot.rules.load().ids))"],
        cwd=installed.home, env=installed.env, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert out[0].startswith(str(installed.venv)) and "site-packages" in out[0]
    assert int(out[1]) == len(__import__("bot.rules", fromlist=["load"]).load().ids)


def test_installed_scan_offline_of_the_examples(installed: Installed, tmp_path: Path) -> None:
    repo = shutil.copytree(ROOT / "examples", tmp_path / "examples")
    done = installed.run("scan", "--offline", "--format", "json", str(repo))
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    by_text = {f["text"]: f for f in doc["findings"]}
    assert by_text["bitnami/kubectl:1.31"]["rule"] == "bitnami-kubectl"  # the shipped rule table
    here = subprocess.run(
        [sys.executable, "-m", "bot", "scan", "--offline", "--format", "json", str(repo)],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert doc == json.loads(here.stdout)  # the installed package behaves as the checkout does
    table = installed.run("scan", "--offline", str(repo))
    assert "references in" in table.stdout


@pytest.mark.registry
def test_installed_fix_dry_run_against_the_local_registries(installed: Installed, tmp_path: Path) -> None:
    from tests.support.demo import registries

    repo = shutil.copytree(ROOT / "examples", tmp_path / "examples")
    before = (repo / "kustomize" / "kustomization.yaml").read_bytes()
    with registries(tmp_path / "reg") as config:
        done = installed.run("fix", str(repo), "--config", str(config), "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "+    newName: registry.k8s.io/pause" in done.stdout or "registry.k8s.io/pause" in done.stdout
    assert "\n+" in done.stdout and "\n-" in done.stdout  # a unified diff
    assert "reference(s) fixed" in done.stderr
    assert (repo / "kustomize" / "kustomization.yaml").read_bytes() == before  # dry run: untouched


def test_installed_serve_answers_setup_and_healthz(installed: Installed, tmp_path: Path) -> None:
    port = free_port()
    env = {**installed.env, "HOST": "127.0.0.1", "PORT": str(port), "WEBHOOK_SECRET": "s" * 32,
           "PULLABLE_DATA_DIR": str(tmp_path / "data"), "LOG_LEVEL": "error"}  # fmt: skip
    proc = subprocess.Popen(
        [str(installed.venv / "bin" / "pullable"), "serve"], cwd=installed.home, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", trust_env=False, timeout=5) as http:
            health = _wait_up(http, proc)
            assert health.status_code == 200 and health.json()["ok"] is True
            assert http.get("/setup").status_code == 403  # only with the token the server logged
            token = (tmp_path / "data" / "setup-token").read_text().strip()
            setup = http.get(f"/setup?token={token}")
            assert setup.status_code == 200
            assert "Pullable" in setup.text and "/setup/callback" in setup.text  # app.yml from the package
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        assert proc.stderr is not None
        proc.stderr.close()


def _wait_up(http: httpx.Client, proc: subprocess.Popen[str]) -> httpx.Response:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            assert proc.stderr is not None
            pytest.fail(f"pullable serve exited {proc.returncode}: {proc.stderr.read()[-2000:]}")
        try:
            return http.get("/healthz")
        except httpx.TransportError:
            time.sleep(0.2)
    pytest.fail("pullable serve did not answer within 60 s")


@pytest.fixture(scope="module")
def cli_only(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """``pip install pullable`` without the extra: the wheel's own dependencies, nothing more."""
    return _venv(tmp_path_factory, "cli", [str(wheel)])


def test_cli_only_install_scans_and_names_the_extra_for_serve_and_worker(cli_only: Installed) -> None:
    listed = subprocess.run(
        [str(cli_only.venv / "bin" / "python"), "-c",
         "import importlib.util as u; print([m for m in ('flask', 'huey', 'github', 'prometheus_client')"
         " if u.find_spec(m)])"],
        env=cli_only.env, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert listed == "[]"
    done = cli_only.run("scan", "--offline", str(ROOT / "examples" / "compose"))
    assert done.returncode == 0, done.stderr
    for command in ("serve", "worker"):
        done = cli_only.run(command)
        assert done.returncode == 2
        assert done.stderr.startswith(f"pullable: `pullable {command}` needs the App's packages")
        assert "pip install 'pullable[app]'" in done.stderr and "Traceback" not in done.stderr
