"""The pull-secret check: will the kubelet have credentials for a private image?

A private image whose tag exists still fails with ``401 Unauthorized`` behind
``ImagePullBackOff`` when its pod has no pull secret for the registry. This check combines what
the registry said (``auth-required``/``auth-failed``, or a host the operator configured
credentials for) with what the repository says about each pod (:mod:`bot.scan.pullsecrets`) and
adds findings of its own, through the one :class:`~bot.model.Finding` type (an image that resolves
with the operator's credentials counts as private only when an anonymous check is refused: the
credentials may be there for Docker Hub's rate limits, or come from a Docker login):

- ``pull-secret-missing``: no pull secret by any route (the pod's ``imagePullSecrets``, its
  ServiceAccount's when that is defined in the repository, or the ``default`` one; the Helm
  values' ``imagePullSecrets``/``global.imagePullSecrets``). A pod whose named ServiceAccount is
  not in the repository is not judged: that account may carry the secret;
- ``pull-secret-wrong-namespace``: a listed secret defined in the repository only in other
  namespaces (a pod can only use secrets of its own namespace);
- ``pull-secret-wrong-registry``: a listed secret whose registry hosts are known and do not
  include the image's registry;
- ``pull-secret-undefined``: a listed secret defined nowhere in the repository: a note only, it
  may be created outside git.

The last two kinds of trouble only count when no other listed secret covers the image. Public
images (no auth needed, no operator credentials for their host) never get these findings, and no
finding ever carries more of a Secret than its name, namespace and registry host names.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from bot.edit import EditError, insert
from bot.model import Edit, Finding, Fix, Status
from bot.reference import ReferenceError, parse
from bot.scan import pullsecrets as facts_of
from bot.scan.pullsecrets import Account, Facts, FileFacts, Pod, PullSecret, Scope, Values

MISSING = "pull-secret-missing"
WRONG_NAMESPACE = "pull-secret-wrong-namespace"
WRONG_REGISTRY = "pull-secret-wrong-registry"
UNDEFINED = "pull-secret-undefined"
RULES = (MISSING, WRONG_NAMESPACE, WRONG_REGISTRY, UNDEFINED)

NEEDS_AUTH = frozenset({Status.AUTH_REQUIRED, Status.AUTH_FAILED})
WHY = (
    "The image's registry needs credentials and its pod has none, so the kubelet's pull fails with "
    "401 Unauthorized behind ImagePullBackOff. The namespace already has a pull secret for that "
    "registry, defined in this repository; listing it in imagePullSecrets is all that is missing."
)


class Reader(Protocol):
    """Raw bytes of a repository file (a checkout, or GitHub's API), for the fixes."""

    def read_bytes(self, path: str) -> bytes | None: ...


@dataclass(frozen=True, slots=True)
class _Insert:
    """A mechanical fix: add ``{name: secret}`` to the list at ``keys`` of document ``document``."""

    path: str
    document: int
    keys: tuple[str, ...]
    secret: str
    pod: bool  # a pod spec (else Helm values)


Said = tuple[str, str, _Insert | None]  # (rule, advice, the fix when it is mechanical)


def check(
    findings: Sequence[Finding],
    facts: Facts | Iterable[FileFacts] | Callable[[], Iterable[FileFacts]],
    lookup: object | None,
    reader: Reader | None = None,
) -> list[Finding]:
    """The pull-secret findings for ``findings`` (evaluated, so their status is known), new
    Finding objects on the same references, in the order of ``findings``. ``facts`` may be a
    function that gathers them: it is called only when some image needs credentials. With a
    ``reader``, a mechanical fix gets its edit (:func:`_plan`); without, it is advice."""
    known: Facts | None = facts if isinstance(facts, Facts) else None
    planned: dict[_Insert, tuple[Edit, ...] | str] = {}
    out: list[Finding] = []
    candidates: list[tuple[Finding, str]] = []
    for f in findings:
        r = f.ref
        if f.rule in RULES or r.reference is None or r.artifact != "image" or not r.parts:
            continue
        if r.parts[0].path not in (None, r.path):
            continue
        try:
            domain = parse(r.reference).domain
        except ReferenceError:
            continue
        if f.status in NEEDS_AUTH or configured(lookup, domain):
            candidates.append((f, domain))
    # An image that resolves with the operator's credentials may still be public (credentials for
    # Docker Hub's rate limits, a Docker login): it is private only if anonymous pulls are refused.
    resolved = sorted({f.ref.reference or "" for f, _d in candidates if f.status not in NEEDS_AUTH})
    anonymous = _anonymous(lookup, resolved) if resolved else {}
    for f, domain in candidates:
        r = f.ref
        if f.status not in NEEDS_AUTH and anonymous.get(r.reference or "") is not Status.AUTH_REQUIRED:
            continue
        if known is None:
            gathered = facts() if callable(facts) else facts
            known = gathered if isinstance(gathered, Facts) else Facts(gathered)
        offset = r.parts[0].span.start
        pod = known.pod_of(r.path, offset)
        said: list[Said] = []
        if pod is not None:
            said = _pod(known, pod, domain)
        else:
            values = known.values_of(r.path, offset)
            if values is not None:
                said = _values(known, values[0], values[1], domain)
        out += [_finding(f, item, reader, planned) for item in said]
    return out


def _finding(
    f: Finding, said: Said, reader: Reader | None, planned: dict[_Insert, tuple[Edit, ...] | str]
) -> Finding:
    """A finding on ``f``'s reference; a mechanical fix gets its edit once per pod or values."""
    rule, text, wanted = said
    if wanted is None or reader is None:
        return Finding(f.ref, f.status, f.evidence, rule=rule, advice=text)
    first = wanted not in planned
    if first:
        planned[wanted] = _plan(reader, wanted)
    edits = planned[wanted]
    if isinstance(edits, str):
        return Finding(f.ref, f.status, f.evidence, rule=rule,
                       advice=f"{text} It could not be written automatically: {edits}")  # fmt: skip
    if not first:
        return Finding(f.ref, f.status, f.evidence, rule=rule,
                       advice=f"{text} The pull request adds it once, for all its images.")  # fmt: skip
    after = f"imagePullSecrets: [{{name: {wanted.secret}}}]"
    fix = Fix(rule, WHY, f.ref.text, after, edits=edits, advice=text)
    return Finding(f.ref, f.status, f.evidence, rule=rule, fix=fix)


def configured(lookup: object | None, domain: str) -> bool:
    """Whether the operator gave Pullable credentials for ``domain`` (``bot.registry.Registry``'s
    configuration; any other lookup has none): such an image is private even when it resolves."""
    host = getattr(getattr(lookup, "config", None), "host", None)
    if not callable(host):
        return False
    entry = host(domain)
    return getattr(entry, "credentials", None) is not None


def _anonymous(lookup: object | None, references: list[str]) -> dict[str, Status]:
    """How ``references`` answer without any credentials (one batch, the operator's endpoints
    and network settings kept); empty when ``lookup`` is not backed by a registry configuration."""
    from bot.registry import Registry, RegistryConfig

    config = getattr(lookup, "config", None)
    if not isinstance(config, RegistryConfig):
        return {}
    hosts = {h: dataclasses.replace(e, credentials=None) for h, e in config.registries.items()}
    bare = dataclasses.replace(config, registries=hosts, logins=())
    with Registry(bare) as registry:
        return {ref: res.status for ref, res in registry.check_many(references).items()}


def covers(hosts: Iterable[str], domain: str) -> bool:
    """Whether a docker config with ``hosts`` holds credentials for ``domain`` (the kubelet
    matches hosts exactly, or ``*.example.com`` one label deep)."""
    for h in hosts:
        if h == domain:
            return True
        if h.startswith("*.") and domain.endswith(h[1:]) and "." not in domain[: -len(h) + 1]:
            return True
    return False


# --- pods --------------------------------------------------------------------------------------


def _pod(facts: Facts, pod: Pod, domain: str) -> list[Said]:
    group = facts.patches_for(pod)
    listed = list(dict.fromkeys(n for p in group for n in p.secrets))
    account = next((p.service_account for p in group if p.service_account), None)
    what = f"{pod.kind or 'object'}/{pod.name or '?'}"
    said: dict[Said, None] = {}
    spaces = facts.namespaces(pod.path, pod.namespace)
    for ns in _ordered(spaces):
        routes = [(n, f"the pod spec of {what}") for n in listed]
        accounts = facts.account(account or "default", ns)
        for a in accounts:
            routes += [(n, f"ServiceAccount {a.name} ({a.path}:{a.line})") for n in a.secrets]
        if routes:
            for rule, text in _judge(facts, routes, ns, domain):
                said[(rule, text, None)] = None
            continue
        if account and not accounts:
            continue  # a ServiceAccount made outside the repository may carry the secret
        ready = _suitable(facts, ns, domain)
        wanted = None
        keys = (*pod.keys, "imagePullSecrets")
        if ready is not None and len(spaces) == 1 and all(isinstance(k, str) for k in keys):
            wanted = _Insert(pod.path, pod.doc, tuple(str(k) for k in keys), ready.name, pod=True)
        text = _missing_pod(facts, pod, what=what, account=account, accounts=accounts, ns=ns, domain=domain)
        said[(MISSING, text, wanted)] = None
    return list(said)


def _missing_pod(
    facts: Facts,
    pod: Pod,
    *,
    what: str,
    account: str | None,
    accounts: list[Account],
    ns: str | None,
    domain: str,
) -> str:
    via = (
        f"ServiceAccount {account}, defined in the repository, lists none either"
        if account
        else "neither does the default ServiceAccount"
        + (" defined in the repository" if accounts else " (unless it was given one outside git)")
    )
    head = (
        f"{what} pulls from {domain}, which needs credentials, but its pod spec lists no "
        f"imagePullSecrets; {via}."
    )
    ready = _suitable(facts, ns, domain)
    if ready is not None:
        return (
            f"{head} Namespace {ns} already has pull secret {ready.name} for {domain} "
            f"({ready.path}:{ready.line}): add `imagePullSecrets: [{{name: {ready.name}}}]` to "
            f"{pod.field} in {pod.path}:{pod.line}."
        )
    return (
        f"{head} {_create(ns, domain)}, and list it in imagePullSecrets of {what} or of its ServiceAccount."
    )


# --- Helm values -------------------------------------------------------------------------------


def _values(facts: Facts, values: Values, scopes: list[Scope], domain: str) -> list[Said]:
    names = tuple(dict.fromkeys(n for c in scopes for n in c.names))
    if values.namespace is not None:
        spaces: frozenset[str | None] = frozenset({values.namespace})
    elif values.owner is not None and values.owner.startswith("HelmRelease/"):
        spaces = facts.namespaces(values.path, values.object_namespace)
    else:
        spaces = frozenset({None})
    where = f"the Helm values of {values.owner}" if values.owner else f"the Helm values in {values.path}"
    said: dict[Said, None] = {}
    for ns in _ordered(spaces):
        if names:
            for rule, text in _judge(facts, [(n, where) for n in names], ns, domain):
                said[(rule, text, None)] = None
            continue
        head = f"{domain} needs credentials, but the imagePullSecrets for this image in {where} are empty."
        ready = _suitable(facts, ns, domain)
        wanted = None
        if ready is not None:
            outer = scopes[0]  # global or top level when written: it covers every image
            text = (
                f"{head} Namespace {ns} already has pull secret {ready.name} for {domain} "
                f"({ready.path}:{ready.line}): list it there (`imagePullSecrets: [{{name: {ready.name}}}]`)."
            )
            keys = (*values.keys, *outer.keys, "imagePullSecrets")
            if len(spaces) == 1 and not values.inline and all(isinstance(k, str) for k in keys):
                wanted = _Insert(values.path, values.doc, tuple(str(k) for k in keys), ready.name, pod=False)
        else:
            text = f"{head} {_create(ns, domain)}, and list it there."
        said[(MISSING, text, wanted)] = None
    return list(said)


# --- shared ------------------------------------------------------------------------------------


def _judge(facts: Facts, routes: list[tuple[str, str]], ns: str | None, domain: str) -> list[tuple[str, str]]:
    """Findings for the listed secrets ``routes`` ((name, where it is listed)) in namespace ``ns``."""
    notes: list[tuple[str, str]] = []
    problems: list[tuple[str, str]] = []
    covered = False
    for name, via in routes:
        defined = facts.named(name)
        if not defined:
            notes.append((
                UNDEFINED,
                f"Pull secret {name} (listed in {via}) is not defined in the repository; if it is created "
                f"outside git, make sure it exists in {_space(ns)} with credentials for {domain}.",
            ))  # fmt: skip
            continue
        here = [s for s in defined if _lands_in(facts, s, ns)]
        if not here:
            spaces = sorted({str(n) for s in defined for n in facts.secret_namespaces(s) if n is not None})
            where = ", ".join(f"{s.path}:{s.line}" for s in defined[:3])
            problems.append((
                WRONG_NAMESPACE,
                f"Pull secret {name} (listed in {via}) is defined in namespace {', '.join(spaces)} "
                f"({where}), "
                f"not in {ns}, and a pod can only use pull secrets of its own namespace: "
                f"create {name} in namespace {ns} too.",
            ))  # fmt: skip
            continue
        if any(s.hosts is None or covers(s.hosts, domain) for s in here):
            covered = True
            continue
        hosts = sorted({h for s in here for h in s.hosts or ()})
        where = ", ".join(f"{s.path}:{s.line}" for s in here[:3])
        problems.append((
            WRONG_REGISTRY,
            f"Pull secret {name} (listed in {via}, {where}) holds credentials for "
            f"{', '.join(hosts) or 'no registry'}, "
            f"not for {domain}: add {domain} to it, or list a secret that has it.",
        ))  # fmt: skip
    return notes + ([] if covered else problems)


def _lands_in(facts: Facts, secret: PullSecret, ns: str | None) -> bool:
    spaces = facts.secret_namespaces(secret)
    return ns is None or ns in spaces or None in spaces


def _suitable(facts: Facts, ns: str | None, domain: str) -> PullSecret | None:
    """A pull secret defined for namespace ``ns`` that serves ``domain``: one whose hosts include
    it, or the namespace's only pull secret when its hosts cannot be read."""
    if ns is None:
        return None
    here = facts.in_namespace(ns)
    exact = [s for s in here if s.hosts is not None and covers(s.hosts, domain)]
    if exact:
        return exact[0]
    unknown = [s for s in here if s.hosts is None]
    return unknown[0] if len(here) == 1 and unknown else None


def _space(ns: str | None) -> str:
    return f"namespace {ns}" if ns else "the namespace it is deployed to"


def _create(ns: str | None, domain: str) -> str:
    return f"Create a kubernetes.io/dockerconfigjson Secret with credentials for {domain} in {_space(ns)}"


def _ordered(spaces: frozenset[str | None]) -> list[str | None]:
    return sorted(spaces, key=lambda s: (s is None, s or ""))


# --- the mechanical fix ------------------------------------------------------------------------


def _plan(reader: Reader, wanted: _Insert) -> tuple[Edit, ...] | str:
    """The edit that lists ``wanted.secret`` (bot.edit.insert: new lines in the file's own
    style, nothing else touched), or why there is none. The result is read back: exactly that
    pod spec or values list must have gained exactly that name, and nothing else may change."""
    data = reader.read_bytes(wanted.path)
    if data is None:
        return f"{wanted.path} cannot be read"
    if data.startswith(b"\xef\xbb\xbf"):
        return f"{wanted.path} starts with a byte order mark"
    try:
        text = data.decode("utf-8")
        new = insert.append_item(text, list(wanted.keys), {"name": wanted.secret}, document=wanted.document)
        problem = _confirm(text, new, wanted)
    except (EditError, UnicodeDecodeError, facts_of.YamlRejected) as exc:
        return str(exc)
    if problem is not None:
        return problem
    made = insert.edit(wanted.path, data, new.encode("utf-8"))
    return (made,) if made is not None else f"{wanted.path} already lists {wanted.secret}"


def _confirm(old: str, new: str, wanted: _Insert) -> str | None:
    """None when ``new`` says what ``old`` says plus ``wanted``; otherwise what differs."""
    before, after = facts_of.read(old, wanted.path), facts_of.read(new, wanted.path)
    if wanted.pod:
        seen = [_pod_facts(p, wanted) for p in before.pods]
        got = [_pod_facts(p, None) for p in after.pods]
        there = any(
            (p.doc, (*p.keys, "imagePullSecrets")) == (wanted.document, wanted.keys) for p in before.pods
        )
    else:
        seen = [_values_facts(v, wanted) for v in before.values]
        got = [_values_facts(v, None) for v in after.values]
        there = any(
            (v.doc, (*v.keys, *c.keys, "imagePullSecrets")) == (wanted.document, wanted.keys)
            for v in before.values
            for c in v.scopes
        )
    if not there:
        return "the file no longer has that pod spec or values where they were read; edit it by hand"
    if seen != got:
        return "the file would say something else than meant after the edit; edit it by hand"
    return None


def _pod_facts(p: Pod, wanted: _Insert | None) -> tuple[object, ...]:
    secrets = p.secrets
    if wanted is not None and (p.doc, (*p.keys, "imagePullSecrets")) == (wanted.document, wanted.keys):
        secrets = (*secrets, wanted.secret)
    return (p.doc, p.keys, p.kind, p.name, p.namespace, p.service_account, secrets)


def _values_facts(v: Values, wanted: _Insert | None) -> tuple[object, ...]:
    scopes = []
    for c in v.scopes:
        names = c.names
        if wanted is not None and (v.doc, (*v.keys, *c.keys, "imagePullSecrets")) == (
            wanted.document,
            wanted.keys,
        ):
            names = (*names, wanted.secret)
        scopes.append((c.keys, names))
    return (v.doc, v.keys, v.owner, v.namespace, tuple(scopes))
