"""Shared arrangements for the GitHub tests: an App installed on an org with one repository."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from bot.github import GitHubApp
from tests.support.fakegithub import FakeApp, FakeGitHub, FakeInstallation, FakeRepo

FILES = {
    "Dockerfile": "FROM alpine:3.19\n",
    "deploy/app.yaml": (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n"
        "      containers:\n      - name: web\n        image: nginx:1.25\n"
    ),
    "docker-compose.yml": "services:\n  cache:\n    image: redis:7\n",
    "README.md": "# demo\n",
    "src/main.py": "print('hi')\n",
}


@dataclass
class World:
    fake: FakeGitHub
    app: FakeApp
    inst: FakeInstallation
    repo: FakeRepo
    sleeps: list[float]

    def github_app(self, **kw: object) -> GitHubApp:
        return GitHubApp(
            self.app.id,
            self.app.private_key,
            self.fake.base_url,
            pacing=False,
            sleep=self.sleeps.append,
            **kw,
        )  # type: ignore[arg-type]


@pytest.fixture
def world(fake_github: FakeGitHub) -> World:
    app = fake_github.create_app()
    inst = fake_github.create_installation(app)
    repo = fake_github.create_repo("octo-org/demo", FILES, installation=inst)
    return World(fake_github, app, inst, repo, [])
