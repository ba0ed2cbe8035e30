"""The few types that flow through the whole pipeline.

An :class:`ImageRef` is what a finder saw in a file, with the exact bytes of every written part,
so that the edit engine can splice a new value in without re-serialising anything. A
:class:`Finding` wraps one ``ImageRef`` with what the registry said and what the rules propose;
it is the only thing the outputs (table, JSON, SARIF, PR body, check run) ever read.

This module sits at the bottom of the package: every layer imports it, it imports nothing of ours.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

_T = TypeVar("_T")


def pickled_by_fields(cls: type[_T]) -> type[_T]:
    """Pickle a frozen, slotted dataclass as a call of its constructor with its fields in order.

    dataclasses' own ``__getstate__``/``__setstate__`` for slotted classes look ``fields()`` up
    for every object, which made handing a contained scan's results back from its workers
    (:mod:`bot.scan.sandbox`: thousands of spans and parts) cost more than the scan itself.
    """
    names = tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]

    def __reduce__(self: _T) -> tuple[type[_T], tuple[Any, ...]]:
        return cls, tuple([getattr(self, n) for n in names])

    cls.__reduce__ = __reduce__  # type: ignore[assignment,method-assign]
    return cls


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Span:
    """Where a written value sits: byte offsets into the file (end exclusive), and the 1-based
    line and column (in characters) of its first byte, for people and for SARIF."""

    start: int
    end: int
    line: int
    column: int


class Role(enum.StrEnum):
    """Which piece of a reference a :class:`Part` holds."""

    IMAGE = "image"  # a whole reference string: "nginx:1.27", "${BASE:-alpine:3.20}"'s default
    REGISTRY = "registry"  # Helm split fields and kustomize's newName live in several scalars
    REPOSITORY = "repository"
    TAG = "tag"
    DIGEST = "digest"
    NAME = "name"  # a value that names the image (kustomize `name`, Helm `image:` inside a map)


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Part:
    """One written scalar that contributes to a reference.

    ``span`` covers the value's characters as written, inside any quotes; ``quote`` is the
    quoting around it (``""`` for plain, ``"'"`` or ``'"'``), so the edit engine can keep it or
    add quotes when a new bare value would change its YAML type. ``raw`` is False when the bytes
    in the span are not literally ``text`` (escapes, folded lines): such a part is not edited.
    ``path`` is set when the part lives in another file than the reference that uses it (an
    Ansible variable defined in ``defaults/main.yml``). ``scalar`` says the span is a whole YAML
    scalar, so a new bare value that YAML would read as a number (``1.10``) must be quoted; a
    piece of a larger string (a compose ``${VAR:-default}``) is not.
    """

    role: Role
    text: str
    span: Span
    quote: str = ""
    raw: bool = True
    path: str | None = None
    scalar: bool = False  # the span is a whole YAML scalar: its YAML type depends on its text


class Skip(enum.StrEnum):
    """Why a place that names an image yields no reference we can check."""

    TEMPLATED = "templated"  # Helm/Jinja/Go templates, ${VAR} without default, $(...)
    VARIABLE = "variable-without-default"
    NON_STRING = "non-string-value"  # `image: 123`, `image: !Ref x`, a list where a string goes
    INVALID = "invalid-reference"  # does not parse under Docker's grammar; `detail` says why
    CHART_DEFAULT = "tag-from-chart-default"  # repository written, tag left to the chart
    REPOSITORY_FROM_CHART = "repository-from-chart-default"  # only a tag written, in Helm values
    TAG_FROM_BASE = "tag-from-base"  # kustomize newName without newTag: the base's tag stays
    NO_TAG = "no-tag"  # a repository written with no tag anywhere this scan can read
    BUILT_LOCALLY = "built-locally"  # compose build + image, Tilt/Skaffold: built, never pulled
    REPOSITORY_ONLY = "repository-only"  # names a repository to watch (Flux ImageRepository)
    EMPTY = "empty"


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Context:
    """Where in its file a reference sits, as far as the rules care.

    ``needs_shell`` is True when the container's command runs a shell (``sh -c``, ``bash``,
    heredocs), False when it is known to exec a binary directly, None when it cannot be known.
    ``field`` is a dotted path to the value (``spec.template.spec.containers[0].image``).
    """

    kind: str | None = None  # Kubernetes kind, "service", "stage", "job", ...
    name: str | None = None  # resource / service / job name
    container: str | None = None
    needs_shell: bool | None = None
    field: str | None = None
    notes: tuple[str, ...] = ()


class Source(enum.StrEnum):
    """The file kinds (one finder module each) and the artifact kinds they report."""

    KUBERNETES = "kubernetes"
    HELM_VALUES = "helm-values"
    HELM_TEMPLATE = "helm-template"
    KUSTOMIZE = "kustomize"
    COMPOSE = "compose"
    DOCKERFILE = "dockerfile"
    ANSIBLE = "ansible"
    GITHUB_ACTIONS = "github-actions"
    GITLAB_CI = "gitlab-ci"
    ARGOCD = "argocd"
    FLUX = "flux"
    JINJA = "jinja"
    SHELL = "shell"  # docker/podman/crane/skopeo command lines in scripts, Makefiles, CI steps
    JSONNET = "jsonnet"
    TILT = "tilt"
    YAML = "yaml"  # any other YAML with an `image:` key (Argo Workflows, Tekton, CRDs)
    HELM_CHART = "helm-chart"  # an image a chart's own defaults name (bot.scan.charts)


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class ChartUse:
    """A chart the repository deploys, as a finder saw it: which chart, and the values the
    repository gives it, so the pipeline can read the chart's default images with those values
    applied, and write an override where the repository keeps its values for that chart.

    ``values`` is the JSON of the consumer's values for this chart (sub-chart values already
    taken from under the dependency's name or alias, ``global:`` merged in). ``site`` is the
    file that takes an override, ``site_keys`` the key path of the chart's values in it
    (``("postgresql",)`` in a parent chart's values.yaml, ``("spec", "values")`` in a Flux
    HelmRelease), ``site_document`` the YAML document, ``site_text`` its text as scanned (the
    edit is planned on it; None when no override can be written there, with ``site_problem``).
    """

    repository: str  # https://... Helm repository, oci://..., or file://<path in this repository>
    name: str
    version: str  # exact version or range
    via: str  # "Chart.yaml dependency", "Argo CD Application", "Flux HelmRelease", "helmfile release"
    alias: str | None = None
    values: str = "{}"
    site: str = ""
    site_keys: tuple[str | int, ...] = ()
    site_document: int = 0
    site_text: str | None = None
    site_problem: str | None = None
    site_in_string: bool = False  # site_keys name a literal block of YAML (Argo CD helm.values: |)
    # A chart in this repository (``file://`` dependency, Flux GitRepository path): its files as
    # read by the finder (``Chart.yaml``, ``values.yaml``, ``templates/...``), no network needed.
    files: tuple[tuple[str, str], ...] = ()
    # A Flux chart read here from a GitRepository's path: that source (``namespace/name``) and
    # its ``spec.url`` when the repository holds it, for the pipeline to compare with this
    # repository's own address (bot.pipeline.expand_charts).
    git_source: str | None = None
    git_url: str | None = None


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class ImageRef:
    """One image reference as written in one file.

    ``text`` is the reference as a person reads it in the file (for split Helm fields, the parts
    joined: ``bitnami/kubectl:1.31``). ``reference`` is the normalised form exactly as Docker
    prints it (``docker.io/bitnami/kubectl:1.31``), or None with a ``skip`` reason and a
    ``detail``. ``line``/``column`` point at the place that uses the image (for split fields,
    the first part). ``artifact`` is ``"image"`` or ``"oci-artifact"`` (Flux OCIRepository).
    """

    path: str
    line: int
    column: int
    source: Source
    text: str
    parts: tuple[Part, ...]
    reference: str | None
    skip: Skip | None = None
    detail: str | None = None
    context: Context = field(default_factory=Context)
    artifact: str = "image"
    chart: ChartUse | None = None  # artifact "helm-chart": a chart use, expanded by the pipeline

    def touches(self, paths: Collection[str]) -> bool:
        """Whether the reference reads any of ``paths``: its own file, or a file one of its parts
        lives in (an Ansible role's ``defaults/main.yml``, a Dockerfile ``ARG`` elsewhere)."""
        return self.path in paths or any(p.path in paths for p in self.parts if p.path)

    @property
    def key(self) -> tuple[str, int, int]:
        """Stable identity within one scan."""
        return (self.path, self.line, self.column)


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class ScanError:
    """A file that could not be read or parsed; the scan goes on without it. ``level``
    ``"warning"``: the file was read, but something in it deserves a look (a duplicate key,
    whose last value was used as Kubernetes tooling does)."""

    path: str
    message: str
    level: str = "error"


class Status(enum.StrEnum):
    """What the registry said about a reference (the classification in the README)."""

    OK = "ok"
    TAG_MISSING = "tag-missing"
    REPO_MISSING = "repo-missing"
    AUTH_REQUIRED = "auth-required"
    AUTH_FAILED = "auth-failed"
    FORBIDDEN = "forbidden"
    DIGEST_MISSING = "digest-missing"
    RATE_LIMITED = "rate-limited"
    UNREACHABLE = "unreachable"
    BLOCKED = "blocked"
    INVALID = "invalid"
    UNCHECKED = "unchecked"


@dataclass(frozen=True, slots=True)
class Evidence:
    """What the registry answered, kept so a reviewer can see why we said what we said."""

    http_status: int | None = None
    error_code: str | None = None  # registry error code (MANIFEST_UNKNOWN, ...) or our own
    digest: str | None = None  # of what the reference resolves to (an index's own digest)
    media_type: str | None = None
    checked_at: str | None = None  # ISO 8601 UTC
    detail: str | None = None
    platforms: tuple[str, ...] = ()
    # Set when the answer came from the cache: how old it is (not part of the answer's identity).
    cached_age_s: int | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Resolution:
    """The registry's answer for one normalised reference (what ``registry`` gives ``rules``)."""

    reference: str
    status: Status
    evidence: Evidence = field(default_factory=Evidence)


@dataclass(frozen=True, slots=True)
class Edit:
    """Replace the bytes ``span.start:span.end`` of ``path`` (which must read ``old``) by ``new``."""

    path: str
    span: Span
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class Fix:
    """What a rule proposes for one finding: the new reference, verified on its registry, and
    the byte edits that write it. ``edits`` is empty for advice-only outcomes."""

    rule: str
    why: str
    before: str  # reference as written
    after: str  # new reference as it will be written
    target: str | None = None  # normalised new reference
    digest: str | None = None  # verified digest of the target
    checked_at: str | None = None
    edits: tuple[Edit, ...] = ()
    advice: str | None = None


@dataclass(slots=True)
class Finding:
    """One reference with its status, evidence and, when a rule fires, its fix or advice."""

    ref: ImageRef
    status: Status = Status.UNCHECKED
    evidence: Evidence | None = None
    rule: str | None = None
    fix: Fix | None = None
    advice: str | None = None
    # No fix because a registry could not be asked about the target (an outage): writers must
    # not read it as "nothing to propose" (an open PR is kept, not retired).
    unsure: bool = False

    def to_json(self) -> dict[str, Any]:
        """The JSON shape documented in the README (other tools read it; keep it stable)."""
        r = self.ref
        return {
            "path": r.path,
            "line": r.line,
            "column": r.column,
            "source": str(r.source),
            "artifact": r.artifact,
            "text": r.text,
            "reference": r.reference,
            "skip": None if r.skip is None else str(r.skip),
            "detail": r.detail,
            "status": str(self.status),
            "digest": self.evidence.digest if self.evidence else None,
            "evidence": _plain(self.evidence),
            "context": _plain(r.context),
            "parts": [
                {
                    "role": str(p.role),
                    "text": p.text,
                    "path": p.path or r.path,
                    "line": p.span.line,
                    "column": p.span.column,
                    "start": p.span.start,
                    "end": p.span.end,
                }
                for p in r.parts
            ],
            "rule": self.rule,
            "fix": _plain(self.fix),
            "advice": self.advice,
        }


def _plain(obj: object) -> Any:
    """Dataclass -> JSON-ready dict (enums as their values, tuples as lists)."""
    if obj is None:
        return None
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, (tuple, list)):
        return [_plain(x) for x in obj]
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    return obj
