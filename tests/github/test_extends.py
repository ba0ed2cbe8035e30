"""Organisation-wide config: ``_extends: .github`` read from the owner's shared repository
through the fake GitHub, merged under the repository's own file (issue 16). The reader lives in
bot.jobs.extends (it composes github and repoconfig); the test stays here for the GitHub world."""

from __future__ import annotations

import pytest

from bot import repoconfig, rules
from bot.jobs.extends import config_fetcher

BASE = "pin: digest\nlabels: [dependencies]\ncluster: {version: '1.31'}\nrules: {disable: [mirror]}\n"


class _Files:
    def __init__(self, text: str) -> None:
        self.text = text

    def read_text(self, path: str) -> str | None:
        return self.text if path == ".github/pullable.yml" else None


def test_extends_reads_the_shared_repository_and_merges_under_the_file(world) -> None:
    world.fake.create_repo("octo-org/.github", {".github/pullable.yml": BASE}, installation=world.inst)
    s = world.github_app().session(world.inst.id, "octo-org/demo")
    own = "_extends: .github\nlabels: [images]\ncluster: {version: '1.33'}\n"
    config = repoconfig.read(_Files(own), rules.load(), fetch=config_fetcher(s))
    assert config.pin == "digest"  # from the base
    assert config.labels == ("images",)  # lists are replaced
    assert config.cluster_version == "1.33" and config.disable == frozenset({"mirror"})  # mappings merged
    assert config.extends is None  # it was merged
    assert any("/repos/octo-org/.github/contents/.github/pullable.yml" in e.path for e in world.fake.log)


def test_a_base_that_cannot_be_read_is_a_clear_error(world) -> None:
    s = world.github_app().session(world.inst.id, "octo-org/demo")
    fetch = config_fetcher(s)
    with pytest.raises(
        repoconfig.ConfigError, match=r"_extends: \.github: \.github:\.github/pullable\.yml was not"
    ):
        repoconfig.read(_Files("_extends: .github\n"), None, fetch=fetch)
    with pytest.raises(repoconfig.ConfigError, match="was not found or cannot be read"):
        repoconfig.read(_Files("_extends: other-org/config\n"), None, fetch=fetch)


def test_a_bad_base_is_named_in_the_error(world) -> None:
    world.fake.create_repo(
        "octo-org/.github", {".github/pullable.yml": "pin: always\n", "nested.yml": "_extends: x\n"},
        installation=world.inst,
    )  # fmt: skip
    s = world.github_app().session(world.inst.id, "octo-org/demo")
    with pytest.raises(
        repoconfig.ConfigError, match=r"^\.github:\.github/pullable\.yml: pin: 'always' is not valid"
    ):
        repoconfig.read(_Files("_extends: .github\n"), None, fetch=config_fetcher(s))
    with pytest.raises(repoconfig.ConfigError, match="may not extend another"):
        repoconfig.read(_Files("_extends: .github:nested.yml\n"), None, fetch=config_fetcher(s))
