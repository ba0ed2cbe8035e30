"""What tag a Helm chart renders for an image map whose ``tag`` is left empty.

Most charts render ``default .Chart.AppVersion .Values.image.tag``, but not all: node-exporter and
kube-state-metrics render ``printf "v%s" .Chart.AppVersion`` (``v1.8.2`` for appVersion
``1.8.2``), kube-prometheus-stack's kubectl defaults to the cluster's Kubernetes version, and the
values of a sub-chart take the sub-chart's ``appVersion``. :func:`default_tag` reads the chart's
own ``Chart.yaml`` and templates (never renders them) to say which, and says so when it cannot
know. With no templates to read (a values file kept without its chart's templates), Helm's
convention, ``appVersion``, is assumed, as before.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable

from bot.scan.yamlsrc import YamlRejected, documents, get, is_map, is_seq, text_of

_PRINTF = re.compile(r"""printf\s+"([^"%]*)%s([^"%]*)"\s+\(?\s*\$?\.Chart\.AppVersion""")
_APP = re.compile(r"\.Chart\.AppVersion")
_KUBE = re.compile(r"\.Capabilities\.KubeVersion")
_MAX_TEMPLATES = 400
_MAX_TEMPLATE_BYTES = 4 << 20

Read = Callable[[str], "str | None"]
ListDir = Callable[[str], list[str]]


def chart_of(values_path: str, read: Read) -> str | None:
    """The ``Chart.yaml`` path of the chart owning a values file: beside it, else one level up."""
    here = posixpath.dirname(values_path)
    for d in dict.fromkeys((here, posixpath.dirname(here) if here else None)):
        if d is None:
            continue
        for name in ("Chart.yaml", "Chart.yml"):
            cpath = posixpath.join(d, name) if d else name
            if read(cpath) is not None:
                return cpath
    return None


def _chart(cpath: str, read: Read) -> tuple[str | None, dict[str, str]]:
    """(appVersion, {dependency name or alias: its name}) of a ``Chart.yaml``."""
    text = read(cpath)
    if text is None:
        return None, {}
    try:
        docs = documents(text)
    except YamlRejected:
        return None, {}
    if not docs:
        return None, {}
    root = docs[0].root
    deps: dict[str, str] = {}
    seq = get(root, "dependencies")
    if is_seq(seq):
        for dep in seq.value:  # type: ignore[union-attr]
            if is_map(dep):
                name = text_of(get(dep, "name"))
                if name:
                    deps[text_of(get(dep, "alias")) or name] = name
    return text_of(get(root, "appVersion"), numeric=True), deps


def _templates(chart_dir: str, read: Read, listdir: ListDir) -> list[tuple[str, str]]:
    """(path, text) of the chart's templates (its own, not its sub-charts'), bounded."""
    out: list[tuple[str, str]] = []
    size = 0
    stack = [posixpath.join(chart_dir, "templates") if chart_dir else "templates"]
    while stack and len(out) < _MAX_TEMPLATES:
        d = stack.pop()
        for name in listdir(d):
            p = posixpath.join(d, name)
            if name.endswith((".yaml", ".yml", ".tpl", ".txt")):
                text = read(p)
                if text is not None:
                    size += len(text)
                    if size > _MAX_TEMPLATE_BYTES:
                        return out
                    out.append((p, text))
            elif "." not in name:
                stack.append(p)
    return out


def default_tag(
    values_path: str, fpath: tuple[str | int, ...], read: Read, listdir: ListDir
) -> tuple[str | None, str]:
    """(tag, note) for the image map at ``fpath`` in values file ``values_path`` when its tag is
    empty; (None, reason) when the chart's own files do not say."""
    cpath = chart_of(values_path, read)
    if cpath is None:
        return None, "no tag written, the chart's appVersion is used"
    return _in_chart(cpath, [str(k) for k in fpath], read, listdir, 0)


def _in_chart(
    cpath: str, keys: list[str], read: Read, listdir: ListDir, depth: int
) -> tuple[str | None, str]:
    app, deps = _chart(cpath, read)
    chart_dir = posixpath.dirname(cpath)
    if keys and keys[0] in deps and depth < 4:
        name = deps[keys[0]]
        base = posixpath.join(chart_dir, "charts", name) if chart_dir else posixpath.join("charts", name)
        for sub in ("Chart.yaml", "Chart.yml"):
            spath = posixpath.join(base, sub)
            if read(spath) is not None:
                return _in_chart(spath, keys[1:], read, listdir, depth + 1)
        return None, (
            f"no tag written: the sub-chart {name}'s appVersion is used, and {cpath} does not "
            "vendor that sub-chart"
        )
    if not app:
        return None, f"no tag written, and {cpath} has no appVersion"
    templates = _templates(chart_dir, read, listdir)
    if not templates:
        return app, f"tag from appVersion {app} in {cpath}"
    values_ref = ".Values." + ".".join(keys)
    using = [(p, t) for p, t in templates if values_ref + ".tag" in t]
    lines = [ln for _p, t in using for ln in t.splitlines() if values_ref + ".tag" in ln]
    # The statement building this image's tag, else every template of the chart.
    scope = lines or [ln for _p, t in templates for ln in t.splitlines() if _APP.search(ln)]
    if lines and not any(_APP.search(ln) for ln in lines):
        if any(_KUBE.search(t) for _p, t in using):
            return None, "no tag written: the chart defaults it to the cluster's Kubernetes version"
        scope = [ln for _p, t in templates for ln in t.splitlines() if _APP.search(ln)]
    styles = {(m.group(1), m.group(2)) for ln in scope for m in _PRINTF.finditer(ln)}
    plain = [ln for ln in scope if _APP.search(ln) and "default" in ln and not _PRINTF.search(ln)]
    where = chart_dir or "this chart"
    if not styles and not plain:
        return None, f"no tag written, and the templates of {where} never default it to appVersion"
    if len(styles) > 1 or (styles and plain):
        return None, f"no tag written, and the templates of {where} build it from appVersion in several ways"
    if styles:
        pre, post = next(iter(styles))
        return (
            f"{pre}{app}{post}",
            f'tag from appVersion {app} in {cpath}, as the chart renders it (printf "{pre}%s{post}")',
        )
    return app, f"tag from appVersion {app} in {cpath}"
