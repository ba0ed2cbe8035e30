"""How Pullable is shipped: the package's dependencies and data, the locks, the container image,
the deployments, the GitHub Action, and the project's own image references (it scans itself).

The image cannot be built on the test machine (no container engine, no base images), so the
Dockerfile is checked for what matters structurally; tests/test_installed.py runs the same
install steps (lock, then the wheel with --no-deps) for real.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from bot import cli, rules

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
VERSION = PYPROJECT["project"]["version"]
CORE = [Requirement(r) for r in PYPROJECT["project"]["dependencies"]]
APP = [Requirement(r) for r in PYPROJECT["project"]["optional-dependencies"]["app"]]
IMAGE = f"ghcr.io/pullable/pullable:{VERSION}"
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


def _locked(name: str) -> dict[str, str]:
    """``requirements/NAME.txt`` as {canonical name: version}; every entry carries a hash."""
    text = (ROOT / "requirements" / name).read_text()
    out = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2]):
        m = re.match(r"([A-Za-z0-9_.\-\[\]]+)==([^\s;\\]+)", block)
        assert m, block
        assert "--hash=sha256:" in block, f"{name}: {m.group(1)} has no hash"
        out[canonicalize_name(m.group(1))] = m.group(2)
    return out


# --- the package --------------------------------------------------------------------------------


def test_builtin_rules_app_manifest_and_settings_list_are_one_copy_each():
    """The package reads them with importlib.resources; the top-level files people edit are the
    same files (links), so nothing can drift."""
    assert Path(str(rules.default_dir())).resolve() == ROOT / "rules"
    assert (ROOT / "app.yml").resolve() == ROOT / "bot" / "web" / "app.yml"
    assert (ROOT / ".env.example").resolve() == ROOT / "bot" / "env.example"
    data = PYPROJECT["tool"]["setuptools"]["package-data"]
    assert "env.example" in data["bot"] and "app.yml" in data["bot.web"]
    assert "*.yaml" in data["bot.rules.builtin"]


def _third_party_imports() -> dict[str, set[str]]:
    """Top-level third-party modules imported anywhere in bot/ -> the files importing them."""
    stdlib = sys.stdlib_module_names
    found: dict[str, set[str]] = {}
    for path in (ROOT / "bot").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for n in names:
                top = n.partition(".")[0]
                if top not in stdlib and top not in {"bot", "__future__"}:
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_runtime_import_is_a_runtime_dependency():
    dists = importlib.metadata.packages_distributions()
    declared = {canonicalize_name(r.name) for r in CORE + APP}
    imports = _third_party_imports()
    assert {"yaml", "ruamel", "httpx", "jsonschema", "flask"} <= set(imports)
    for module, where in sorted(imports.items()):
        names = {canonicalize_name(d) for d in dists.get(module, [])}
        assert names & declared, f"{module} (imported by {sorted(where)}) is not a dependency in pyproject"


def test_the_app_extra_is_what_serve_and_worker_need_and_the_cli_needs_none_of_it():
    dists = importlib.metadata.packages_distributions()
    core = {canonicalize_name(r.name) for r in CORE}
    for module in cli.APP_MODULES:
        assert not {canonicalize_name(d) for d in dists.get(module, [])} & core, module
    app_modules = {m for m, ds in dists.items() if {canonicalize_name(d) for d in ds}
                   & {canonicalize_name(r.name) for r in APP}}  # fmt: skip
    assert set(_third_party_imports()) & app_modules <= cli.APP_MODULES


def test_floors_where_behaviour_depends_on_a_version():
    floors = {canonicalize_name(r.name): r.specifier for r in CORE + APP}
    assert floors["pyyaml"].contains("6.0.4") and not floors["pyyaml"].contains("6.0.3")
    assert all(str(s).startswith(">=") for s in floors.values())
    build = [Requirement(r) for r in PYPROJECT["build-system"]["requires"]]
    assert not build[0].specifier.contains("76.0")  # the PEP 639 licence string needs 77


# --- the locks --------------------------------------------------------------------------------------


def test_locks_are_complete_hash_pinned_and_agree():
    app, test, build = _locked("app.txt"), _locked("test.txt"), _locked("build.txt")
    for req in CORE + APP:
        name = canonicalize_name(req.name)
        assert name in app, f"{name} is not in requirements/app.txt: run scripts/lock"
        assert req.specifier.contains(app[name]), f"{name}=={app[name]} is outside {req.specifier}"
    for req in (Requirement(r) for r in PYPROJECT["project"]["optional-dependencies"]["test"]):
        assert canonicalize_name(req.name) in test
    assert {n: v for n, v in test.items() if n in app} == app  # one version of everything
    assert test["setuptools"] == build["setuptools"]
    assert Requirement(PYPROJECT["build-system"]["requires"][0]).specifier.contains(build["setuptools"])


def test_scripts_install_from_the_lock_and_the_project_without_dependencies():
    venv = (ROOT / "scripts" / "venv.sh").read_text()
    assert "--require-hashes --no-deps" in venv and "-r requirements/test.txt" in venv
    assert "--no-deps --no-build-isolation -e ." in venv
    for script in ("test", "demo"):
        assert "locked_venv .venv" in (ROOT / "scripts" / script).read_text().replace('"$VENV"', ".venv")
    assert "--latest" in (ROOT / "scripts" / "test").read_text()
    assert (ROOT / ".ci" / "run").read_text().strip().endswith("exec scripts/test")


# --- the container image ------------------------------------------------------------------------------


def _dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments), continuation lines joined, global ARG defaults substituted."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    out, args = [], {}
    for ln in lines:
        op, _, rest = ln.partition(" ")
        if op.upper() == "ARG" and "=" in rest:
            k, _, v = rest.partition("=")
            args[k.strip()] = v.strip()
        rest = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), rest)
        out.append((op.upper(), rest))
    return out


def test_dockerfile_is_multi_stage_pinned_non_root_and_installs_from_the_lock():
    steps = _dockerfile()
    froms = [a for op, a in steps if op == "FROM"]
    assert len(froms) >= 2, "multi-stage"
    for image in froms:
        assert DIGEST.search(image.split()[0]), f"base image not pinned by digest: {image}"
    runtime = steps[max(i for i, (op, _) in enumerate(steps) if op == "FROM") :]
    users = [a for op, a in runtime if op == "USER"]
    assert users and users[-1].split(":")[0] not in {"0", "root"}
    assert any(op == "COPY" and a.startswith("--from=build") for op, a in runtime)
    runs = " ".join(a for op, a in steps if op == "RUN")
    assert "--require-hashes --no-deps -r requirements/app.txt" in runs
    assert "--require-hashes --no-deps -r requirements/build.txt" in runs
    assert "--no-deps --no-index /dist/pullable-" in runs  # the project on top, nothing resolved
    (health,) = [a for op, a in runtime if op == "HEALTHCHECK"]
    assert "/healthz" in health
    assert [a for op, a in runtime if op == "CMD"][-1] == '["pullable", "serve"]'


def test_dockerignore_lets_through_exactly_what_the_dockerfile_copies():
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    allowed = {ln[1:].rstrip("/") for ln in ignore if ln.startswith("!")}
    copied = set()
    for op, a in _dockerfile():
        if op == "COPY" and not a.startswith("--from"):
            copied |= {s.rstrip("/") for s in a.split()[:-1]}
    assert copied == allowed == {"pyproject.toml", "README.md", "requirements", "rules", "bot"}


# --- deployments ------------------------------------------------------------------------------------


def test_compose_runs_web_worker_and_redis_with_secrets_from_the_environment():
    doc = yaml.safe_load((ROOT / "deploy" / "compose.yml").read_text())
    services = doc["services"]
    assert set(services) == {"web", "worker", "redis"}
    assert services["web"]["command"] == ["pullable", "serve"]
    assert services["worker"]["command"] == ["pullable", "worker"]
    assert services["worker"]["healthcheck"] == {"disable": True}
    for name in ("web", "worker"):
        svc = services[name]
        assert svc["image"] == "${PULLABLE_IMAGE:-" + IMAGE + "}" and svc["build"]["context"] == ".."
        env = svc["environment"]
        assert env["REDIS_URL"].startswith("redis://redis:")
        for secret in ("WEBHOOK_SECRET", "PRIVATE_KEY", "APP_ID", "GITHUB_CLIENT_SECRET"):
            assert env[secret].startswith("${" + secret), f"{secret} must come from the environment"
        assert "data:/var/lib/pullable" in svc["volumes"]
    assert "redis:/data" in services["redis"]["volumes"] and set(doc["volumes"]) == {"data", "redis"}


def _k8s() -> dict[tuple[str, str], dict[str, Any]]:
    docs = {}
    for path in sorted((ROOT / "deploy" / "kubernetes").glob("*.yaml")):
        for d in yaml.safe_load_all(path.read_text()):
            if d and d.get("kind") != "Kustomization":
                docs[(d["kind"], d["metadata"]["name"])] = d
    return docs


def test_kubernetes_manifests_web_worker_redis_secret_probes_and_metrics():
    docs = _k8s()
    kustomization = yaml.safe_load((ROOT / "deploy" / "kubernetes" / "kustomization.yaml").read_text())
    assert "secret.yaml" not in kustomization["resources"]  # an unfilled Secret is never applied
    secret = docs[("Secret", "pullable")]["stringData"]
    assert secret.keys() == {"APP_ID", "WEBHOOK_SECRET", "private-key.pem"}
    web = docs[("Deployment", "pullable-web")]["spec"]["template"]
    worker = docs[("Deployment", "pullable-worker")]["spec"]["template"]
    assert docs[("Deployment", "pullable-redis")] and docs[("Service", "pullable-redis")]
    assert docs[("ConfigMap", "pullable")]["data"]["REDIS_URL"] == "redis://pullable-redis:6379/0"
    (c,) = web["spec"]["containers"]
    assert c["command"] == ["pullable", "serve"] and c["image"] == IMAGE
    assert c["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/livez"  # a stalled worker: no reason to restart
    assert web["metadata"]["annotations"] == {
        "prometheus.io/scrape": "true", "prometheus.io/port": "3000", "prometheus.io/path": "/metrics"
    }  # fmt: skip
    (w,) = worker["spec"]["containers"]
    assert w["command"] == ["pullable", "worker"] and w["image"] == IMAGE
    assert worker["metadata"]["annotations"]["prometheus.io/port"] == "9300"
    assert {"name": "PULLABLE_METRICS_PORT", "value": "9300"} in w["env"]
    for pod in (web, worker):
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
        keys = [v for v in pod["spec"]["volumes"] if "secret" in v]
        assert keys and keys[0]["secret"]["secretName"] == "pullable"
        (ctr,) = pod["spec"]["containers"]
        assert {e["name"] for e in ctr["env"] if "secretKeyRef" in e.get("valueFrom", {})} >= {"APP_ID"}


def test_app_json_and_heroku_yml_run_web_and_worker_from_the_dockerfile():
    app = json.loads((ROOT / "app.json").read_text())
    assert app["stack"] == "container" and set(app["formation"]) == {"web", "worker"}
    assert app["env"]["WEBHOOK_SECRET"]["generator"] == "secret"
    assert any(a.startswith("heroku-redis") for a in app["addons"])
    heroku = yaml.safe_load((ROOT / "heroku.yml").read_text())
    assert heroku["build"]["docker"] == {"web": "Dockerfile", "worker": "Dockerfile"}
    assert heroku["run"] == {"web": "pullable serve", "worker": "pullable worker"}
    procfile = dict(ln.split(": ", 1) for ln in (ROOT / "Procfile").read_text().splitlines() if ln)
    assert set(procfile) == {"web", "worker"}


# --- the GitHub Action, the scheduled workflow ----------------------------------------------------------


def _uses(doc: Any) -> list[str]:
    if isinstance(doc, dict):
        return [v for k, v in doc.items() if k == "uses" and isinstance(v, str)] + [
            u for v in doc.values() for u in _uses(v)
        ]
    if isinstance(doc, list):
        return [u for v in doc for u in _uses(v)]
    return []


def test_action_scans_uploads_sarif_fails_at_a_level_and_can_fix():
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    assert action["runs"]["using"] == "composite"
    assert {"path", "fail-on", "fix", "offline", "config", "upload-sarif"} <= set(action["inputs"])
    uses = _uses(action)
    assert any(u.startswith("github/codeql-action/upload-sarif@") for u in uses)
    for u in uses:
        assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", u), f"pin {u} to a commit SHA"
    script = "\n".join(s.get("run", "") for s in action["runs"]["steps"])
    assert "--require-hashes --no-deps -r" in script and "--format sarif" in script
    assert '--fail-on "$FAIL_ON"' in script and "fix" in script
    assert "${{" not in script  # inputs reach the shell through env, never pasted into it


def test_scheduled_workflow_example_runs_the_action_with_fix():
    wf = yaml.safe_load((ROOT / "docs" / "scheduled-workflow.yml").read_text())
    assert wf[True]["schedule"][0]["cron"]  # YAML 1.1 reads the key `on` as True
    steps = wf["jobs"]["pullable"]["steps"]
    action = next(s for s in steps if s.get("uses", "").startswith("pullable/pullable@"))
    assert action["with"]["fix"] == "true"
    assert wf["permissions"]["security-events"] == "write"


# --- dogfood: the project's own image references ---------------------------------------------------------


def test_the_project_scans_itself_and_every_image_it_names_is_pinned():
    """Outside tests/, examples/, bench/ and rules/ (ignored in .github/pullable.yml), every image
    reference names a full version or a digest; ``pullable scan --offline`` says so."""
    done = subprocess.run(
        [sys.executable, "-m", "bot", "scan", str(ROOT), "--offline", "--format", "json",
         "--fail-on", "warning"],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )  # fmt: skip
    findings = json.loads(done.stdout)["findings"]
    paths = {f["path"] for f in findings}
    assert {"Dockerfile", "deploy/compose.yml", "deploy/kubernetes/web.yaml"} <= paths
    for f in findings:
        assert not f["path"].startswith(("tests/", "examples/", "bench/", "rules/")), f["path"]
        # An image compose builds (build: + image:) is not pulled: its written name is checked.
        ref = f["reference"] or (f["text"] if f["skip"] == "built-locally" else "")
        tag = ref.rsplit("@", 1)[0].rpartition(":")[2]
        assert DIGEST.search(ref) or re.match(r"v?\d+\.\d+\.\d+", tag), f"{f['path']}:{f['line']} {ref}"
        assert f["rule"] is None and f["status"] == "unchecked", f
    assert done.returncode == 0, done.stdout[-2000:]


@pytest.mark.parametrize("path", ["Dockerfile", "deploy/compose.yml", "deploy/kubernetes/web.yaml"])
def test_the_dogfood_scan_would_catch_a_floating_tag(path: str, tmp_path: Path):
    """The check above can fail: the same file with its first image left floating is reported."""
    text = (ROOT / path).read_text()
    image = {"Dockerfile": "python:3.11-slim-bookworm", "deploy/compose.yml": "redis:7.4.1-alpine",
             "deploy/kubernetes/web.yaml": IMAGE}[path]  # fmt: skip
    start = text.index(image) if path != "Dockerfile" else text.index("ARG PYTHON_IMAGE=") + 17
    end = start + len(image) + (text[start + len(image) :].find("\n") if path == "Dockerfile" else 0)
    floating = text[:start] + image.split(":")[0] + ":latest" + text[end:]
    target = tmp_path / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(floating)
    report = str(tmp_path / "report.txt")
    assert cli.main(["scan", str(tmp_path), "--offline", "--fail-on", "warning", "-o", report]) == 1
