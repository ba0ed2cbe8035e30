"""An installed repository with a rotten reference, a loopback registry that knows the fix, and
the scan job + PR publisher run in-process against the fake GitHub (sleeps recorded, not slept)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bot import github
from bot.github import GitHubApp
from bot.jobs import inventory
from bot.jobs.inventory import Inventory
from bot.jobs.publish import PERMISSIONS as PUBLISH_PERMISSIONS
from bot.jobs.publish import Report, publish
from bot.settings import Settings
from tests.support.fakegithub import FakeApp, FakeGitHub, FakeInstallation, FakeRepo
from tests.support.registry import LocalRegistry
from tests.support.webhooks import app_settings

DEPLOY = """\
apiVersion: batch/v1
kind: Job
metadata: {name: migrate}
spec:
  template:
    spec:
      containers:
        - name: kubectl
          image: bitnami/kubectl:1.31  # pinned by ops
          command: [sh, -c, "kubectl apply -f /manifests"]
"""
CRON = """\
apiVersion: batch/v1
kind: CronJob
metadata: {name: cleanup}
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          containers:
            - name: kubectl
              image: "bitnami/kubectl:1.30"
"""
CONFIG = 'cluster:\n  version: "1.33"\nlabels: [dependencies, images]\n'
FILES = {"k8s/migrate.yaml": DEPLOY, ".github/pullable.yml": CONFIG, "README.md": "# demo\n"}


@dataclass
class PrWorld:
    fake: FakeGitHub
    app: FakeApp
    inst: FakeInstallation
    repo: FakeRepo
    settings: Settings
    registry: LocalRegistry
    sleeps: list[float] = field(default_factory=list)

    def scan(self, paths: list[str] | None = None) -> Inventory:
        inv = inventory.take(self.settings, self.inst.id, self.repo.full_name, None, paths)
        assert inv is not None
        return inv

    def publish(self, outcome: Inventory | None = None) -> Report:
        outcome = outcome or self.scan()
        s = inventory.session(self.settings, self.inst.id, self.repo.full_name, PUBLISH_PERMISSIONS)
        try:
            return publish(s, outcome)
        finally:
            s.close()

    def writes(self) -> list[str]:
        return [f"{e.method} {e.path}" for e in self.fake.log if e.method != "GET"]


def push_images(registry: LocalRegistry) -> None:
    for tag in ("1.33.3", "1.33.4", "1.32.9"):
        registry.push("alpine/kubectl", tag)
    registry.push("bitnami/kubectl", "latest")


def build(
    fake_github: FakeGitHub, registry_open: LocalRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> PrWorld:
    """The world; test modules wrap it in their own ``pr_world`` fixture."""
    push_images(registry_open)
    app = fake_github.create_app()
    inst = fake_github.create_installation(app)
    repo = fake_github.create_repo("octo-org/demo", FILES, installation=inst)
    settings = app_settings(tmp_path / "data", app, fake_github.base_url, registry_open)
    world = PrWorld(fake_github, app, inst, repo, settings, registry_open)
    url = fake_github.base_url
    gh = GitHubApp(app.id, app.private_key, url, settings.data_dir, sleep=world.sleeps.append, pacing=False)
    key = (settings.app_id, settings.github_api_url, str(settings.data_dir))
    monkeypatch.setitem(github._apps, key, gh)
    return world
