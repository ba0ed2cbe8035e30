"""Issue 2 §5: arbitrary bytes and adversarial files reach every finder and never escape as an
exception, a hang or a crash. Each finder is driven directly (not only through its claims())."""

from __future__ import annotations

import importlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bot.scan as scan
from bot.model import ImageRef

PATHS = {
    "bot.scan.dockerfile": "Dockerfile",
    "bot.scan.helm_template": "charts/x/templates/deploy.yaml",
    "bot.scan.jinja": "roles/x/templates/deploy.yaml.j2",
    "bot.scan.github_actions": ".github/workflows/ci.yml",
    "bot.scan.gitlab_ci": ".gitlab-ci.yml",
    "bot.scan.charts": "charts/app/Chart.yaml",
    "bot.scan.kustomize": "kustomization.yaml",
    "bot.scan.compose": "docker-compose.yml",
    "bot.scan.ansible": "roles/x/tasks/main.yml",
    "bot.scan.helm_values": "charts/x/values.yaml",
    "bot.scan.kubernetes": "k8s/deploy.yaml",
    "bot.scan.shell": "scripts/release.sh",
    "bot.scan.jsonnet": "jsonnet/main.libsonnet",
    "bot.scan.tilt": "Tiltfile",
}

# Text that looks like each kind, so hypothesis mutates near real structure as well as noise.
SEEDS = [
    "FROM nginx:1.27 AS a\nCOPY --from=a / /\n",
    "services:\n  web:\n    image: ${X:-nginx:1}\n",
    "apiVersion: v2\nname: app\ndependencies:\n  - name: pg\n    version: ^1.0.0\n"
    "    repository: https://charts.example.com\n    alias: db\n",
    "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - image: a:1\n",
    "image:\n  repository: a\n  tag: 1.10\n",
    "jobs:\n  t:\n    container: node:18\n    steps: [{uses: 'docker://x:1'}]\n",
    "- hosts: all\n  tasks:\n  - docker_container: {image: '{{ x }}'}\n",
    "images:\n- name: a\n  newTag: '1'\n",
    "{ image: 'quay.io/a/b:v' + $.versions.b, c: |||\n x\n |||, d: @'q''u' }  // x\n",
    "docker_build('a/b', '.')\ncustom_build(ref='x', command='make')\n",
    "docker run --rm -v \"$PWD:/x\" nginx:1 sh -c 'echo'\ncrane copy a:1 b:1 \\\n  && skopeo inspect docker://x:1\n",
]


def _all_finders() -> list[tuple[str, object]]:
    return [(name, importlib.import_module(name)) for name in scan.FINDERS]


def test_every_finder_has_a_path_here() -> None:
    assert set(scan.FINDERS) <= set(PATHS), "add the new finder to PATHS above"


def _drive(text: str) -> None:
    repo = scan.LocalRepo(".")
    for name, mod in _all_finders():
        path = PATHS.get(name, "x.yaml")
        res = scan.scan_file(path, text.encode("utf-8", "surrogatepass"), repo, mod)
        for ref in res.refs:
            assert isinstance(ref, ImageRef)
            for p in ref.parts:
                assert 0 <= p.span.start <= p.span.end


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=400))
def test_arbitrary_text_never_escapes(text: str) -> None:
    _drive(text)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SEEDS), st.text(alphabet="{}[]:-'\"&*!|>#$\n \t\\%@", max_size=40), st.integers(0, 80))
def test_mutated_real_files_never_escape(seed: str, noise: str, at: int) -> None:
    at = min(at, len(seed))
    _drive(seed[:at] + noise + seed[at:])


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_through_the_driver(data: bytes) -> None:
    repo = scan.LocalRepo(".")
    for name, mod in _all_finders():
        res = scan.scan_file(PATHS.get(name, "x.yaml"), data, repo, mod)
        assert res.files == 1


@pytest.mark.parametrize(
    "text",
    [
        "[" * 100_000,
        "{" * 50_000 + "image: x",
        "- " * 50_000 + "image: x",
        "a:\n" + "".join(" " * i + "b:\n" for i in range(1, 300)),
        "FROM " + "a" * 200_000 + "\n",
        "FROM a \\\n" * 20_000,
        "image: " + "x" * 500_000 + "\n",
        "x: &a [" + ", ".join(["*a"] * 5) + "]\n",
    ],
)
def test_pathological_inputs_end_as_results_or_errors(text: str) -> None:
    _drive(text)
