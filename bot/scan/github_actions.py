"""GitHub Actions finder: workflows and ``action.yml``.

Workflows: ``jobs.*.container`` (a string or ``.image``), ``jobs.*.services.*`` (``.image``, or
a string as Renovate accepts), steps ``uses: docker://...``, and steps' ``with: image:`` inputs
that hold a reference (``docker/setup-qemu-action``'s ``image: tonistiigi/binfmt@sha256:...``),
and ``strategy.matrix`` values under ``*image`` keys (what ``container: ${{ matrix.image }}`` pulls).
Actions: ``runs.image: docker://...`` (``runs.image: Dockerfile`` is a path, built on the
runner) and composite actions' ``runs.steps[*].uses``. Dependabot reads none of these. Steps'
``run:`` scripts are read for ``docker run|pull|create`` and the like (:mod:`bot.scan.shell`).
``${{ }}`` expressions are ``Skip.TEMPLATED`` (matrix values are not resolved).

A job container runs the job's ``run:`` steps through a shell, so ``needs_shell`` is True for it
when the job has any; a rule that swaps it for a distroless image would break them.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator

from yaml.nodes import Node, ScalarNode

from bot.model import Context, ImageRef, Role, Source
from bot.scan import shell
from bot.scan.common import make_ref
from bot.scan.interpolate import check_keys, non_string
from bot.scan.yamlimages import strict_reference
from bot.scan.yamlsrc import Doc, documents, get, get_path, is_map, is_seq, items, text_of

SOURCE = Source.GITHUB_ACTIONS

DOCKER_PREFIX = "docker://"
_WORKFLOW_DIR = re.compile(r"(?:^|/)(?:workflow-templates|\.(?:github|gitea|forgejo)/(?:workflows|actions))/")
_JOBS = re.compile(rb"(?m)^jobs[ \t]*:")
_RUNS = re.compile(rb"(?m)^runs[ \t]*:")


def claims(path: str, head: bytes) -> bool:
    """Workflow folders (``.github/workflows/``, Gitea/Forgejo, ``workflow-templates``) and
    ``action.y?ml``; elsewhere, YAML with top-level ``jobs:`` and ``runs-on:`` (a workflow kept
    out of its folder, a reusable template)."""
    if not path.endswith((".yml", ".yaml", ".YML", ".YAML")):
        return False
    low = path.lower()
    base = low.rpartition("/")[2]
    if base in ("action.yml", "action.yaml"):
        return True
    if _WORKFLOW_DIR.search(path):
        return True
    return b"runs-on" in head and _JOBS.search(head) is not None


def find(text: str, path: str, repo: object = None) -> Iterator[ImageRef]:
    """The references in a workflow or action, in file order."""
    out: list[ImageRef] = []
    for doc in documents(
        text, lambda c: "image" in c or "docker" in c or "container" in c or shell.mentions(c)
    ):
        if is_map(doc.root):
            out.extend(_Reader(doc, path).refs())
    return iter(sorted(out, key=lambda r: (r.line, r.column)))


def _input_image(node: ScalarNode) -> bool:
    """Whether an action input named ``image`` holds a reference we report: one Docker's grammar
    reads with a tag or digest (``tonistiigi/binfmt@sha256:...``), or an expression (a skip).
    Actions also call the name of an image they build ``image`` (``image: my-app``): a bare
    name is not reported, so no made-up ``docker.io/library/my-app`` is checked."""
    text = text_of(node)
    if text is None:
        return False
    return "${{" in text or strict_reference(text)


class _Reader:
    def __init__(self, doc: Doc, path: str) -> None:
        self.doc = doc
        self.path = path
        self.seen: set[int] = set()
        self.out: list[ImageRef] = []

    def refs(self) -> list[ImageRef]:
        root = self.doc.root
        jobs = get(root, "jobs")
        if is_map(jobs):
            for name, _k, job in items(jobs):  # type: ignore[arg-type]
                if is_map(job):
                    self._job(name or "?", job)
        runs = get(root, "runs")
        if is_map(runs):
            image = get(runs, "image")
            if isinstance(image, ScalarNode) and image.value.startswith(DOCKER_PREFIX):
                self._docker(image, Context(kind="action", field="runs.image"))
            self._steps(get(runs, "steps"), Context(kind="action"), "runs.steps")
        return self.out

    def _job(self, name: str, job: Node) -> None:
        field = f"jobs.{name}"
        check_keys(job)
        steps = get(job, "steps")
        runs_shell = is_seq(steps) and any(get(s, "run") is not None for s in steps.value)  # type: ignore[union-attr]
        container = get(job, "container")
        if container is not None:
            ctx = Context(kind="job", name=name, needs_shell=True if runs_shell else None)
            if is_map(container):
                check_keys(container)
                image = get(container, "image")
                if image is not None:
                    self._image(image, dataclasses.replace(ctx, field=f"{field}.container.image"))
            else:
                self._image(container, dataclasses.replace(ctx, field=f"{field}.container"))
        services = get(job, "services")
        if is_map(services):
            for svc, _k, spec in items(services):  # type: ignore[arg-type]
                ctx = Context(kind="job", name=name, container=svc, field=f"{field}.services.{svc}")
                check_keys(spec)
                image = get(spec, "image") if is_map(spec) else spec
                if image is not None:
                    at = ".image" if is_map(spec) else ""
                    self._image(image, dataclasses.replace(ctx, field=f"{ctx.field}{at}"))
        self._steps(steps, Context(kind="job", name=name), f"{field}.steps")
        self._matrix(get_path(job, "strategy", "matrix"), name, f"{field}.strategy.matrix")

    def _matrix(self, matrix: Node | None, job: str, field: str) -> None:
        """``strategy.matrix`` values under a key ending in ``image`` (``image: [alpine:3.19,
        alpine:3.20]``, ``include: [{image: ...}]``), which ``container: ${{ matrix.image }}``
        pulls: each reported where it is written, when it reads with a tag or digest."""
        if not is_map(matrix):
            return
        rows: list[tuple[str, Node]] = []
        for key, _k, value in items(matrix):  # type: ignore[arg-type]
            if key in ("include", "exclude") and is_seq(value):
                rows += [(f"{field}.{key}[{i}]", row) for i, row in enumerate(value.value) if is_map(row)]
            elif key and key.lower().endswith("image") and is_seq(value):
                for i, x in enumerate(value.value):
                    self._matrix_value(x, job, f"{field}.{key}[{i}]")
        for at, row in rows:
            for key, _k, value in items(row):  # type: ignore[arg-type]
                if key and key.lower().endswith("image"):
                    self._matrix_value(value, job, f"{at}.{key}")

    def _matrix_value(self, node: Node, job: str, field: str) -> None:
        if isinstance(node, ScalarNode) and strict_reference(text_of(node) or ""):
            self._image(node, Context(kind="job", name=job, field=field, notes=("matrix value",)))

    def _steps(self, steps: Node | None, ctx: Context, field: str) -> None:
        if not is_seq(steps):
            return
        for i, step in enumerate(steps.value):  # type: ignore[union-attr]
            uses = get(step, "uses")
            step_name = text_of(get(step, "name")) or text_of(get(step, "id"))
            if isinstance(uses, ScalarNode) and uses.value.startswith(DOCKER_PREFIX):
                self._docker(uses, dataclasses.replace(ctx, container=step_name, field=f"{field}[{i}].uses"))
            run = get(step, "run")
            if isinstance(run, ScalarNode) and text_of(run) is not None and id(run) not in self.seen:
                self.seen.add(id(run))
                at = dataclasses.replace(ctx, container=step_name, field=f"{field}[{i}].run")
                self.out += shell.commands(run.value, self.path, SOURCE, shell.in_scalar(self.doc, run), at)
            image = get(get(step, "with"), "image")
            if isinstance(image, ScalarNode) and _input_image(image):
                action = text_of(uses)
                notes = (f"input of {action}",) if action else ()
                where = dataclasses.replace(
                    ctx, container=step_name, field=f"{field}[{i}].with.image", notes=notes
                )
                self._image(image, where)

    def _image(self, node: Node, ctx: Context) -> None:
        if id(node) in self.seen:
            return
        self.seen.add(id(node))
        doc = self.doc
        if not isinstance(node, ScalarNode) or text_of(node) is None:
            self.out.append(non_string(doc, node, self.path, SOURCE, ctx))
            return
        part = doc.part(node, Role.IMAGE)
        self.out.append(make_ref(self.path, SOURCE, node.value, [part], ctx))

    def _docker(self, node: ScalarNode, ctx: Context) -> None:
        """``docker://image``: the part spans the reference after the scheme."""
        if id(node) in self.seen:
            return
        self.seen.add(id(node))
        doc = self.doc
        whole = doc.part(node, Role.IMAGE)
        text = node.value[len(DOCKER_PREFIX) :]
        span = whole.span
        if whole.raw:
            s = doc.bounds(node)[0] + (1 if whole.quote else 0) + len(DOCKER_PREFIX)
            span = doc.loc.span(s, s + len(text))
        part = dataclasses.replace(whole, text=text, span=span)
        self.out.append(make_ref(self.path, SOURCE, text, [part], ctx))
