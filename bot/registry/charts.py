"""Fetch the Helm charts a repository deploys, to read the images their defaults name.

Two sources, both through the registry client (so the same egress guard, operator endpoints,
credentials, redirect rules and per-lookup deadline apply as for image lookups):

- a Helm repository (``https://charts.example.com/stable``): its ``index.yaml`` is streamed
  through :class:`IndexReader` (capped; only the chart's own section is kept and parsed, an index
  of tens of MB is never held whole, see there), the version or range resolved, the entry's
  first ``urls`` item (relative to the repository, or absolute) downloaded and checked against
  the entry's ``digest``;
- an OCI registry (``oci://ghcr.io/org/charts``): the manifest of ``<name>:<version>`` and its
  ``application/vnd.cncf.helm.chart.content.v1.tar+gzip`` layer, checked against its digest.

The archive is read in memory, never extracted: decompression is capped (a gzip bomb stops at
the cap), members with absolute paths, ``..`` or links make the whole archive refused, and only
``Chart.yaml``, ``values.yaml``, templates and sub-charts (directories or nested ``.tgz``) are kept.
Charts are cached in the shared store by (repository, name, version, digest), and the
resolution of a version range for half an hour.
"""

from __future__ import annotations

import codecs
import dataclasses
import gzip
import hashlib
import io
import json
import logging
import posixpath
import re
import tarfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import yaml

from bot.registry.cache import Store
from bot.registry.client import Blocked, Client, Deadline, Endpoint, Unreachable, sha256_digest

log = logging.getLogger(__name__)

HELM_LAYER = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
INDEX_CAP = 64 * 1024 * 1024  # popular repositories' indexes are tens of MB
ARCHIVE_CAP = 8 * 1024 * 1024  # compressed chart archive
UNPACKED_CAP = 32 * 1024 * 1024  # everything decompressed, nested archives included
FILE_CAP = 1024 * 1024  # one kept file (values.yaml, a template)
MAX_MEMBERS = 5_000
MAX_DEPTH = 3  # charts/<sub>.tgz inside charts/<sub>.tgz ...
RESOLVE_TTL_S = 1800.0
CHART_TTL_S = 7 * 24 * 3600.0  # a chart version's archive does not change (the digest is in the key)
_PREFIX = "pullable:chart:v1:"
_SEMVER = re.compile(r"v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,252}")


class ChartError(Exception):
    """Why a chart could not be read: ``code`` is ``unreachable``, ``not-found``, ``too-large``,
    ``hostile`` (the archive breaks the rules above) or ``invalid``."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Chart:
    """What Pullable reads of one chart version: its metadata, default values and templates,
    and its sub-charts by directory name (``charts/<name>``)."""

    repository: str
    name: str
    version: str
    app_version: str | None
    digest: str
    values: str = ""
    templates: dict[str, str] = field(default_factory=dict)
    subcharts: dict[str, Chart] = field(default_factory=dict)
    chart_yaml: str = ""
    newest: str | None = None  # the newest stable version the repository lists, when known

    def to_json(self) -> dict[str, Any]:
        """The cached form."""
        return {
            "repository": self.repository,
            "name": self.name,
            "version": self.version,
            "app_version": self.app_version,
            "digest": self.digest,
            "values": self.values,
            "templates": self.templates,
            "subcharts": {k: v.to_json() for k, v in self.subcharts.items()},
            "chart_yaml": self.chart_yaml,
            "newest": self.newest,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Chart:
        """Inverse of :meth:`to_json`."""
        return cls(
            data["repository"],
            data["name"],
            data["version"],
            data.get("app_version"),
            data["digest"],
            data.get("values", ""),
            dict(data.get("templates", {})),
            {k: cls.from_json(v) for k, v in data.get("subcharts", {}).items()},
            data.get("chart_yaml", ""),
            data.get("newest"),
        )


class Charts:
    """Chart lookups over a registry :class:`Client` and a shared :class:`Store`."""

    def __init__(self, client: Client, store: Store | None, total_s: float) -> None:
        self.client, self.store, self.total_s = client, store, total_s
        self._memo: dict[tuple[str, str, str], Chart | ChartError] = {}

    def fetch(self, repository: str, name: str, version: str) -> Chart:
        """The chart ``name`` at ``version`` (a version or a range) from ``repository``
        (``https://...`` Helm repository or ``oci://...``); raises :class:`ChartError`."""
        key = (repository, name, version)
        hit = self._memo.get(key)
        if hit is None:
            try:
                hit = self._fetch(repository, name, version)
            except ChartError as exc:
                hit = exc
            self._memo[key] = hit
        if isinstance(hit, ChartError):
            raise hit
        return hit

    def _fetch(self, repository: str, name: str, version: str) -> Chart:
        if not _NAME.fullmatch(name):
            raise ChartError("invalid", f"{name!r} is not a chart name")
        deadline = Deadline(self.total_s * 2)
        try:
            if repository.startswith("oci://"):
                return self._oci(repository, name, version, deadline)
            if repository.startswith(("https://", "http://")):
                return self._helm_repo(repository, name, version, deadline)
        except Unreachable as exc:
            code = "too-large" if exc.code == "TOO_LARGE" else "unreachable"
            raise ChartError(code, f"{_host(repository)}: {exc}") from None
        except Blocked as exc:
            raise ChartError("unreachable", f"{_host(repository)}: blocked: {exc}") from None
        raise ChartError("invalid", f"{repository!r} is neither an https:// nor an oci:// chart repository")

    # -- Helm repositories ------------------------------------------------------------------------

    def _helm_repo(self, repository: str, name: str, spec: str, deadline: Deadline) -> Chart:
        base = repository.rstrip("/")
        rkey = _PREFIX + "resolve:" + _hash(base, name, spec)
        cached = self._get(rkey)
        if cached is not None:
            entry = json.loads(cached)
        else:
            reader = IndexReader(name)
            self._get_url(
                base + "/index.yaml", deadline, INDEX_CAP, "application/x-yaml, */*", sink=reader.feed
            )
            entries = reader.entries()
            if not entries:
                raise ChartError("not-found", f"chart {name} is not in {base}/index.yaml")
            entry = _pick(entries, spec)
            if entry is None:
                raise ChartError("not-found", f"no version of {name} in {base} matches {spec!r}")
            newest = _pick(entries, "*")
            entry = {**entry, "newest": newest["version"] if newest else None}
            self._put(rkey, json.dumps(entry), RESOLVE_TTL_S)
        version, digest = entry["version"], entry.get("digest") or ""
        ckey = _PREFIX + "chart:" + _hash(base, name, version, digest)
        cached = self._get(ckey)
        if cached is not None and digest:
            return dataclasses.replace(Chart.from_json(json.loads(cached)), newest=entry.get("newest"))
        url = _join(base, entry["url"])
        data = self._get_url(url, deadline, ARCHIVE_CAP, "application/gzip, application/octet-stream, */*")
        got = hashlib.sha256(data).hexdigest()
        if digest and got != digest.removeprefix("sha256:"):
            raise ChartError("invalid", f"{name} {version}: the archive does not match the index digest")
        chart = read_archive(data, base, name, version, "sha256:" + got)
        self._put(ckey, json.dumps(chart.to_json()), CHART_TTL_S)
        return dataclasses.replace(chart, newest=entry.get("newest"))

    def _get_url(
        self, url: str, deadline: Deadline, cap: int, accept: str, sink: Callable[[bytes], None] | None = None
    ) -> bytes:
        """The body of ``url`` (empty when ``sink`` took it, piece by piece; see ``Client.request``)."""
        try:
            u = httpx.URL(url)
        except httpx.InvalidURL:
            raise ChartError("invalid", f"{url!r} is not a URL") from None
        host = u.host + (f":{u.port}" if u.port else "")
        ep = self.client.endpoint(host)
        port = u.port or (443 if u.scheme == "https" else 80)
        if not ep.configured and self.client.config.allow and (u.scheme != "https" or port != 443):
            # The operator trusts the network.allow ranges: any port, plain http included, for a
            # host (address or name) that resolves only inside them, checked by the guard when it
            # connects (as image lookups are); anything else is refused there.
            self.client.backend.trust_in_range(u.scheme, u.host, port)
            ep = Endpoint(
                host, httpx.URL(f"{u.scheme}://{u.netloc.decode('ascii')}"), ep.credentials, False, False
            )
        elif not ep.configured and u.scheme != "https":
            raise ChartError("unreachable", f"{host}: plain http is only allowed to configured endpoints")
        target = ep.url(u.raw_path.decode("ascii"))
        reply = self.client.request(ep, "GET", target, "", deadline, accept=accept, cap=cap, sink=sink)
        if reply.status == 404:
            raise ChartError("not-found", f"{host}{u.path}: 404")
        if reply.status in (401, 403):
            raise ChartError("unreachable", f"{host}{u.path}: {reply.status} (credentials needed?)")
        if reply.status != 200:
            raise ChartError("unreachable", f"{host}{u.path}: HTTP {reply.status}")
        return reply.body

    # -- OCI ------------------------------------------------------------------------------------

    def _oci(self, repository: str, name: str, version: str, deadline: Deadline) -> Chart:
        rest = repository.removeprefix("oci://").rstrip("/")
        domain, _, prefix = rest.partition("/")
        path = f"{prefix}/{name}" if prefix else name
        ep: Endpoint = self.client.endpoint(domain)
        if _is_range(version) or not _SEMVER.fullmatch(version):
            # A range: Helm lists the repository's tags and takes the highest match.
            tags, _, _ = self.client.tags(ep, path, deadline)
            entries = [{"version": t.replace("_", "+")} for t in tags if semver(t.replace("_", "+"))]
            best = _pick(entries, version)
            if best is None:
                raise ChartError("not-found", f"{domain}/{path}: no tag matches {version!r}")
            version = best["version"]
        tag = version.replace("+", "_")  # Helm's tag spelling of build metadata
        reply = self.client.manifest(ep, path, tag, "GET", deadline)
        if reply.status == 404:
            raise ChartError("not-found", f"{domain}/{path}:{tag}: no such chart version")
        if reply.status != 200:
            raise ChartError("unreachable", f"{domain}/{path}:{tag}: HTTP {reply.status}")
        digest = sha256_digest(reply.body)
        ckey = _PREFIX + "chart:" + _hash(repository, name, version, digest)
        cached = self._get(ckey)
        if cached is not None:
            return Chart.from_json(json.loads(cached))
        try:
            layers = json.loads(reply.body).get("layers") or []
            layer = next(x for x in layers if isinstance(x, dict) and x.get("mediaType") == HELM_LAYER)
            blob = str(layer["digest"])
        except (ValueError, AttributeError, StopIteration, KeyError, TypeError):
            raise ChartError("invalid", f"{domain}/{path}:{tag} is not a Helm chart") from None
        if not re.fullmatch(r"sha256:[0-9a-f]{64}", blob):
            raise ChartError("invalid", f"{domain}/{path}:{tag}: bad layer digest")
        url = ep.url(f"/v2/{path}/blobs/{blob}")
        got = self.client.request(ep, "GET", url, path, deadline, accept="*/*", cap=ARCHIVE_CAP)
        if got.status != 200:
            raise ChartError("unreachable", f"{domain}/{path}: chart layer HTTP {got.status}")
        if sha256_digest(got.body) != blob:
            raise ChartError("invalid", f"{domain}/{path}:{tag}: the layer does not match its digest")
        chart = read_archive(got.body, repository, name, version, digest)
        self._put(ckey, json.dumps(chart.to_json()), CHART_TTL_S)
        return chart

    # -- the shared store -------------------------------------------------------------------------

    def _get(self, key: str) -> str | None:
        if self.store is None:
            return None
        try:
            return self.store.get_many([key]).get(key)
        except Exception as exc:  # noqa: BLE001 - a broken store costs speed, never correctness
            log.warning("chart cache read failed: %s", type(exc).__name__)
            return None

    def _put(self, key: str, value: str, ttl: float) -> None:
        if self.store is None:
            return
        try:
            self.store.set_many({key: value}, ttl)
        except Exception as exc:  # noqa: BLE001
            log.warning("chart cache write failed: %s", type(exc).__name__)


# -- index.yaml ----------------------------------------------------------------------------------


_HEAD = 4096  # the start of an index that tells Helm's layout from any other
_LAYOUT = (b"apiVersion", b"entries", b"generated")
_ENTRIES = re.compile(rb"(?m)^entries:[ \t]*(?:#[^\n]*)?\r?\n")
_ENTRIES_KEY = re.compile(rb"(?m)^entries:")
_FIRST_CHILD = re.compile(rb"(?m)^(?![ \t]*(?:#[^\n]*)?\r?\n)([^\n]*)\n")
_CHILD = re.compile(rb"  [^\s#-]")
_TOP = re.compile(rb"(?m)^[^\s#-]")  # a top-level key: the entries block has ended
_SECTION_END = re.compile(rb"(?m)^(?:  [^\s-]|[^\s-])")  # the next chart, or a top-level key


class IndexReader:
    """Reads a Helm repository's ``index.yaml`` as it arrives (:meth:`feed` each decoded piece)
    and keeps only what finding one chart's entries needs (:meth:`entries`).

    An index laid out as Helm writes it (starting with ``apiVersion``, ``entries`` or
    ``generated``; ``entries:`` with its charts as two-space children) is never held: each piece
    is searched as it passes, and only the chart's own section (its ``  <name>:`` line up to the
    next line at indentation 0 or 2) is kept, then parsed. Memory is that section plus one piece
    and one partial line, however large the index (tens of MB for popular repositories).

    Any other layout (JSON, a flow-style ``entries``, other indentation) may need the whole
    document: it is held once, in one bytearray (bounded by the body cap, ``INDEX_CAP``), searched
    there for the chart's section like above and, failing that, parsed whole through an
    incremental decoder (never a second copy of the document as text). So is the start of every
    index, until its layout is known."""

    def __init__(self, name: str) -> None:
        q = re.escape(name.encode())
        self.name = name
        self._entry = re.compile(rb"(?m)^  (?:" + q + rb"|\"" + q + rb"\"|'" + q + rb"')[ \t]*:(?=[ \t\r\n])")
        self._held: bytearray | None = bytearray()  # the document while its layout is unknown or other
        self._other = False  # not Helm's layout: held whole
        self._carry = b""  # Helm's layout: the partial last line of what has passed
        self._section: bytearray | None = None  # the chart's own lines, once its line has passed
        self._done = False  # the section (or the entries block, without the chart) has ended

    def feed(self, piece: bytes) -> None:
        """The next decoded piece of the document."""
        if self._held is None:
            self._scan(piece)
            return
        self._held += piece
        if not self._other:
            self._classify(final=False)

    def entries(self) -> list[dict[str, Any]]:
        """The chart's entries (version, url, digest, appVersion), once the document has ended;
        raises :class:`ChartError` when they cannot be read."""
        if self._held is not None:
            if not self._other:
                self._classify(final=True)
            if self._held is not None:
                return _index_entries_held(self._held, self.name)
        if self._carry:
            self._scan(b"\n")  # the last line, unterminated
        if self._section is None:
            return []
        try:
            parsed = _load("entries:\n" + self._section.decode("utf-8"))
        except UnicodeDecodeError:
            raise ChartError("invalid", f"index.yaml: the entries of {self.name} are not UTF-8") from None
        except yaml.YAMLError as exc:
            first = str(exc).splitlines()[0]
            raise ChartError(
                "invalid", f"index.yaml: the entries of {self.name} are not valid YAML: {first}"
            ) from None
        return _entry_list(parsed, self.name)

    def _classify(self, *, final: bool) -> None:
        """Decide from the held start whether this is Helm's layout; if so, stream from the first
        chart on and let the held bytes go."""
        held = self._held
        assert held is not None
        if len(held) < _HEAD and not final:
            return
        if not bytes(held[:_HEAD]).lstrip().startswith(_LAYOUT):
            self._other = True
            return
        complete = held.rfind(b"\n") + 1
        m = _ENTRIES.search(held, 0, complete)
        if m is None:
            # `entries:` with a value on its line (flow style) is another layout; not there yet: wait
            if final or _ENTRIES_KEY.search(held, 0, complete):
                self._other = True
            return
        child = _FIRST_CHILD.search(held, m.end(), complete)
        if child is None:
            if final:
                self._other = True
            return
        if not _CHILD.match(child.group(1)):
            self._other = True
            return
        rest = bytes(held[child.start() :])
        self._held = None
        self._scan(rest)

    def _scan(self, piece: bytes) -> None:
        """Helm's layout: keep the chart's lines of ``piece`` (complete lines only; the partial
        last one waits for the next piece)."""
        if self._done:
            return
        buf = self._carry + piece if self._carry else piece
        cut = buf.rfind(b"\n") + 1
        lines, self._carry = buf[:cut], buf[cut:]
        if not lines:
            return  # one long line so far (bounded by the body cap)
        pos = 0
        if self._section is None:
            m = self._entry.search(lines)
            top = _TOP.search(lines, 0, m.start() if m else len(lines))
            if top is not None:
                self._done = True  # the entries block ended without the chart
                return
            if m is None:
                return
            pos = lines.index(b"\n", m.start()) + 1
            self._section = bytearray(lines[m.start() : pos])
        end = _SECTION_END.search(lines, pos)
        self._section += lines[pos : end.start() if end else len(lines)]
        self._done = end is not None


def _index_entries(data: bytes, name: str) -> list[dict[str, Any]]:
    """The index entries for ``name`` in a whole document (see :class:`IndexReader`)."""
    reader = IndexReader(name)
    reader.feed(data)
    return reader.entries()


def _index_entries_held(data: bytearray, name: str) -> list[dict[str, Any]]:
    """The entries for ``name`` in a held document of another layout (or a small one): its
    ``  <name>:`` section parsed alone when it has one, else the whole document, read through an
    incremental decoder so that it is never copied whole as text."""
    m = re.search(rb"(?m)^  " + re.escape(name.encode()) + rb":[ \t]*\r?\n", data)
    parsed: Any = None
    if m is not None and bytes(data[:_HEAD]).lstrip().startswith(_LAYOUT):
        end = _SECTION_END.search(data, m.end())
        try:
            section = data[m.start() : end.start() if end else len(data)].decode("utf-8")
            parsed = _load("entries:\n" + section)
        except (yaml.YAMLError, UnicodeDecodeError):
            parsed = None
    if parsed is None:
        try:
            parsed = _load(_Utf8(data))
        except yaml.YAMLError as exc:
            raise ChartError("invalid", f"index.yaml is not valid YAML: {str(exc).splitlines()[0]}") from None
    return _entry_list(parsed, name)


class _Utf8(io.TextIOBase):
    """Held bytes as text, a piece at a time, for the YAML reader."""

    def __init__(self, data: bytearray) -> None:
        self._view = memoryview(data)
        self._at = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")()

    def read(self, size: int | None = -1) -> str:
        n = 64 * 1024 if size is None or size < 0 else max(size, 4)
        chunk = self._view[self._at : self._at + n]
        self._at += len(chunk)
        try:
            return self._decoder.decode(chunk, final=not chunk)
        except UnicodeDecodeError:
            raise ChartError("invalid", "index.yaml is not UTF-8") from None


def _entry_list(parsed: Any, name: str) -> list[dict[str, Any]]:
    entries = parsed.get("entries") if isinstance(parsed, dict) else None
    listed = entries.get(name) if isinstance(entries, dict) else None
    out: list[dict[str, Any]] = []
    for e in listed if isinstance(listed, list) else []:
        if not isinstance(e, dict) or not isinstance(e.get("version"), str):
            continue
        urls = e.get("urls")
        if not isinstance(urls, list) or not urls or not isinstance(urls[0], str):
            continue
        digest = e.get("digest") if isinstance(e.get("digest"), str) else ""
        app = e.get("appVersion")
        out.append(
            {"version": e["version"], "url": urls[0], "digest": digest,
             "appVersion": None if app is None else str(app)}
        )  # fmt: skip
    return out


def _load(text: str | io.TextIOBase) -> Any:
    """A safe load: plain data, no Python objects. A chart repository's bytes are untrusted and
    this layer has no nesting pre-check of its own (that lives in ``bot.scan.yamlsrc``), so the
    pure-Python loader reads them: deep nesting is a RecursionError there, never libyaml's
    recursive composer taking the worker down. The texts read here are small (one chart's
    section of an index, ``Chart.yaml``)."""
    try:
        return yaml.safe_load(text)
    except RecursionError:
        raise yaml.YAMLError("nesting too deep") from None


def _join(base: str, url: str) -> str:
    """An entry's URL: absolute as given, else relative to the repository URL (as Helm does)."""
    if re.match(r"(?i)^[a-z][a-z0-9+.-]*://", url):
        return url
    return str(httpx.URL(base + "/").join(url))


def _host(repository: str) -> str:
    return repository.split("://", 1)[-1].split("/", 1)[0]


def _hash(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


# -- versions and ranges -------------------------------------------------------------------------

Semver = tuple[int, int, int, tuple[tuple[int, int | str], ...]]


def semver(text: str) -> Semver | None:
    """``1.2.3-rc.1`` as a sortable tuple (a release sorts after its pre-releases), or None."""
    m = _SEMVER.fullmatch(text.strip())
    if m is None:
        return None
    pre = m.group(4)
    ids: tuple[tuple[int, int | str], ...] = (
        tuple((0, int(p)) if p.isdigit() else (1, p) for p in pre.split(".")) if pre else ((2, 0),)
    )
    return int(m.group(1)), int(m.group(2) or 0), int(m.group(3) or 0), ids


def _is_range(spec: str) -> bool:
    return bool(re.search(r"[~^<>=*xX| ,]", spec.strip())) or spec.strip() == ""


def _pick(entries: list[dict[str, Any]], spec: str) -> dict[str, Any] | None:
    """The entry for an exact version, else the highest version the range admits."""
    spec = spec.strip()
    for e in entries:
        if e["version"] == spec or e["version"] == spec.removeprefix("v"):
            return e
    if spec and not _is_range(spec):
        return None
    test = constraint(spec or "*")
    best: tuple[Semver, dict[str, Any]] | None = None
    for e in entries:
        v = semver(e["version"])
        if v is None or not test(v, e["version"]):
            continue
        if best is None or v > best[0]:
            best = (v, e)
    return best[1] if best else None


def constraint(spec: str) -> Callable[[Semver, str], bool]:
    """A Masterminds-style constraint (what Helm uses): ``||`` alternatives of comma- or
    space-separated comparisons, ``^``/``~``, ``x`` wildcards and ``a - b`` ranges. Pre-releases
    match only when a comparison names one."""
    alternatives = [a.strip() for a in spec.split("||")]
    parsed = [_comparisons(a) for a in alternatives]

    def test(v: Semver, text: str) -> bool:
        for comps, allow_pre in parsed:
            if v[3] != ((2, 0),) and not allow_pre:
                continue
            if all(c(v) for c in comps):
                return True
        return False

    return test


def _comparisons(text: str) -> tuple[list[Callable[[Semver], bool]], bool]:
    text = re.sub(r"\s*-\s+", " - ", text)
    hyphen = re.fullmatch(r"(\S+) - (\S+)", text.strip())
    if hyphen:
        return _comparisons(f">={hyphen.group(1)}, <={hyphen.group(2)}")
    tokens = [t for t in re.split(r"[\s,]+", re.sub(r"(>=|<=|!=|>|<|=|\^|~>?)\s+", r"\1", text)) if t]
    out: list[Callable[[Semver], bool]] = []
    pre = False
    for tok in tokens or ["*"]:
        m = re.fullmatch(r"(\^|~>?|>=|<=|>|<|=|!=)?v?([0-9xX*]+(?:\.[0-9xX*]+){0,2})(-[0-9A-Za-z.-]+)?", tok)
        if m is None:
            raise ChartError("invalid", f"{text!r} is not a version range")
        op, core, prerelease = m.group(1) or "", m.group(2), m.group(3) or ""
        pre = pre or bool(prerelease)
        nums = core.split(".")
        wild = next((i for i, n in enumerate(nums) if n in ("x", "X", "*")), len(nums))
        given = [int(n) for n in nums[:wild]]
        partial = wild < 3 or len(nums) < 3
        exact = semver(".".join(str(n) for n in [*given, 0, 0, 0][:3]) + prerelease) or (0, 0, 0, ((2, 0),))
        floor: Semver = (exact[0], exact[1], exact[2], exact[3] if prerelease else ((0, 0),))
        out.append(_comparison(op, given, exact, floor, partial))
    return out, pre


def _comparison(
    op: str, given: list[int], exact: Semver, floor: Semver, partial: bool
) -> Callable[[Semver], bool]:
    """One comparison; ``floor`` is the lowest version starting with ``given`` (pre-releases
    included), ``partial`` says the version was written with fewer than three numbers."""
    if op in ("", "="):
        return _between(floor, _bump(given)) if partial else _between(exact, exact, inclusive=True)
    if op == "!=":
        return lambda v: v != exact
    if op == "^":
        first = next((i for i, n in enumerate(given) if n != 0), len(given) - 1) if given else 0
        return _between(floor, _bump(given[: first + 1]) if given else None)
    if op in ("~", "~>"):
        return _between(floor, _bump(given[:2] if len(given) > 1 else given))
    if op == ">=":
        return _between(floor, None)
    if op == ">":
        up = _bump(given) if partial else None
        return _between(up, None) if up else (lambda v: v > exact)
    if op == "<":
        return lambda v: v < floor
    up = _bump(given) if partial else None  # <=
    return (lambda v: v < up) if up else (lambda v: v <= exact)


def _bump(nums: list[int]) -> Semver | None:
    """The first version past everything that starts with ``nums`` (``[1, 2]`` -> 1.3.0-0)."""
    if not nums:
        return None
    n = [*nums[:-1], nums[-1] + 1]
    n += [0] * (3 - len(n))
    return n[0], n[1], n[2], ((0, 0),)


def _between(low: Semver, high: Semver | None, *, inclusive: bool = False) -> Callable[[Semver], bool]:
    if inclusive and high is not None:
        return lambda v: low <= v <= high
    return lambda v: v >= low and (high is None or v < high)


# -- the archive ---------------------------------------------------------------------------------


class _Capped(io.RawIOBase):
    """A readable stream that refuses to yield more than ``budget`` bytes in total."""

    def __init__(self, inner: io.BufferedIOBase | gzip.GzipFile, budget: list[int]) -> None:
        self.inner, self.budget = inner, budget

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        chunk = self.inner.read(min(len(b), 64 * 1024))
        self.budget[0] -= len(chunk)
        if self.budget[0] < 0:
            raise ChartError("too-large", f"the chart unpacks to more than {UNPACKED_CAP} bytes")
        b[: len(chunk)] = chunk
        return len(chunk)


def read_archive(data: bytes, repository: str, name: str, version: str, digest: str) -> Chart:
    """The chart in a ``.tgz``, read in memory with the caps and refusals described above."""
    budget = [UNPACKED_CAP]  # one budget for the archive and every sub-chart archive inside it
    files = _members(data, budget, 0)
    return _chart_at(files, _top(files, name), repository, name, version=version, digest=digest,
                     budget=budget, depth=0)  # fmt: skip


def _members(data: bytes, budget: list[int], depth: int) -> dict[str, bytes]:
    """Kept files of one archive by path (its top directory included)."""
    out: dict[str, bytes] = {}
    try:
        raw = gzip.GzipFile(fileobj=io.BytesIO(data))
        stream = io.BufferedReader(_Capped(raw, budget), buffer_size=64 * 1024)
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for count, member in enumerate(_iter(tar)):
                if count >= MAX_MEMBERS:
                    raise ChartError("too-large", f"more than {MAX_MEMBERS} files in the chart archive")
                _check_member(member)
                if not member.isfile():
                    continue
                if not _wanted(member.name):
                    continue
                if member.size > (ARCHIVE_CAP if member.name.endswith(".tgz") else FILE_CAP):
                    raise ChartError("too-large", f"{member.name} is larger than the cap")
                fh = tar.extractfile(member)
                if fh is not None:
                    out[member.name] = fh.read()
    except ChartError:
        raise
    except (tarfile.TarError, OSError, EOFError, gzip.BadGzipFile) as exc:
        raise ChartError("invalid", f"not a chart archive: {type(exc).__name__}") from None
    return out


def _iter(tar: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    while True:
        member = tar.next()
        if member is None:
            return
        yield member


def _check_member(member: tarfile.TarInfo) -> None:
    name = member.name
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name) or "\\" in name:
        raise ChartError("hostile", f"archive member {name!r} has an absolute path")
    if ".." in name.split("/"):
        raise ChartError("hostile", f"archive member {name!r} leaves the chart (..)")
    if member.issym() or member.islnk():
        raise ChartError("hostile", f"archive member {name!r} is a link")
    if not (member.isfile() or member.isdir()) and member.type not in (tarfile.XHDTYPE, tarfile.XGLTYPE):
        raise ChartError("hostile", f"archive member {name!r} is not a regular file")


def _wanted(path: str) -> bool:
    parts = path.split("/")
    rest = parts[1:]
    if not rest:
        return False
    # Walk down charts/<sub>/ levels; what is kept at every level is the same.
    while len(rest) >= 3 and rest[0] == "charts":
        rest = rest[2:]
    if len(rest) == 2 and rest[0] == "charts" and rest[1].endswith(".tgz"):
        return True
    if len(rest) == 1 and rest[0] in ("Chart.yaml", "values.yaml", "values.yml"):
        return True
    return len(rest) >= 2 and rest[0] == "templates" and rest[-1].endswith((".yaml", ".yml", ".tpl"))


def _top(files: dict[str, bytes], name: str) -> str:
    """The archive's top directory: the chart's name when present, else the first."""
    tops = {p.split("/", 1)[0] for p in files}
    return name if name in tops else (sorted(tops)[0] if tops else name)


def _chart_at(
    files: dict[str, bytes],
    root: str,
    repository: str,
    name: str,
    *,
    version: str,
    digest: str,
    budget: list[int],
    depth: int,
) -> Chart:
    def text(path: str) -> str:
        data = files.get(path)
        if data is None:
            return ""
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ChartError("invalid", f"{path} is not UTF-8") from None

    chart_yaml = text(f"{root}/Chart.yaml")
    meta: Any = None
    try:
        meta = _load(chart_yaml) if chart_yaml else None
    except yaml.YAMLError:
        meta = None
    meta = meta if isinstance(meta, dict) else {}
    app = meta.get("appVersion")
    values = text(f"{root}/values.yaml") or text(f"{root}/values.yml")
    templates = {
        p[len(root) + 1 :]: text(p)
        for p in files
        if p.startswith(f"{root}/templates/") and "/charts/" not in p[len(root) :]
    }
    subs: dict[str, Chart] = {}
    prefix = f"{root}/charts/"
    for p in sorted(files):
        if not p.startswith(prefix):
            continue
        rest = p[len(prefix) :]
        if "/" not in rest and rest.endswith(".tgz"):
            if depth + 1 > MAX_DEPTH:
                raise ChartError("hostile", "sub-charts nested too deep")
            inner = _members(files[p], budget, depth + 1)
            sub = _chart_at(
                inner, _top(inner, rest[:-4]), repository, rest[:-4],
                version="", digest="", budget=budget, depth=depth + 1,
            )  # fmt: skip
            subs[sub.name] = sub
        else:
            d = rest.split("/", 1)[0]
            if d not in subs and f"{prefix}{d}/Chart.yaml" in files:
                subs[d] = _chart_at(
                    files, prefix + d, repository, d, version="", digest="", budget=budget, depth=depth + 1
                )
    return Chart(
        repository,
        str(meta.get("name") or name),
        str(meta.get("version") or version),
        None if app is None else str(app),
        digest,
        values,
        templates,
        subs,
        chart_yaml,
    )


def local_chart(files: Iterable[tuple[str, str]], repository: str, name: str) -> Chart:
    """A chart kept in the scanned repository (``file://`` dependency), from the files the
    finder read there (path inside the chart -> text): no network, no archive."""
    data = {f"{name}/{path}": text.encode("utf-8") for path, text in files}
    if f"{name}/Chart.yaml" not in data:
        raise ChartError("not-found", f"{repository}: no Chart.yaml there in the repository")
    return _chart_at(data, name, repository, name, version="", digest="", budget=[UNPACKED_CAP], depth=0)


def chart_name(path: str) -> str:
    """The last path segment of an OCI chart reference (``oci://r/org/charts/pg`` -> ``pg``)."""
    return posixpath.basename(path.rstrip("/"))
