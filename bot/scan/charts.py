"""Charts a repository deploys: where they come from and the values it gives them.

A chart's own ``values.yaml`` may default to an image that no longer exists (the Bitnami
retirement: ``bitnami/postgresql`` defaults, nothing written in the consuming repository). This
module finds the *uses* of remote charts, so that the pipeline can fetch each chart and resolve
its default images with the repository's overrides applied:

- ``Chart.yaml`` ``dependencies`` (``name``, ``version`` or range, ``repository`` ``https://`` or
  ``oci://``, ``alias``, ``condition``), pinned by ``Chart.lock`` when present; the consumer's
  values are the parent's ``values.yaml``, under the dependency's alias or name, ``global:``
  shared. A ``file://`` chart is read from the repository (its ``Chart.yaml``, ``values.yaml``
  and the templates that build a tag; no network; a path leaving the repository is reported and
  never read) and gets the parent's values like a remote one. Its ``values.yaml`` is still a file
  of the repository, scanned as such: a default the parent leaves alone is reported there once
  (and fixed in place, the smallest change); a default the parent overrides is reported at the
  dependency with the override applied (that is what is deployed), while the finding in the
  chart's own file stays, marked "not deployed as written" (the default can still be fixed in
  place, and bites whoever deploys the chart without the override).
- Argo CD ``Application``/``ApplicationSet`` sources with ``chart`` + ``repoURL`` +
  ``targetRevision`` (``sources`` too): ``helm.valueFiles`` from ``$ref/`` sources of the same
  repository, ``values``, ``valuesObject``, ``parameters``, in Argo CD's order.
- Flux ``HelmRelease``: ``spec.chart.spec`` with its ``sourceRef`` (a ``HelmRepository``, by name
  and namespace, looked up in the same file and the folders around it), or ``chartRef`` to an
  ``OCIRepository`` or a ``HelmChart``; a chart that is a path of a ``GitRepository``/``Bucket``
  source is read from this repository when a chart is there (a fleet repository deploying its
  own charts; the GitRepository's ``spec.url`` goes with it, and the pipeline skips the chart
  when that url names another repository than the one scanned), else reported as skipped
  ("chart from a git source outside this repository", naming the url when known).
  ``valuesFrom`` ConfigMaps found the same way, then ``spec.values``; ``valuesFrom`` Secrets are
  never read, each reported as skipped.
- helmfile ``releases`` with their ``repositories`` (``oci: true`` included), ``values`` files
  and inline maps, and ``set``. A release whose ``chart`` is a path (``./charts/x``, ``../x``, or
  a bare name that is a chart directory here, relative to the helmfile) is read from the
  repository like a ``file://`` dependency, the release's values applied; a path leaving the
  repository (or absolute), or one with no chart there, is reported as skipped, with why.

Each use is one :class:`~bot.model.ImageRef` with ``artifact="helm-chart"`` and its
:class:`~bot.model.ChartUse`; it names no image itself (``reference`` None). This module also
reads how a chart's templates build an image tag from ``.Chart.AppVersion``
(:func:`app_version_tag`), for the pipeline.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Iterator, Mapping
from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.model import ChartUse, Context, ImageRef, Skip, Source
from bot.scan import Repo
from bot.scan.yamlimages import Where, images, want_with_values
from bot.scan.yamlsrc import NULL, Doc, YamlRejected, documents, filtered, get, get_path, text_of

SOURCE = Source.HELM_CHART
_MAX_VALUES_NODES = 100_000
_LOCAL_TEMPLATES = 200  # template files read at most from a chart in the repository
_SEARCH_FILES = 300  # files read at most when looking for a Flux source or ConfigMap
_HELMFILE = re.compile(r"(?:^|/)helmfile(?:\.d/[^/]+)?\.ya?ml$|(?:^|/)helmfile\.ya?ml$")


def claims(path: str, head: bytes) -> bool:
    base = posixpath.basename(path)
    if base in ("Chart.yaml", "Chart.yml"):
        return True
    return bool(_HELMFILE.search(path))


def find(text: str, path: str, repo: Repo) -> Iterator[ImageRef]:
    base = posixpath.basename(path)
    if base in ("Chart.yaml", "Chart.yml"):
        yield from _chart_yaml(text, path, repo)
        return
    yield from _helmfile(text, path, repo)
    for doc in filtered(text, want_with_values):  # inline values in a helmfile may name images too
        found = images(doc, doc.root, Where(path, Source.YAML))
        yield from sorted(found, key=lambda r: (r.line, r.column))


# --- helpers --------------------------------------------------------------------------------------


def plain(node: Node | None, budget: list[int] | None = None) -> Any:
    """A composed node as Python data (strings as written for scalars that are strings, numbers
    and booleans resolved), bounded in total visits so aliases cannot blow it up."""
    budget = budget if budget is not None else [_MAX_VALUES_NODES]
    budget[0] -= 1
    if budget[0] < 0:
        raise YamlRejected("values too large to read")
    if node is None:
        return None
    if isinstance(node, MappingNode):
        out: dict[str, Any] = {}
        for k, v in node.value:
            if isinstance(k, ScalarNode) and k.tag == "tag:yaml.org,2002:merge":
                merged = plain(v, budget)
                for m in merged if isinstance(merged, list) else [merged]:
                    if isinstance(m, dict):
                        for mk, mv in m.items():
                            out.setdefault(mk, mv)
                continue
            key = text_of(k, numeric=True)
            if key is not None:
                out[key] = plain(v, budget)
        return out
    if isinstance(node, SequenceNode):
        return [plain(v, budget) for v in node.value]
    if isinstance(node, ScalarNode):
        if node.tag == NULL:
            return None
        if node.tag == "tag:yaml.org,2002:bool":
            return node.value.lower() in ("true", "yes", "on", "y")
        if node.tag == "tag:yaml.org,2002:int":
            try:
                return int(node.value.replace("_", ""), 0)
            except ValueError:
                return node.value
        if node.tag == "tag:yaml.org,2002:float":
            try:
                return float(node.value.replace("_", ""))
            except ValueError:
                return node.value
        return node.value
    return None


def merge(base: Any, over: Any) -> Any:
    """Helm's coalescing of values: maps merge key by key, anything else replaces; a null
    override deletes the key."""
    if not isinstance(base, dict) or not isinstance(over, dict):
        return over
    out = dict(base)
    for k, v in over.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out


def set_dotted(values: dict[str, Any], name: str, value: Any) -> None:
    """``--set``-style ``a.b.c=value`` into ``values`` (escaped dots ``\\.`` kept in keys)."""
    keys = [k.replace("\0", ".") for k in name.replace("\\.", "\0").split(".")]
    here = values
    for k in keys[:-1]:
        nxt = here.get(k)
        if not isinstance(nxt, dict):
            nxt = here[k] = {}
        here = nxt
    here[keys[-1]] = value


def _yaml_values(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        docs = documents(text)
    except YamlRejected:
        return None
    value = plain(docs[0].root) if docs else {}
    return value if isinstance(value, dict) else ({} if value is None else None)


def _use(
    doc: Doc | None,
    node: Node | None,
    path: str,
    use: ChartUse,
    *,
    kind: str | None = None,
    name: str | None = None,
) -> ImageRef:
    line, column = doc.position(node) if doc is not None and node is not None else (1, 1)
    label = f"{use.repository.rstrip('/')}/{use.name}" if use.repository.startswith("oci://") else use.name
    return ImageRef(
        path=path,
        line=line,
        column=column,
        source=SOURCE,
        text=f"{label} {use.version}",
        parts=(),
        reference=None,
        skip=Skip.CHART_DEFAULT,
        detail=f"chart {use.name} {use.version} from {use.repository} ({use.via})",
        context=Context(kind=kind, name=name or use.alias or use.name, notes=(use.via,)),
        artifact="helm-chart",
        chart=use,
    )


def _json(values: Any) -> str:
    return json.dumps(values if isinstance(values, dict) else {}, sort_keys=True, default=str)


# --- Chart.yaml -----------------------------------------------------------------------------------


def _chart_yaml(text: str, path: str, repo: Repo) -> Iterator[ImageRef]:
    if "dependencies" not in text:
        return
    docs = documents(text)
    if not docs:
        return
    deps = get(docs[0].root, "dependencies")
    if not isinstance(deps, SequenceNode):
        return
    here = posixpath.dirname(path)
    lock = _lock_versions(repo.read_text(posixpath.join(here, "Chart.lock") if here else "Chart.lock"))
    vpath = posixpath.join(here, "values.yaml") if here else "values.yaml"
    vtext = repo.read_text(vpath)
    values = _yaml_values(vtext) if vtext is not None else {}
    problem = None if values is not None else f"{vpath} cannot be read as YAML"
    values = values or {}
    for dep in deps.value:
        name = text_of(get(dep, "name"))
        repository = text_of(get(dep, "repository")) or ""
        version = text_of(get(dep, "version"), numeric=True) or "*"
        if not name or not repository.startswith(("https://", "http://", "oci://", "file://")):
            continue  # @alias repositories need `helm repo add`
        alias = text_of(get(dep, "alias"))
        condition = text_of(get(dep, "condition"))
        if condition and _disabled(values, condition):
            continue
        key = alias or name
        version = lock.get((name, repository), version)
        files: tuple[tuple[str, str], ...] = ()
        if repository.startswith("file://"):
            local = local_path(here, repository.removeprefix("file://"))
            if local is None:
                yield _outside(docs[0], get(dep, "repository"), path, name, repository)
                continue
            repository, files = "file://" + local, local_chart_files(repo, local)
        own = values.get(key)
        scoped: dict[str, Any] = dict(own) if isinstance(own, dict) else {}
        if isinstance(values.get("global"), dict):
            scoped["global"] = merge(values["global"], scoped.get("global") or {})
        use = ChartUse(
            repository=repository,
            name=name,
            version=version,
            via="Chart.yaml dependency",
            alias=alias,
            values=_json(scoped),
            site=vpath,
            site_keys=(key,),
            site_document=0,
            site_text=vtext if vtext is not None else "",
            site_problem=problem,
            files=files,
        )
        yield _use(docs[0], get(dep, "name"), path, use, kind="Chart.yaml", name=key)


def local_path(here: str, rel: str) -> str | None:
    """A chart path relative to folder ``here``, as a path in the repository; None when it is
    absolute or leaves the repository."""
    if not rel or rel.startswith("/") or "\\" in rel:
        return None
    joined = posixpath.normpath(posixpath.join(here, rel) if here else rel)
    if joined == ".." or joined.startswith("../") or joined.startswith("/"):
        return None
    return "" if joined == "." else joined


def local_chart_files(repo: Repo, top: str) -> tuple[tuple[str, str], ...]:
    """A chart of this repository as the pipeline reads a fetched one: ``Chart.yaml``,
    ``values.yaml`` and its templates (bounded), keyed by path inside the chart."""
    out: list[tuple[str, str]] = []
    join = (lambda p: posixpath.join(top, p)) if top else (lambda p: p)
    for name in ("Chart.yaml", "values.yaml"):
        text = repo.read_text(join(name))
        if text is not None:
            out.append((name, text))
    budget = [_LOCAL_TEMPLATES]
    stack = ["templates"]
    while stack and budget[0] > 0:
        folder = stack.pop()
        for entry in sorted(repo.listdir(join(folder))):
            rel = f"{folder}/{entry}"
            if entry.endswith((".yaml", ".yml", ".tpl")):
                text = repo.read_text(join(rel))
                budget[0] -= 1
                if text is not None and (".Chart.AppVersion" in text or ".Capabilities.KubeVersion" in text):
                    out.append((rel, text))
            elif "." not in entry and rel.count("/") < 4:
                stack.append(rel)
            if budget[0] <= 0:
                break
    return tuple(out)


def _outside(doc: Doc, node: Node | None, path: str, name: str, repository: str) -> ImageRef:
    """A ``file://`` chart that is not a path inside this repository: reported, never read."""
    why = f"chart {name} from {repository}: the path is outside the repository, not read"
    return _skipped(doc, node, path, why, kind="Chart.yaml", name=name, text=f"{name} {repository}")


def _disabled(values: Mapping[str, Any], condition: str) -> bool:
    """Helm's ``condition``: the first path that resolves to a boolean decides."""
    for cond in condition.split(","):
        here: Any = values
        for k in cond.strip().split("."):
            here = here.get(k) if isinstance(here, dict) else None
        if isinstance(here, bool):
            return not here
    return False


def _lock_versions(text: str | None) -> dict[tuple[str, str], str]:
    data = _yaml_values(text)
    out: dict[tuple[str, str], str] = {}
    for dep in (data or {}).get("dependencies") or []:
        if isinstance(dep, dict) and all(
            isinstance(dep.get(k), str) for k in ("name", "repository", "version")
        ):
            out[(dep["name"], dep["repository"])] = dep["version"]
    return out


# --- Argo CD and Flux (handed over by the Kubernetes finder) --------------------------------------


def want(chunk: str) -> bool:
    """Pre-filter for documents that may deploy a chart."""
    return "chart" in chunk and ("argoproj.io/" in chunk or "HelmRelease" in chunk or "chartRef" in chunk)


def uses(text: str, path: str, repo: Repo) -> Iterator[ImageRef]:
    """Chart uses in a YAML file of Kubernetes objects (Argo CD Applications, Flux HelmReleases)."""
    if not want(text):
        return
    try:
        docs = documents(text)
    except YamlRejected:
        return  # the Kubernetes finder reports the file
    for index, doc in enumerate(docs):
        root = doc.root
        api = text_of(get(root, "apiVersion")) or ""
        kind = text_of(get(root, "kind")) or ""
        if api.startswith("argoproj.io/") and kind in ("Application", "ApplicationSet"):
            yield from _argocd(doc, index, path, repo, kind)
        elif api.startswith("helm.toolkit.fluxcd.io/") and kind == "HelmRelease":
            yield from _flux(doc, index, docs, path, repo)


def _argocd(doc: Doc, index: int, path: str, repo: Repo, kind: str) -> Iterator[ImageRef]:
    root = doc.root
    name = text_of(get_path(root, "metadata", "name"))
    spec_keys: tuple[str | int, ...] = ("spec", "template", "spec") if kind == "ApplicationSet" else ("spec",)
    spec = get_path(root, *[str(k) for k in spec_keys])
    sources: list[tuple[tuple[str | int, ...], Node]] = []
    single = get(spec, "source")
    if isinstance(single, MappingNode):
        sources.append(((*spec_keys, "source"), single))
    many = get(spec, "sources")
    if isinstance(many, SequenceNode):
        sources += [
            ((*spec_keys, "sources", i), s) for i, s in enumerate(many.value) if isinstance(s, MappingNode)
        ]
    refs = {text_of(get(s, "ref")): s for _, s in sources if text_of(get(s, "ref"))}
    for keys, src in sources:
        chart, url = text_of(get(src, "chart")), text_of(get(src, "repoURL"))
        if not chart or not url:
            continue
        version = text_of(get(src, "targetRevision"), numeric=True) or "*"
        repository = url if "://" in url else f"oci://{url}"
        helm = get(src, "helm")
        values: Any = {}
        for vf in (text_of(x) for x in _seq(get(helm, "valueFiles"))):
            if vf and vf.startswith("$") and "/" in vf:
                ref, _, rel = vf[1:].partition("/")
                if ref in refs:
                    values = merge(values, _yaml_values(repo.read_text(rel)) or {})
        vstring = get(helm, "values")
        if isinstance(vstring, ScalarNode) and vstring.value.strip():
            values = merge(values, _yaml_values(vstring.value) or {})
        vobj = get(helm, "valuesObject")
        if isinstance(vobj, MappingNode):
            values = merge(values, plain(vobj))
        for p in _seq(get(helm, "parameters")):
            pname, pvalue = text_of(get(p, "name")), text_of(get(p, "value"), numeric=True)
            if pname and pvalue is not None:
                set_dotted(values, pname, pvalue)
        problem = None
        in_string = False
        site_keys: tuple[str | int, ...] = (*keys, "helm", "valuesObject")
        if isinstance(vstring, ScalarNode) and vstring.value.strip() and not isinstance(vobj, MappingNode):
            if vstring.style == "|":  # a literal block: edited in place (bot.edit.insert)
                site_keys, in_string = (*keys, "helm", "values"), True
            else:
                problem = "the values are a quoted or folded YAML string (helm.values); edit it by hand"
        use = ChartUse(
            repository=repository,
            name=chart,
            version=version,
            via=f"Argo CD {kind}",
            values=_json(values),
            site=path,
            site_keys=site_keys,
            site_document=index,
            site_text=doc.loc.text,
            site_problem=problem,
            site_in_string=in_string,
        )
        yield _use(doc, get(src, "chart"), path, use, kind=kind, name=name)


def _seq(node: Node | None) -> list[Node]:
    return list(node.value) if isinstance(node, SequenceNode) else []


def _flux(doc: Doc, index: int, docs: list[Doc], path: str, repo: Repo) -> Iterator[ImageRef]:
    root = doc.root
    name = text_of(get_path(root, "metadata", "name"))
    namespace = text_of(get_path(root, "metadata", "namespace"))
    spec = get(root, "spec")
    chart_spec = get_path(spec, "chart", "spec")
    anchor: Node | None = None
    source: _Source | str | None
    if isinstance(chart_spec, MappingNode):
        anchor = get(chart_spec, "chart")
        source = _flux_source(docs, path, repo, chart_spec, namespace)
    else:
        cref = get(spec, "chartRef")
        ckind, cname = text_of(get(cref, "kind")), text_of(get(cref, "name")) or ""
        cns = text_of(get(cref, "namespace")) or namespace
        anchor = get(cref, "name")
        if ckind == "HelmChart" and cname:
            found = _find_object(docs, path, repo, kind="HelmChart", name=cname, namespace=cns)
            hns = text_of(get_path(found, "metadata", "namespace")) or cns
            source = _flux_source(docs, path, repo, get(found, "spec"), hns) if found is not None else None
        elif ckind == "OCIRepository" and cname:
            source = _flux_oci(docs, path, repo, cname, cns)
        else:
            source = None
    if isinstance(source, str):
        yield _skipped(doc, anchor, path, source, kind="HelmRelease", name=name)
    values: Any = {}
    secrets: list[str] = []
    for vf in _seq(get(spec, "valuesFrom")):
        vkind, vname = text_of(get(vf, "kind")), text_of(get(vf, "name")) or ""
        if vkind == "Secret":
            # Never read: a secret's contents are not Pullable's to look at, even in the repository.
            secrets.append(vname)
            yield _skipped(
                doc,
                get(vf, "name"),
                path,
                f"values from Secret {vname} (valuesFrom) are never read: images they set are unknown",
                kind="HelmRelease",
                name=vname,
                skip=Skip.VARIABLE,
                text=f"Secret/{vname}",
            )
            continue
        if vkind != "ConfigMap" or get(vf, "targetPath") is not None:
            continue
        cm = _find_object(docs, path, repo, kind="ConfigMap", name=vname, namespace=namespace)
        key = text_of(get(vf, "valuesKey")) or "values.yaml"
        data = get_path(cm, "data", key) if cm is not None else None
        if isinstance(data, ScalarNode):
            values = merge(values, _yaml_values(data.value) or {})
    if source is None or isinstance(source, str):
        return
    repository, chart, version, files, git = source
    spec_values = get(spec, "values")
    if isinstance(spec_values, MappingNode):
        values = merge(values, plain(spec_values))
    via = "Flux HelmRelease" + (f" (values from Secret {', '.join(secrets)} not read)" if secrets else "")
    use = ChartUse(
        repository=repository,
        name=chart,
        version=version,
        via=via,
        values=_json(values),
        site=path,
        site_keys=("spec", "values"),
        site_document=index,
        site_text=doc.loc.text,
        files=files,
        git_source=git[0] if git else None,
        git_url=git[1] if git else None,
    )
    yield _use(doc, anchor, path, use, kind="HelmRelease", name=name)


# (repository, chart, version, files of a chart here, (GitRepository, its url) it came from)
_Source = tuple[str, str, str, tuple[tuple[str, str], ...], tuple[str, str | None] | None]


def _flux_source(
    docs: list[Doc], path: str, repo: Repo, chart_spec: Node | None, namespace: str | None
) -> _Source | str | None:
    """The :data:`_Source` of a ``chart.spec`` or ``HelmChart`` spec; a reason when the chart
    cannot be read from here; None when it names nothing usable."""
    chart = text_of(get(chart_spec, "chart"))
    version = text_of(get(chart_spec, "version"), numeric=True) or "*"
    src = get(chart_spec, "sourceRef")
    skind, sname = text_of(get(src, "kind")), text_of(get(src, "name"))
    sns = text_of(get(src, "namespace")) or namespace
    if not chart or not sname:
        return None
    if skind in ("GitRepository", "Bucket"):
        # The chart is a path in the source. When that path holds a chart in this repository,
        # the source may be this repository (a fleet repository deploying its own charts): the
        # pipeline compares the GitRepository's url with this repository's address.
        url = None
        if skind == "GitRepository":
            found = _find_object(docs, path, repo, kind="GitRepository", name=sname, namespace=sns)
            url = text_of(get_path(found, "spec", "url")) if found is not None else None
        local = local_path("", chart)
        files = local_chart_files(repo, local) if local is not None else ()
        if local is None or not any(p == "Chart.yaml" for p, _ in files):
            where = "a git source" if skind == "GitRepository" else "a Bucket"
            at = f" at {url}" if url else ""
            return f"chart from {where} outside this repository ({skind} {sname}{at}, path {chart}): not read"
        git = (
            (f"GitRepository {sns}/{sname}" if sns else f"GitRepository {sname}", url)
            if skind == "GitRepository"
            else None
        )
        return "file://" + local, posixpath.basename(local) or chart, version, files, git
    if skind != "HelmRepository":
        return None
    found = _find_object(docs, path, repo, kind="HelmRepository", name=sname, namespace=sns)
    if found is None:
        return None
    url = text_of(get_path(found, "spec", "url")) or ""
    if text_of(get_path(found, "spec", "type")) == "oci" and not url.startswith("oci://"):
        url = "oci://" + url.split("://", 1)[-1]
    return url, chart, version, (), None


def _flux_oci(docs: list[Doc], path: str, repo: Repo, name: str, namespace: str | None) -> _Source | None:
    found = _find_object(docs, path, repo, kind="OCIRepository", name=name, namespace=namespace)
    if found is None:
        return None
    url = (text_of(get_path(found, "spec", "url")) or "").rstrip("/")
    tag = text_of(get_path(found, "spec", "ref", "tag"), numeric=True)
    if not url.startswith("oci://") or "/" not in url[6:] or not tag:
        return None
    repository, _, chart = url.rpartition("/")
    return repository, chart, tag, (), None


def _skipped(
    doc: Doc,
    node: Node | None,
    path: str,
    why: str,
    *,
    kind: str,
    name: str | None,
    skip: Skip = Skip.CHART_DEFAULT,
    text: str | None = None,
) -> ImageRef:
    """A chart (or values) this repository deploys that cannot be read: reported, with why."""
    line, column = doc.position(node) if node is not None else (1, 1)
    return ImageRef(
        path=path,
        line=line,
        column=column,
        source=SOURCE,
        text=text or (text_of(node) if isinstance(node, ScalarNode) else None) or kind,
        parts=(),
        reference=None,
        skip=skip,
        detail=why,
        context=Context(kind=kind, name=name),
        artifact="helm-chart",
    )


def _find_object(
    docs: list[Doc], path: str, repo: Repo, *, kind: str, name: str, namespace: str | None
) -> Node | None:
    """A ``kind``/``name`` object (in ``namespace`` when it says one): in this file, else in the
    YAML files of this folder and the folders up to two levels above (and their sub-folders)."""

    def match(root: Node) -> bool:
        if text_of(get(root, "kind")) != kind or text_of(get_path(root, "metadata", "name")) != name:
            return False
        ns = text_of(get_path(root, "metadata", "namespace"))
        return namespace is None or ns is None or ns == namespace

    for d in docs:
        if match(d.root):
            return d.root
    budget = [_SEARCH_FILES]
    here = posixpath.dirname(path)
    tops = [here]
    for _ in range(2):
        if not here:
            break
        here = posixpath.dirname(here)
        tops.append(here)
    seen: set[str] = {path}
    for top in tops:
        for fpath in _yaml_files(repo, top, budget, depth=3):
            if fpath in seen:
                continue
            seen.add(fpath)
            text = repo.read_text(fpath)
            if text is None or f"kind: {kind}" not in text or name not in text:
                continue
            try:
                for d in documents(text, want=lambda c: f"kind: {kind}" in c):
                    if match(d.root):
                        return d.root
            except YamlRejected:
                continue
    return None


def _yaml_files(repo: Repo, top: str, budget: list[int], depth: int) -> Iterator[str]:
    for entry in repo.listdir(top):
        if budget[0] <= 0:
            return
        p = posixpath.join(top, entry) if top else entry
        if entry.endswith((".yaml", ".yml")):
            budget[0] -= 1
            yield p
        elif depth > 0 and "." not in entry and not entry.startswith("_"):
            yield from _yaml_files(repo, p, budget, depth - 1)


# --- helmfile -------------------------------------------------------------------------------------


def _helmfile(text: str, path: str, repo: Repo) -> Iterator[ImageRef]:
    if "releases" not in text:
        return
    try:
        docs = documents(text)
    except YamlRejected:
        return  # go templates in a .gotmpl-like helmfile: not YAML until rendered
    here = posixpath.dirname(path)
    for index, doc in enumerate(docs):
        root = doc.root
        repos: dict[str, tuple[str, bool]] = {}
        for r in _seq(get(root, "repositories")):
            rname, url = text_of(get(r, "name")), text_of(get(r, "url"))
            if rname and url:
                flag = get(r, "oci")
                oci = (isinstance(flag, ScalarNode) and flag.value.lower() == "true") or url.startswith(
                    "oci://"
                )
                repos[rname] = (url, oci)
        for i, rel in enumerate(_seq(get(root, "releases"))):
            chart = text_of(get(rel, "chart"))
            release = text_of(get(rel, "name"))
            if not chart or "{{" in chart:
                continue
            files: tuple[tuple[str, str], ...] = ()
            prefix, _, cname = chart.partition("/")
            if chart.startswith("oci://"):
                repository, _, cname = chart.rpartition("/")
            elif cname and prefix in repos:
                url, oci = repos[prefix]
                repository = ("oci://" + url.split("://", 1)[-1]) if oci else url
            else:
                local = _helmfile_local(repo, here, chart)
                if isinstance(local, str):
                    yield _skipped(doc, get(rel, "chart"), path, local, kind="helmfile release", name=release)
                    continue
                if local is None:
                    continue  # a repository declared elsewhere (`helm repo add`, bases): not ours to read
                top, files = local
                repository, cname = "file://" + top, posixpath.basename(top) or release or "chart"
            version = text_of(get(rel, "version"), numeric=True) or "*"
            values: Any = {}
            site = ""
            site_keys: tuple[str | int, ...] = ()
            site_text: str | None = None
            for j, v in enumerate(_seq(get(rel, "values"))):
                if isinstance(v, ScalarNode) and "{{" not in v.value:
                    vpath = posixpath.normpath(posixpath.join(here, v.value)) if here else v.value
                    vtext = repo.read_text(vpath)
                    values = merge(values, _yaml_values(vtext) or {})
                    if not site and vtext is not None:
                        site, site_keys, site_text = vpath, (), vtext
                elif isinstance(v, MappingNode):
                    values = merge(values, plain(v))
                    if not site:
                        site, site_keys, site_text = path, ("releases", i, "values", j), doc.loc.text
            for s in _seq(get(rel, "set")):
                sname, svalue = text_of(get(s, "name")), text_of(get(s, "value"), numeric=True)
                if sname and svalue is not None:
                    set_dotted(values, sname, svalue)
            use = ChartUse(
                repository=repository,
                name=cname,
                version=version,
                via="helmfile release",
                values=_json(values),
                site=site or path,
                site_keys=site_keys,
                site_document=index if site == path else 0,
                site_text=site_text,
                site_problem=None if site else "the release has no values file or inline values to add to",
                files=files,
            )
            yield _use(doc, get(rel, "chart"), path, use, kind="helmfile release", name=release)


def _helmfile_local(
    repo: Repo, here: str, chart: str
) -> tuple[str, tuple[tuple[str, str], ...]] | str | None:
    """A release's chart that is a path (``./charts/x``, ``../x``, or a bare ``x``/``a/b`` naming
    a directory here), relative to the helmfile's folder as helmfile reads it: (path in the
    repository, the chart's files, read as for a ``file://`` dependency); a reason when it is a
    path that cannot be read from here; None when it is no chart of this repository (a bare name
    with nothing there is a chart repository declared elsewhere)."""
    explicit = chart.startswith(("./", "../", "/")) or chart in (".", "..")
    local = local_path(here, chart)
    if local is None:
        return f"chart {chart}: the path is outside the repository, not read"
    files = local_chart_files(repo, local)
    if any(p == "Chart.yaml" for p, _ in files):
        return local, files
    return f"chart {chart}: no Chart.yaml at {local or '.'} in the repository, not read" if explicit else None


# --- what templates do with .Chart.AppVersion -----------------------------------------------------

_PRINTF = re.compile(r'printf\s+"([^"%]*)%s([^"%]*)"\s+\.Chart\.AppVersion')
_CONCAT = re.compile(r'(?:print|cat)\s+"([^"]*)"\s+\.Chart\.AppVersion')


def app_version_tag(templates: Mapping[str, str]) -> str:
    """A format (``{}``, ``v{}``) saying how the chart's templates turn ``.Chart.AppVersion``
    into the default tag, when they add a prefix or suffix (``printf "v%s" .Chart.AppVersion``)."""
    for text in templates.values():
        if ".Chart.AppVersion" not in text:
            continue
        m = _PRINTF.search(text)
        if m is not None:
            return m.group(1) + "{}" + m.group(2)
        m = _CONCAT.search(text)
        if m is not None:
            return m.group(1) + "{}"
    return "{}"


_KUBE_VALUES = re.compile(r"\.Values\.([A-Za-z0-9_.]+?)\.tag\b")
_KUBE_FORMATS = (
    (re.compile(r'printf\s+"v%s\.%s"\s+\.Capabilities\.KubeVersion\.Major\s+\.Capabilities\.KubeVersion\.Minor'),
     "v{major}.{minor}"),
    (re.compile(r'printf\s+"%s\.%s"\s+\.Capabilities\.KubeVersion\.Major\s+\.Capabilities\.KubeVersion\.Minor'),
     "{major}.{minor}"),
    (re.compile(r"\.Capabilities\.KubeVersion\.(?:Version|GitVersion)\b"), "v{major}.{minor}.{patch}"),
)  # fmt: skip


def kube_version_tags(templates: Mapping[str, str]) -> dict[tuple[str, ...], str]:
    """Image tags the templates default to the cluster's version, by the values path of the
    image (``("kubectl", "image")``): a format with ``{major}``, ``{minor}``, ``{patch}``. Read
    from template lines that use both ``.Values.<path>.tag`` and ``.Capabilities.KubeVersion``."""
    out: dict[tuple[str, ...], str] = {}
    for text in templates.values():
        if ".Capabilities.KubeVersion" not in text:
            continue
        for line in text.splitlines():
            if ".Capabilities.KubeVersion" not in line:
                continue
            fmt = next((f for pattern, f in _KUBE_FORMATS if pattern.search(line)), None)
            if fmt is None:
                continue
            for m in _KUBE_VALUES.finditer(line):
                out.setdefault(tuple(m.group(1).split(".")), fmt)
    return out
