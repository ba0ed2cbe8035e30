"""`.github/pullable.yml`: defaults, every key, and a clear error (never a crash) for bad input."""

from __future__ import annotations

import pytest

from bot import repoconfig, rules
from bot.model import Context, ImageRef, Part, Role, Source, Span
from bot.repoconfig import ConfigError, RepoConfig

TABLE = rules.load()

FULL = """\
cluster:
  version: "1.33"
pin: digest
ignore:
  images: [docker.io/library/nginx, "myorg/*"]
  paths: ["legacy/*"]
rules:
  disable: [floating-latest]
  enable: [bitnami-kubectl-distroless]
  params:
    bitnami-kubectl: {image: docker.io/rancher/kubectl}
labels: [pullable, dependencies]
schedule: "0 6 * * 1"
group: all
check: strict
mirror:
  docker.io: harbor.internal/dockerhub/
kubectl:
  distroless: true
"""


def load(text: str) -> RepoConfig:
    return repoconfig.load(text, table=TABLE)


def error(text: str) -> str:
    with pytest.raises(ConfigError) as exc:
        load(text)
    return str(exc.value)


def ref(text: str, path: str = "k8s/app.yaml") -> ImageRef:
    from bot.reference import parse

    return ImageRef(path, 1, 1, Source.KUBERNETES, text, (Part(Role.IMAGE, text, Span(0, len(text), 1, 1)),),
                    str(parse(text)), context=Context())  # fmt: skip


def test_defaults():
    for text in ("", "# nothing\n", "---\n"):
        cfg = load(text)
        assert cfg.pin == "patch" and cfg.group == "rule" and cfg.check == "neutral"
        assert cfg.cluster_version is None and cfg.labels == ("pullable",) and cfg.schedule == "weekly"
    assert repoconfig.read(_Reader({}), TABLE) == RepoConfig()


def test_every_key():
    cfg = load(FULL)
    assert cfg.cluster_version == "1.33" and cfg.pin == "digest"
    assert cfg.ignore_images == ("docker.io/library/nginx", "myorg/*") and cfg.ignore_paths == ("legacy/*",)
    assert cfg.disable == {"floating-latest"} and cfg.enable == {"bitnami-kubectl-distroless"}
    assert cfg.params == {"bitnami-kubectl": {"image": "docker.io/rancher/kubectl"}}
    assert cfg.labels == ("pullable", "dependencies") and cfg.schedule == "0 6 * * 1"
    assert cfg.group == "all" and cfg.check == "strict"
    assert cfg.mirror == {"docker.io": "harbor.internal/dockerhub"} and cfg.distroless
    opts = cfg.options()
    assert opts.pin_digest and opts.cluster_version == "1.33"
    assert {"mirror", "bitnami-kubectl-distroless"} <= opts.enable
    assert "floating-latest" in opts.disable


def test_read_finds_yml_or_yaml():
    cfg = repoconfig.read(_Reader({".github/pullable.yaml": "group: all\n"}), TABLE)
    assert cfg.group == "all" and cfg.path == ".github/pullable.yaml"


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("pin: always\n", ["pin", "'always'", "patch or digest"]),
        ("cluster: {version: 1.30}\n", ["cluster.version", "quoted", "1.3"]),
        ("cluster: {version: 'one'}\n", ["cluster.version", "1.33"]),
        ("colour: red\n", ["unknown key", "colour"]),
        ("rules: {disable: [no-such-rule]}\n", ["rules.disable[0]", "no-such-rule", "bitnami-kubectl"]),
        ("rules: {enable: [nope]}\n", ["rules.enable[0]", "nope"]),
        ("rules: {params: {nope: {a: b}}}\n", ["rules.params.nope", "unknown rule"]),
        (
            "rules: {params: {bitnami-kubectl: {colour: red}}}\n",
            ["rules.params.bitnami-kubectl.colour", "image"],
        ),
        (
            "rules: {params: {bitnami-kubectl: {image: 'Not A Name'}}}\n",
            ["rules.params.bitnami-kubectl.image"],
        ),
        ("rules: {params: {bitnami-kubectl: {image: 'alpine/kubectl:1.33'}}}\n", ["without tag"]),
        ("schedule: hourly\n", ["schedule", "cron"]),
        ("group: per-file\n", ["group", "rule or all"]),
        ("check: fail\n", ["check", "neutral or strict"]),
        ("labels: [a, a]\n", ["labels"]),
        ("mirror: {'not a host': x.example/y}\n", ["mirror"]),
        ("mirror: {docker.io: 'harbor.internal/UPPER'}\n", ["mirror.docker.io", "lowercase"]),
        ("mirror: {docker.io: 'dockerhub'}\n", ["mirror.docker.io", "host name"]),
        ("kubectl: {distroless: yes please}\n", ["kubectl.distroless"]),
        ("- just\n- a list\n", ["top level"]),
        ("pin: [unclosed\n", ["invalid YAML", "line"]),
        ("a: &x [1]\nb: *x\n", ["anchors and aliases"]),
        ("base: &b {pin: digest}\n<<: *b\n", ["not supported"]),
        ("pin: patch\n---\npin: digest\n", ["one YAML document"]),
        ("pin: \u202epatch\n", ["bidi"]),
        ("pin: digest\npin: patch\n", ["duplicate key 'pin'", "line 2"]),
        ("ignore:\n  paths: [a]\n  paths: [b]\n", ["duplicate key 'paths'"]),
        ("minimum_release_age: soon\n", ["minimum_release_age"]),
        ("minimum_release_age: 3\n", ["minimum_release_age"]),
        # segfaulted PyYAML 6.0.3's composer; refused by our own bound, whatever libyaml does
        ("- " * 32_000 + "x", ["nesting deeper than 128 levels", "line 1"]),
        ("pin: digest\n? a\n: " + "- " * 30_000, ["nesting deeper than 128 levels", "line 3"]),
    ],
)
def test_bad_config_is_a_clear_error(text, needles):
    msg = error(text)
    assert msg.startswith(".github/pullable.yml: "), msg
    for n in needles:
        assert n in msg, (n, msg)


def test_a_config_that_exists_but_cannot_be_read_as_text_is_an_error_not_the_defaults(tmp_path):
    """A UTF-16 or oversized .github/pullable.yml must not silently become "no config" (its
    ignore list would be dropped and ignored paths fixed)."""
    from bot.scan import LocalRepo

    (tmp_path / ".github").mkdir()
    cfg = tmp_path / ".github" / "pullable.yml"
    cfg.write_bytes("ignore: {paths: ['legacy/*']}\n".encode("utf-16"))
    with pytest.raises(ConfigError, match=r"\.github/pullable\.yml: .*UTF-8"):
        repoconfig.read(LocalRepo(tmp_path), TABLE)
    cfg.write_bytes(b"labels: [" + b"x, " * 600_000 + b"x]\n")
    with pytest.raises(ConfigError, match=r"\.github/pullable\.yml: larger than 64 KiB"):
        repoconfig.read(LocalRepo(tmp_path), TABLE)
    cfg.write_text("group: all\n")
    assert repoconfig.read(LocalRepo(tmp_path), TABLE).group == "all"


def test_alias_bomb_is_refused_quickly():
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]" for i in range(1, 30)]
    assert "anchors and aliases" in error("\n".join(lines) + "\n")


def test_oversized_config_is_refused():
    assert "KiB" in error("labels: [" + ", ".join(["x"] * 40_000) + "]\n")


def test_without_a_table_unknown_rule_ids_pass_structure_checks():
    assert repoconfig.load("rules: {disable: [anything]}\n").disable == {"anything"}


def test_ignores_images_by_any_spelling_and_paths():
    cfg = load(FULL)
    assert cfg.ignores(ref("nginx:1.27"))
    assert cfg.ignores(ref("docker.io/myorg/app:1"))
    assert cfg.ignores(ref("redis:7", path="legacy/old.yaml"))
    assert not cfg.ignores(ref("redis:7"))
    assert not cfg.ignores(ref("ghcr.io/myorg/app:1"))


class _Reader:
    def __init__(self, files: dict[str, str]) -> None:
        self.files = files

    def read_text(self, path: str) -> str | None:
        return self.files.get(path)


# --- issue 16: _extends ---------------------------------------------------------------------------


def test_extends_merges_mappings_and_replaces_lists_and_values():
    from bot.repoconfig import merge

    base = {"pin": "digest", "labels": ["a"], "rules": {"disable": ["mirror"], "params": {"x": {"a": 1}}}}
    own = {"labels": ["b"], "rules": {"params": {"x": {"b": 2}}}}
    assert merge(base, own) == {
        "pin": "digest", "labels": ["b"], "rules": {"disable": ["mirror"], "params": {"x": {"a": 1, "b": 2}}},
    }  # fmt: skip


def test_extends_forms_and_refusals():
    from bot.repoconfig import Extends, extends_of

    assert extends_of(".github") == Extends(None, ".github", ".github/pullable.yml")
    assert extends_of("acme/config:teams/web.yml") == Extends("acme", "config", "teams/web.yml")
    with pytest.raises(ConfigError, match="_extends"):
        extends_of(".github:../../etc/passwd")
    with pytest.raises(ConfigError, match="_extends"):
        load("_extends: 'a b c'\n")
    seen = []
    base = "pin: digest\ngroup: all\n"
    config = repoconfig.load("_extends: acme/config\npin: patch\n", fetch=lambda w: seen.append(w) or base)
    assert seen == [Extends("acme", "config", ".github/pullable.yml")]
    assert (config.pin, config.group) == ("patch", "all")
    assert repoconfig.load("_extends: acme/config\n", alone=True).extends == "acme/config"  # said, not merged
    with pytest.raises(
        ConfigError, match="_extends: acme/config: the base configuration cannot be read here"
    ):
        repoconfig.load("_extends: acme/config\n")  # never dropped silently
