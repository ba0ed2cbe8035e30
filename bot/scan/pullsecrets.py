"""What the repository says about pull secrets, per file: the facts the pull-secret check needs.

A private image fails to pull when the kubelet has no credentials for its registry, which is a
question about the pod, not the reference: its namespace, its ``imagePullSecrets``, its service
account's ``imagePullSecrets``, and which pull secrets exist where. This module reads them from
the same composed YAML the finders use (:mod:`bot.scan.yamlsrc`), one file at a time, so the
results are cached with each file's scan; :class:`Facts` joins the files of a repository and
answers the cross-file questions (which namespace a manifest lands in through a kustomization's
``namespace:`` or an Argo CD destination, which secrets a namespace has).

Read, per YAML document:

- pod specs (``spec``, ``spec.template.spec``, ``spec.jobTemplate.spec.template.spec``) of any
  object: ``imagePullSecrets``, ``serviceAccountName``, ``metadata.namespace``, and the byte
  range of the pod spec, which is how an image reference is matched to its pod;
- ``ServiceAccount`` objects and their ``imagePullSecrets``;
- pull secrets: ``Secret`` of type ``kubernetes.io/dockerconfigjson``/``dockercfg`` (registry
  hosts from ``.dockerconfigjson`` in ``data`` or ``stringData``), ``SealedSecret``,
  ``ExternalSecret``/``ClusterExternalSecret`` (hosts when the template is plain JSON), and
  kustomize ``secretGenerator`` entries of those types;
- Helm values (a values file, a HelmRelease's ``spec.values``, an Argo CD ``valuesObject``, a
  kustomization's ``helmCharts[].valuesInline``) that write ``imagePullSecrets`` or
  ``global.imagePullSecrets``: the ranges each list applies to, and the target namespace;
- kustomizations (``namespace:``, ``resources``/``bases``/``components``) and Argo CD
  Applications (``destination.namespace``, ``source.path``).

Only registry host names ever leave a Secret: the decoded ``.dockerconfigjson`` is parsed, its
``auths`` keys kept, and everything else (usernames, passwords, ``auth`` strings) dropped on the
spot. Nothing here logs.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import dataclasses
import json
import posixpath
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.model import pickled_by_fields
from bot.scan.common import TEMPLATE
from bot.scan.yamlimages import embedded
from bot.scan.yamlsrc import Doc, YamlRejected, doc_starts, filtered, get, get_path, text_of, walk

DOCKERCONFIGJSON = "kubernetes.io/dockerconfigjson"
DOCKERCFG = "kubernetes.io/dockercfg"
PULL_TYPES = frozenset({DOCKERCONFIGJSON, DOCKERCFG})

# Where a pod spec sits in the objects that hold one (the workload kinds, CronJob, Pod, and
# custom resources shaped like them: Argo Rollouts, OpenKruise...).
_POD_PATHS: tuple[tuple[str, ...], ...] = (
    ("spec",),
    ("spec", "template", "spec"),
    ("spec", "jobTemplate", "spec", "template", "spec"),
)
_KUSTOMIZATIONS = frozenset({"kustomization.yaml", "kustomization.yml", "Kustomization"})

Region = tuple[int, int]  # byte offsets [start, end) in the file


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Pod:
    """One pod spec: what the kubelet will pull its images with."""

    path: str
    kind: str | None
    name: str | None
    namespace: str | None  # metadata.namespace as written (None: not written, or templated)
    region: Region  # the pod spec mapping: an image reference inside it belongs to this pod
    line: int
    field: str  # dotted path of the pod spec (spec.template.spec)
    secrets: tuple[str, ...]  # imagePullSecrets names
    listed: bool  # imagePullSecrets is written (even empty)
    service_account: str | None  # serviceAccountName (or the deprecated serviceAccount)
    containers: bool  # False: a patch that only adds pull secrets or a service account
    doc: int  # index of the YAML document in the file
    keys: tuple[str | int, ...]  # key path of the pod spec in its document


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Scope:
    """One ``imagePullSecrets`` list in Helm values and the range it applies to."""

    region: Region
    names: tuple[str, ...]
    keys: tuple[str | int, ...]  # path of the mapping holding the list, from the values root


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Values:
    """Helm values that write ``imagePullSecrets`` somewhere: each ``scopes`` entry is the range
    a list applies to (the mapping holding it; the whole values for ``global.imagePullSecrets``)
    and its names. Images in the values outside every scope are not judged: whether the chart
    takes pull secrets for them is not known here."""

    path: str
    region: Region
    line: int
    owner: str | None  # "HelmRelease/x", "Application/y"; None for a values file
    namespace: str | None  # targetNamespace / Argo CD destination / helmCharts namespace
    object_namespace: str | None  # the HelmRelease's own metadata.namespace (Helm's default)
    scopes: tuple[Scope, ...]
    field: str  # dotted path of the values root ("" for a values file)
    doc: int
    keys: tuple[str | int, ...]
    inline: bool = False  # YAML inside a string (Argo CD helm.values): read, never edited


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Account:
    """A ServiceAccount defined in the repository."""

    path: str
    line: int
    name: str
    namespace: str | None
    secrets: tuple[str, ...]


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class PullSecret:
    """A pull secret defined in the repository. ``hosts`` are the registries it holds
    credentials for, normalised (``docker.io`` for Docker Hub); None when they cannot be read
    (sealed, encrypted, templated, generated from a file)."""

    path: str
    line: int
    kind: str  # Secret, SealedSecret, ExternalSecret, secretGenerator...
    name: str
    namespace: str | None
    hosts: tuple[str, ...] | None


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Kustomization:
    """A kustomization: the namespace it sets on everything it builds, and what it builds."""

    path: str
    namespace: str | None
    resources: tuple[str, ...]  # repository paths of files and directories it includes


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Destination:
    """An Argo CD Application: the namespace it deploys the manifests under ``paths`` into."""

    path: str
    name: str | None
    namespace: str | None
    paths: tuple[str, ...]


@dataclass
class FileFacts:
    """Everything one file says (see the module docstring); empty for most files."""

    path: str
    pods: list[Pod] = field(default_factory=list)
    values: list[Values] = field(default_factory=list)
    accounts: list[Account] = field(default_factory=list)
    secrets: list[PullSecret] = field(default_factory=list)
    kustomizations: list[Kustomization] = field(default_factory=list)
    destinations: list[Destination] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(
            self.pods or self.values or self.accounts or self.secrets or self.kustomizations
            or self.destinations
        )  # fmt: skip

    def shifted(self, by: int) -> FileFacts:
        """The same facts with byte regions moved by ``by`` (a BOM removed before reading)."""
        if not by:
            return self

        def move(r: Region) -> Region:
            return (r[0] + by, r[1] + by)

        return dataclasses.replace(
            self,
            pods=[dataclasses.replace(p, region=move(p.region)) for p in self.pods],
            values=[
                dataclasses.replace(
                    v,
                    region=move(v.region),
                    scopes=tuple(dataclasses.replace(c, region=move(c.region)) for c in v.scopes),
                )
                for v in self.values
            ],
        )


def wanted(chunk: str) -> bool:
    """Linear pre-filter for a document: most hold none of the words these facts need. Each
    test is a pass over the text, so words that need another first wait for it (``Secret``
    before the three kinds of secret that spell it, Argo CD's ``destination`` after its group).
    """
    return (
        "containers" in chunk  # a pod
        or (
            "Secret" in chunk
            and ("imagePullSecrets" in chunk or "SealedSecret" in chunk or "ExternalSecret" in chunk)
        )
        or "ServiceAccount" in chunk
        or "dockerc" in chunk  # a Secret of a pull type, or a generator of one
        or "HelmRelease" in chunk
        or ("argoproj.io/" in chunk and "destination" in chunk)
        or ("kustomize.config.k8s.io/" in chunk and _lists_resources(chunk))
    )


def _lists_resources(chunk: str) -> bool:
    return "resources" in chunk or "bases" in chunk or "components" in chunk


def _wanted_kustomization(chunk: str) -> bool:
    """:func:`wanted` for a file named as a kustomization, which need not state its apiVersion."""
    return _lists_resources(chunk) or wanted(chunk)


@dataclass(slots=True)
class _At:
    """Where the reader is: the document, its index in the file, and the facts being filled."""

    doc: Doc
    index: int
    out: FileFacts


def read(text: str, path: str) -> FileFacts:
    """The facts in one decoded YAML file; raises :class:`YamlRejected` as the finders do."""
    out = FileFacts(path)
    if not path.endswith((".yaml", ".yml")) and posixpath.basename(path) not in _KUSTOMIZATIONS:
        return out
    docs = filtered(text, _wanted_kustomization if posixpath.basename(path) in _KUSTOMIZATIONS else wanted)
    if not docs:
        return out
    index = _document_index(text)
    for doc in docs:
        _document(_At(doc, index(doc.base), out), doc.root, ())
    return out


_CONTENT = re.compile(r"^[ \t]*[^ \t\r\n#%]", re.M)


def _document_index(text: str) -> Callable[[int], int]:
    """Maps the offset where one of :func:`documents`' chunks starts to the index PyYAML gives
    that document in the file (what the edit engine's ``document=`` counts): a leading chunk
    that holds only comments or directives is no document of its own."""
    starts = doc_starts(text)  # the same chunks as documents(), always from 0
    opens = text.startswith("---") and text[3:4] in ("", " ", "\t", "\r", "\n")
    first_is_doc = opens or _CONTENT.search(text, 0, starts[1] if len(starts) > 1 else len(text)) is not None
    skip = 0 if first_is_doc else 1
    return lambda base: bisect.bisect_right(starts, base) - 1 - skip


def _document(at: _At, root: Node, prefix: tuple[str | int, ...]) -> None:
    doc, out = at.doc, at.out
    if not isinstance(root, MappingNode):
        return
    api = text_of(get(root, "apiVersion"))
    kind = text_of(get(root, "kind"))
    listed = get(root, "items")
    if kind and kind.endswith("List") and isinstance(listed, SequenceNode):
        for j, item in enumerate(listed.value):
            _document(at, item, (*prefix, "items", j))
        return
    base = posixpath.basename(out.path)
    if base in _KUSTOMIZATIONS or (api or "").startswith("kustomize.config.k8s.io/"):
        _kustomization(at, root)
        return
    if api is None and kind is None:
        _values(at, root, prefix, None, (None, None))
        return
    name = _plain(get_path(root, "metadata", "name"))
    namespace = _plain(get_path(root, "metadata", "namespace"))
    if kind == "ServiceAccount":
        if name:
            secrets = _names(get(root, "imagePullSecrets"))
            out.accounts.append(Account(out.path, _line(doc, root), name, namespace, secrets))
        return
    if kind in ("Secret", "SealedSecret", "ExternalSecret", "ClusterExternalSecret"):
        secret = _secret(doc, root, kind, (name, namespace), out.path)
        if secret is not None:
            out.secrets.append(secret)
        return
    if api and api.startswith("argoproj.io/") and kind in ("Application", "ApplicationSet"):
        _application(at, root, kind, name, prefix)
        return
    if api and api.startswith("helm.toolkit.fluxcd.io/") and kind == "HelmRelease":
        values = get_path(root, "spec", "values")
        target = _plain(get_path(root, "spec", "targetNamespace"))
        _values(at, values, (*prefix, "spec", "values"), f"HelmRelease/{name}", (target, namespace))
        return
    for keys in _POD_PATHS:
        spec = get_path(root, *keys)
        if isinstance(spec, MappingNode) and _is_pod_spec(spec):
            out.pods.append(_pod(at, spec, (kind, name, namespace), (*prefix, *keys)))
            return


def _is_pod_spec(spec: MappingNode) -> bool:
    return (
        isinstance(get(spec, "containers"), SequenceNode)
        or get(spec, "imagePullSecrets") is not None
        or get(spec, "serviceAccountName") is not None
    )


def _pod(
    at: _At, spec: MappingNode, meta: tuple[str | None, str | None, str | None], keys: tuple[str | int, ...]
) -> Pod:
    """``meta``: the object's kind, name and written namespace."""
    doc = at.doc
    kind, name, namespace = meta
    account = _plain(get(spec, "serviceAccountName")) or _plain(get(spec, "serviceAccount"))
    return Pod(
        path=at.out.path,
        kind=kind,
        name=name,
        namespace=namespace,
        region=_region(doc, spec),
        line=_line(doc, spec),
        field=_dotted(keys),
        secrets=_names(get(spec, "imagePullSecrets")),
        listed=get(spec, "imagePullSecrets") is not None,
        service_account=account,
        containers=isinstance(get(spec, "containers"), SequenceNode),
        doc=at.index,
        keys=keys,
    )


def _values(
    at: _At,
    root: Node | None,
    keys: tuple[str | int, ...],
    owner: str | None,
    namespaces: tuple[str | None, str | None],
    *,
    inline: bool = False,
) -> None:
    """Record ``root`` as Helm values when it writes ``imagePullSecrets`` anywhere.
    ``namespaces``: the target namespace, and the owning object's own."""
    doc, out = at.doc, at.out
    namespace, object_namespace = namespaces
    if not isinstance(root, MappingNode):
        return
    whole = _region(doc, root)
    scopes: list[Scope] = []
    for fpath, node in walk(root):
        if not isinstance(node, MappingNode):
            continue
        held = get(node, "imagePullSecrets")
        if held is None:
            continue
        is_global = fpath == ("global",)
        scopes.append(Scope(whole if is_global or not fpath else _region(doc, node), _names(held), fpath))
    if not scopes:
        return
    out.values.append(
        Values(out.path, whole, _line(doc, root), owner, namespace, object_namespace, tuple(scopes),
               _dotted(keys), at.index, keys, inline)
    )  # fmt: skip


def _application(
    at: _At, root: MappingNode, kind: str, name: str | None, prefix: tuple[str | int, ...]
) -> None:
    out = at.out
    spec_keys: tuple[str, ...] = ("spec",) if kind == "Application" else ("spec", "template", "spec")
    spec = get_path(root, *spec_keys)
    dest = _plain(get_path(spec, "destination", "namespace"))
    sources: list[tuple[tuple[str | int, ...], Node]] = []
    single = get(spec, "source")
    if isinstance(single, MappingNode):
        sources.append(((*prefix, *spec_keys, "source"), single))
    many = get(spec, "sources")
    if isinstance(many, SequenceNode):
        sources += [((*prefix, *spec_keys, "sources", i), s) for i, s in enumerate(many.value)]
    paths: list[str] = []
    for skeys, src in sources:
        rel = _plain(get(src, "path"))
        if rel is not None and "://" not in rel:
            norm = posixpath.normpath(rel.strip("/")) if rel.strip("/") else ""
            paths.append("" if norm == "." else norm)
        vobj = get_path(src, "helm", "valuesObject")
        _values(at, vobj, (*skeys, "helm", "valuesObject"), f"{kind}/{name}", (dest, None))
        vstr = get_path(src, "helm", "values")
        if isinstance(vstr, ScalarNode) and "imagePullSecrets" in vstr.value:
            inner, exact = embedded(at.doc, vstr, wanted)
            for idoc in inner if exact else ():  # positions inside the string map to the file
                vkeys = (*skeys, "helm", "values")
                _values(
                    _At(idoc, at.index, out), idoc.root, vkeys, f"{kind}/{name}", (dest, None), inline=True
                )
    out.destinations.append(Destination(out.path, name, dest, tuple(paths)))


def _kustomization(at: _At, root: MappingNode) -> None:
    doc, out = at.doc, at.out
    here = posixpath.dirname(out.path)
    namespace = _plain(get(root, "namespace"))
    resources: list[str] = []
    for key in ("resources", "bases", "components"):
        seq = get(root, key)
        if not isinstance(seq, SequenceNode):
            continue
        for entry in seq.value:
            rel = _plain(entry)
            if rel is None or "://" in rel or rel.startswith(("github.com/", "git@", "/")) or "?ref=" in rel:
                continue
            resources.append(posixpath.normpath(posixpath.join(here, rel)))
    out.kustomizations.append(Kustomization(out.path, namespace, tuple(resources)))
    gens = get(root, "secretGenerator")
    if isinstance(gens, SequenceNode):
        for gen in gens.value:
            gname = _plain(get(gen, "name"))
            if gname and _plain(get(gen, "type")) in PULL_TYPES:
                gns = _plain(get(gen, "namespace")) or namespace
                out.secrets.append(PullSecret(out.path, _line(doc, gen), "secretGenerator", gname, gns, None))
    charts = get(root, "helmCharts")
    if isinstance(charts, SequenceNode):
        for i, chart in enumerate(charts.value):
            owner = f"helmCharts/{_plain(get(chart, 'name'))}"
            cns = _plain(get(chart, "namespace")) or namespace
            _values(at, get(chart, "valuesInline"), ("helmCharts", i, "valuesInline"), owner, (cns, None))


# --- pull secrets -----------------------------------------------------------------------------


def _secret(
    doc: Doc, root: MappingNode, kind: str, meta: tuple[str | None, str | None], path: str
) -> PullSecret | None:
    """``meta``: the object's name and written namespace."""
    name, namespace = meta
    line = _line(doc, root)
    if kind == "Secret":
        stype = _plain(get(root, "type"))
        if not name or stype not in PULL_TYPES:
            return None
        key = ".dockerconfigjson" if stype == DOCKERCONFIGJSON else ".dockercfg"
        hosts = _hosts_from(get(get(root, "stringData"), key), stype, encoded=False)
        if hosts is None:
            hosts = _hosts_from(get(get(root, "data"), key), stype, encoded=True)
        return PullSecret(path, line, kind, name, namespace, hosts)
    if kind == "SealedSecret":
        template = get_path(root, "spec", "template")
        if not name or _plain(get(template, "type")) not in PULL_TYPES:
            return None
        return PullSecret(path, line, kind, name, namespace, None)
    # ExternalSecret / ClusterExternalSecret (external-secrets.io)
    spec = get(root, "spec")
    if kind == "ClusterExternalSecret":
        spec = get(spec, "externalSecretSpec")
        namespace = None  # lands in every namespace its selector picks: any, as far as we know
    target = get(spec, "target")
    template = get(target, "template")
    stype = _plain(get(template, "type"))
    tname = _plain(get(target, "name")) or name
    if not tname or stype not in PULL_TYPES:
        return None
    key = ".dockerconfigjson" if stype == DOCKERCONFIGJSON else ".dockercfg"
    hosts = _hosts_from(get(get(template, "data"), key), stype, encoded=False)
    return PullSecret(path, line, kind, tname, namespace, hosts)


def _hosts_from(node: Node | None, stype: str | None, *, encoded: bool) -> tuple[str, ...] | None:
    """The registry hosts of a docker config (JSON, base64 when ``encoded``), or None when it
    cannot be read. Only the host keys are returned; the credentials are never kept."""
    if not isinstance(node, ScalarNode) or not node.value.strip():
        return None
    raw: str | bytes = node.value
    if encoded:
        try:
            raw = base64.b64decode("".join(node.value.split()), validate=True)
        except (binascii.Error, ValueError):
            return None
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    auths = data.get("auths") if isinstance(data, dict) and stype == DOCKERCONFIGJSON else data
    if not isinstance(auths, dict):
        return None
    hosts = sorted({h for h in (normalise_host(k) for k in auths if isinstance(k, str)) if h})
    del data, auths  # nothing but the host names outlives this function
    return tuple(hosts)


_HUB = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"})


def normalise_host(text: str) -> str | None:
    """A docker config ``auths`` key as a registry host: no scheme or path, lower-case, Docker
    Hub's names folded into ``docker.io``, port 443 dropped; None when it is no host."""
    raw = text.strip().lower()
    if "://" in raw:
        raw = raw.split("://", 1)[1]
    raw = raw.split("/", 1)[0]
    if not raw or any(c.isspace() or c in "@?#" for c in raw) or TEMPLATE.search(raw):
        return None
    raw = raw.removesuffix(":443")
    return "docker.io" if raw in _HUB else raw


# --- small helpers ----------------------------------------------------------------------------


def _plain(node: Node | None) -> str | None:
    """A string value as written, None when absent, not a string or templated."""
    text = text_of(node)
    if text is None or not text.strip() or TEMPLATE.search(text):
        return None
    return text.strip()


def _names(node: Node | None) -> tuple[str, ...]:
    """Names in an ``imagePullSecrets`` list: ``- name: x`` (and ``- x``, as Helm charts take)."""
    if not isinstance(node, SequenceNode):
        return ()
    out: list[str] = []
    for entry in node.value:
        name = _plain(get(entry, "name")) if isinstance(entry, MappingNode) else _plain(entry)
        if name and name not in out:
            out.append(name)
    return tuple(out)


def _region(doc: Doc, node: Node) -> Region:
    s, e = doc.bounds(node)
    try:
        span = doc.loc.span(s, e)
    except IndexError:  # YAML in a string: its end is past the last line the file maps
        last = doc.loc.span(s, max(s, e - 1))
        return (last.start, last.end + 1)
    return (span.start, span.end)


def _line(doc: Doc, node: Node) -> int:
    return doc.loc.line_col(doc.bounds(node)[0])[0]


def _dotted(keys: tuple[str | int, ...]) -> str:
    out = ""
    for k in keys:
        out += f"[{k}]" if isinstance(k, int) else (f".{k}" if out else str(k))
    return out


# --- the repository ---------------------------------------------------------------------------


class Facts:
    """The facts of every file of a repository, and the questions that need more than one file."""

    def __init__(self, files: Iterable[FileFacts] = ()) -> None:
        self.files = [f for f in files if f]
        self.pods = [p for f in self.files for p in f.pods]
        self.values = [v for f in self.files for v in f.values]
        self.accounts = [a for f in self.files for a in f.accounts]
        self.secrets = [s for f in self.files for s in f.secrets]
        self.kustomizations = [k for f in self.files for k in f.kustomizations]
        self.destinations = [d for f in self.files for d in f.destinations]
        self._by_resource: dict[str, list[Kustomization]] = {}
        for k in self.kustomizations:
            for r in k.resources:
                self._by_resource.setdefault(r, []).append(k)
        self._pods: dict[str, list[Pod]] = {}
        for p in self.pods:
            self._pods.setdefault(p.path, []).append(p)
        self._namespaces: dict[tuple[str, str | None], frozenset[str | None]] = {}

    def __bool__(self) -> bool:
        return bool(self.files)

    def pod_of(self, path: str, offset: int) -> Pod | None:
        """The pod spec whose range holds byte ``offset`` of ``path`` (the innermost)."""
        found = [p for p in self._pods.get(path, ()) if p.region[0] <= offset < p.region[1]]
        return min(found, key=lambda p: p.region[1] - p.region[0], default=None)

    def values_of(self, path: str, offset: int) -> tuple[Values, list[Scope]] | None:
        """The Helm values holding ``offset`` and the ``imagePullSecrets`` lists that apply
        there (outermost first), when some list covers it; None otherwise."""
        for v in self.values:
            if v.path != path or not v.region[0] <= offset < v.region[1]:
                continue
            covering = [c for c in v.scopes if c.region[0] <= offset < c.region[1]]
            if not covering:
                return None
            return v, sorted(covering, key=lambda c: c.region[0] - c.region[1])
        return None

    def patches_for(self, pod: Pod) -> list[Pod]:
        """Other pod specs for the same kind and name (kustomize patches adding pull secrets or
        a service account), the pod itself first."""
        if pod.kind is None or pod.name is None:
            return [pod]
        return [pod] + [
            p for p in self.pods
            if p is not pod and p.kind == pod.kind and p.name == pod.name
            and (p.namespace is None or pod.namespace is None or p.namespace == pod.namespace)
        ]  # fmt: skip

    def namespaces(self, path: str, written: str | None) -> frozenset[str | None]:
        """The namespaces an object written in ``path`` (with ``metadata.namespace``
        ``written``) is deployed into: a kustomization's ``namespace:`` overrides (the
        outermost wins; a base used by two overlays lands in both), then the written one, then
        an Argo CD Application's destination for its directory. None stands for "unknown"."""
        known = self._namespaces.get((path, written))
        if known is None:
            known = frozenset(ns or written or self._destination(root) for ns, root in self._chains(path))
            self._namespaces[(path, written)] = known
        return known

    def _chains(self, path: str) -> Iterator[tuple[str | None, str]]:
        """(outermost kustomize namespace or None, directory at the top) for every chain of
        kustomizations that builds ``path``; one chain (None, its directory) when none does."""
        start = posixpath.dirname(path)
        stack: list[tuple[str, str | None, frozenset[str]]] = [(path, None, frozenset())]
        found = False
        steps = 0
        while stack and steps < 10_000:
            steps += 1
            node, ns, seen = stack.pop()
            parents = self._by_resource.get(node, [])
            if not parents:
                if node != path:
                    found = True
                    yield ns, node if node != path else start
                continue
            for k in parents:
                if k.path in seen:
                    continue
                kdir = posixpath.dirname(k.path)
                stack.append((kdir, k.namespace or ns, seen | {k.path}))
        if not found:
            yield None, start

    def _destination(self, directory: str) -> str | None:
        best: tuple[int, str | None] | None = None
        for d in self.destinations:
            for p in d.paths:
                inside = p in ("", directory) or directory.startswith(p + "/")
                if inside and (best is None or len(p) > best[0]):
                    best = (len(p), d.namespace)
        return best[1] if best is not None else None

    def secret_namespaces(self, secret: PullSecret) -> frozenset[str | None]:
        return self.namespaces(secret.path, secret.namespace)

    def account(self, name: str, namespace: str | None) -> list[Account]:
        """ServiceAccounts called ``name`` that land in ``namespace`` (any, when None)."""
        return [
            a for a in self.accounts
            if a.name == name
            and (namespace is None or namespace in self.namespaces(a.path, a.namespace)
                 or None in self.namespaces(a.path, a.namespace))
        ]  # fmt: skip

    def named(self, name: str) -> list[PullSecret]:
        return [s for s in self.secrets if s.name == name]

    def in_namespace(self, namespace: str | None) -> list[PullSecret]:
        """Pull secrets defined for ``namespace`` (known namespace only)."""
        if namespace is None:
            return []
        return [s for s in self.secrets if namespace in self.secret_namespaces(s)]


def collect(files: Iterable[tuple[str, str]]) -> Facts:
    """Facts of ``(path, decoded text)`` pairs; unreadable YAML is left out (the finders report it)."""
    out = []
    for path, text in files:
        try:
            out.append(read(text, path))
        except YamlRejected:
            continue
    return Facts(out)


__all__ = [
    "Account",
    "Destination",
    "Facts",
    "FileFacts",
    "Kustomization",
    "Pod",
    "PullSecret",
    "Values",
    "collect",
    "normalise_host",
    "read",
    "wanted",
]
