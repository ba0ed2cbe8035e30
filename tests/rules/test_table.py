"""Loading the rule table: the built-in files are valid, and every mistake in a rule file is
reported with the file, the rule and the field."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from bot import rules
from bot.rules import RuleError


def test_builtin_table_loads_with_unique_ids_in_file_order():
    table = rules.load()
    assert len(table.ids) == len(set(table.ids)) >= 14
    assert table.ids.index("bitnami-kubectl") < table.ids.index("bitnami-retired")  # specific first
    assert table.ids.index("tag-missing") < table.ids.index("repo-missing")
    for r in table.rules:
        assert r.why and r.origin.startswith("rules/") and "#" in r.origin


def test_every_builtin_rule_is_documented_in_the_readme():
    readme = (rules.default_dir() / "README.md").read_text()
    for rid in rules.load().ids:
        assert f"`{rid}`" in readme, rid


def test_loading_a_directory_and_single_files(tmp_path):
    (tmp_path / "b.yaml").write_text("rules:\n- {id: second, why: w, match: {}, advise: a}\n")
    (tmp_path / "a.yaml").write_text("rules:\n- {id: first, why: w, match: {}, advise: a}\n")
    (tmp_path / "notes.txt").write_text("not a rule file")
    assert rules.load([tmp_path]).ids == ("first", "second")
    assert rules.load([tmp_path / "b.yaml"]).ids == ("second",)


def _error(body: str) -> str:
    with pytest.raises(RuleError) as exc:
        rules.load_text(textwrap.dedent(body), "rules/99-test.yaml")
    return str(exc.value)


RULE = """\
rules:
  - id: ok-rule
    why: fine
    match: {status: ok}
    advise: fine
  - id: bad-rule
    why: because
"""


@pytest.mark.parametrize(
    ("extra", "needles"),
    [
        ("    match: {stauts: ok}\n    advise: x\n", ["rules[1] (bad-rule)", "match", "stauts"]),
        ("    match: {status: gone}\n    advise: x\n", ["rules[1] (bad-rule)", "match.status"]),
        ("    match: {}\n    replace: {tag: newest}\n", ["rules[1] (bad-rule)", "replace.tag"]),
        ("    match: {}\n", ["rules[1] (bad-rule)", "'replace', 'advise'"]),
        ("    match: {tag: '(unclosed'}\n    advise: x\n", ["bad-rule", "match.tag", "regular expression"]),
        ("    match: {}\n    replace: {name: '{image}'}\n", ["bad-rule", "replace.name", "{image}"]),
        ("    match: {name_regex: '^a/(.+)$'}\n    replace: {name: 'b/{2}'}\n", ["replace.name", "1 group"]),
        ("    match: {}\n    advise: '{name.__class__}'\n", ["bad-rule", "advise", "name.__class__"]),
        ("    match: {}\n    advise: '{tag!r}'\n", ["advise", "format spec"]),
        ("    match: {}\n    advise: x\n    colour: red\n", ["rules[1] (bad-rule)", "colour"]),
    ],
)
def test_bad_rules_name_file_rule_and_field(extra, needles):
    msg = _error(RULE + extra)
    assert msg.startswith("rules/99-test.yaml")
    for n in needles:
        assert n in msg, (n, msg)


def test_duplicate_ids_across_files_are_refused(tmp_path):
    (tmp_path / "a.yaml").write_text("rules:\n- {id: same, why: w, match: {}, advise: a}\n")
    (tmp_path / "b.yaml").write_text("rules:\n- {id: same, why: w, match: {}, advise: a}\n")
    with pytest.raises(RuleError, match=r"b\.yaml#1 \(same\)|b\.yaml.*already used"):
        rules.load([tmp_path])


def test_invalid_yaml_and_wrong_shape():
    assert "invalid YAML" in _error("rules: [\n")
    assert "rules" in _error("rule: []\n")


def test_params_may_be_used_in_templates():
    table = rules.load_text(
        "rules:\n- id: r\n  why: w\n  params: {image: docker.io/a/b}\n  match: {}\n"
        "  replace: {name: '{image}'}\n  advise: 'use {image}'\n"
    )
    assert table.rules[0].params == {"image": "docker.io/a/b"}


def test_bundled_rules_pass_the_schema() -> None:
    """load() trusts the bundled table at run time (start-up); this is where it is checked."""
    import jsonschema
    import yaml

    from bot.rules.table import SCHEMA, _builtin_files, _validate

    files = _builtin_files()
    assert files
    for f, origin in files:
        doc = yaml.safe_load(f.read_text(encoding="utf-8"))
        assert not list(jsonschema.Draft202012Validator(SCHEMA).iter_errors(doc)), origin
        _validate(doc, origin)  # the same check user rule files get


def test_user_rule_files_are_still_validated(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - id: x\n    why: y\n    match: {}\n    replace: {tag: sideways}\n")
    with pytest.raises(RuleError, match=r"replace\.tag"):
        rules.load([bad])
