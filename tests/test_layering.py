"""The package's real shape, checked on its import graph.

Bottom up: the base (``model``, ``reference``, ``versions``, ``settings``, ``metrics``, ``report``
and the package itself); five sibling packages (``scan``, ``registry``, ``rules``, ``edit``,
``github``) that never import one another; ``repoconfig`` (it validates against the rule table
and reads YAML with the scanner's loader, so it sits above ``rules`` and ``scan``); ``pipeline``,
which composes them; ``jobs``, which orchestrates; ``web``; ``cli`` (``pullable serve`` starts the
web app); ``__main__``. Inside ``jobs`` the modules have their own order (:data:`JOBS`). And no
import circles anywhere in ``bot/``.

Every import counts, wherever it is written: a function-level import is still a dependency (it
only runs later), and so is one under ``if TYPE_CHECKING:`` (a type named in a signature is
something a reader must understand first; where a module below needs to name the type of an
object handed down to it, it names a :class:`typing.Protocol` of its own instead, as
``bot.jobs.JobQueue`` and ``bot.github.tree.Session`` do). ``from bot.x import y`` is an import of
``bot.x.y`` when that is a module, else of ``bot.x``. Names loaded by string
(``bot.scan.FINDERS``) are not imports: the finders depend on ``bot.scan``, not the reverse.
"""

from __future__ import annotations

import ast
from pathlib import Path

BOT = Path(__file__).resolve().parents[1] / "bot"

BASE = frozenset({"__init__", "model", "reference", "versions", "settings", "metrics", "report", "logs"})
SIBLINGS = frozenset({"scan", "registry", "rules", "edit", "github"})
RANK = {
    **dict.fromkeys(BASE, 0),
    **dict.fromkeys(SIBLINGS, 1),
    "repoconfig": 2,
    "pullsecrets": 2,  # the pull-secret check pipeline calls: it composes scan facts and edit.insert
    "pipeline": 3,
    "jobs": 4,
    "web": 5,
    "cli": 6,
    "__main__": 7,
}
# Inside bot.jobs, bottom up; a module imports only modules of lower rows (never its own row).
JOBS = [
    {"journal", "commands", "writelock", "reader", "pr_state", "ignores", "extends"},  # primitives, reads
    {"__init__", "inventory", "pr_body"},  # Context and Kind; the scanned repository; PR words
    {"requests", "router"},  # asking for jobs; routing deliveries
    {"publish", "dashboard", "checks"},  # the writers, side by side
    {"scan_repo", "handlers"},  # the jobs: the scan, and one handler module per behaviour
    {"app"},  # the kinds and the router, composed
    {"queue"},  # runs the kinds
    {"worker"},  # the process
]


def _name(path: Path) -> str:
    parts = list(path.relative_to(BOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


MODULES = {_name(p): p for p in sorted(BOT.rglob("*.py"))}


def _imports(path: Path) -> set[str]:
    """``bot`` modules ``path`` imports, anywhere in it."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "bot" or node.module.startswith("bot."):
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    out.add(sub if sub in MODULES else node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name == "bot" or a.name.startswith("bot."))
    return {m for m in out if m in MODULES}


GRAPH = {name: _imports(path) for name, path in MODULES.items()}


def _unit(module: str) -> str:
    """The top-level unit: ``bot.scan.dockerfile`` -> ``scan``, ``bot`` -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _jobs_row(module: str) -> int:
    parts = module.split(".")
    leaf = parts[2] if len(parts) > 2 else "__init__"
    return next(i for i, row in enumerate(JOBS) if leaf in row)


def test_every_module_has_a_place() -> None:
    units = {_unit(m) for m in MODULES}
    assert units <= set(RANK), f"place these in RANK: {sorted(units - set(RANK))}"
    jobs = {m.split(".")[2] if m.count(".") > 1 else "__init__" for m in MODULES if _unit(m) == "jobs"}
    assert jobs <= set().union(*JOBS), f"place these in JOBS: {sorted(jobs - set().union(*JOBS))}"


def test_nothing_imports_upward_and_siblings_never_import_each_other() -> None:
    problems = []
    for me, imported in sorted(GRAPH.items()):
        mine = _unit(me)
        for other in sorted(imported):
            theirs = _unit(other)
            if theirs == mine or (mine in BASE and theirs in BASE):
                continue
            if RANK[theirs] >= RANK[mine]:
                problems.append(f"{me} imports {other} ({theirs} is not below {mine})")
    assert not problems, "\n".join(problems)


def test_jobs_reads_downward() -> None:
    problems = [
        f"{me} imports {other}"
        for me, imported in sorted(GRAPH.items())
        if _unit(me) == "jobs"
        for other in sorted(imported)
        if _unit(other) == "jobs" and _jobs_row(other) >= _jobs_row(me)
    ]
    assert not problems, "\n".join(problems)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (or a module importing itself)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in graph.get(v, ()):
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_circles_anywhere() -> None:
    assert _cycles(GRAPH) == []


def test_the_checks_can_fail() -> None:
    """The circle finder and the rank rule on a small picture of the old faults."""
    old = {
        "bot.jobs.scan_repo": {"bot.jobs.publish"},
        "bot.jobs.publish": {"bot.jobs.dashboard"},
        "bot.jobs.dashboard": {"bot.jobs.scan_repo", "bot.jobs.publish"},
        "bot.scan.yamlimages": {"bot.scan.argocd"},
        "bot.scan.argocd": {"bot.scan.yamlimages"},
    }
    assert _cycles(old) == [
        ["bot.jobs.dashboard", "bot.jobs.publish", "bot.jobs.scan_repo"],
        ["bot.scan.argocd", "bot.scan.yamlimages"],
    ]
    assert RANK[_unit("bot.rules.engine")] >= RANK[_unit("bot.scan")]  # siblings: same rank
    assert RANK[_unit("bot.repoconfig")] > RANK[_unit("bot.rules")]
