"""The package reads top-down: web/cli (intake) -> jobs/pipeline (orchestration) -> scan ->
registry -> rules -> edit -> github. A module may import its own layer, the layers below it, and
the shared base (model, reference, versions, ...) — never one above it."""

from __future__ import annotations

import ast
from pathlib import Path

BOT = Path(__file__).resolve().parents[1] / "bot"

CHAIN = ["web", "cli", "jobs", "pipeline", "scan", "registry", "rules", "edit", "github"]
LEVEL = {"web": 0, "cli": 0, "jobs": 1, "pipeline": 1, "pullsecrets": 1, "scan": 2, "registry": 3, "rules": 4,
         "edit": 5, "github": 6}  # fmt: skip
BASE = {"model", "reference", "versions", "report", "metrics", "settings", "repoconfig", "__init__",
        "__main__"}  # fmt: skip


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "bot":
                out.update(f"bot.{a.name}" for a in node.names)
            elif node.module.startswith("bot."):
                out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("bot."))
    return out


def test_no_module_imports_a_layer_above_it() -> None:
    problems = []
    for path in sorted(BOT.rglob("*.py")):
        rel = path.relative_to(BOT.parent).with_suffix("")
        me = _top(".".join(rel.parts))
        if me in BASE or me not in LEVEL:
            continue
        for imported in _imports(path):
            other = _top(imported)
            if other in BASE or other == me:
                continue
            if other in LEVEL and LEVEL[other] < LEVEL[me]:
                problems.append(f"{rel}: imports {imported} ({other} is above {me})")
    assert not problems, "\n".join(problems)


def test_every_top_level_module_has_a_place() -> None:
    tops = {p.stem if p.is_file() else p.name for p in BOT.iterdir() if p.suffix == ".py" or p.is_dir()}
    tops.discard("__pycache__")
    assert tops <= set(LEVEL) | BASE, f"place these in LEVEL or BASE: {sorted(tops - set(LEVEL) - BASE)}"
