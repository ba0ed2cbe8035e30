"""Fixtures for queue, journal and worker tests: every test that takes ``settings`` runs once on
SQLite and once on Redis (a redis-server started on loopback for the session)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.jobs.queue import Queue
from bot.settings import Settings
from tests.support.webhooks import redis_server, register_test_kinds, settings_for


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture(params=["sqlite", "redis"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    if request.param == "sqlite":
        return settings_for(tmp_path / "data")
    import redis

    url = request.getfixturevalue("redis_url")
    redis.Redis.from_url(url).flushall()
    return settings_for(tmp_path / "data", redis_url=url)


@pytest.fixture
def queue(settings: Settings) -> Queue:
    register_test_kinds()
    return Queue(settings)
