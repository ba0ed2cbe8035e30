"""Deciding what to do about one reference: the first enabled rule that matches and can be
satisfied wins, and every target it proposes is resolved on its registry first (security.md
§6.2). Names come only from the rule table's templates; registries contribute tags and digests,
both validated, never names.

This module sits below :mod:`bot.registry`: it states what it needs from a registry as the
:class:`Lookup` protocol, which ``bot.registry.Registry`` satisfies.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import re
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from bot import versions
from bot.model import ImageRef, Resolution, Source, Status
from bot.reference import Reference, ReferenceError, is_digest, parse
from bot.rules.table import Rule, RuleTable

__all__ = ["Decision", "Lookup", "Options", "evaluate"]

_MINOR = re.compile(r"^v?(\d+)\.(\d+)(?:[.\-+]|$)")


class Lookup(Protocol):
    """What the rules need from a registry client (``bot.registry.Registry`` has all three)."""

    def check(self, reference: str) -> Resolution: ...

    def tags(self, name: str) -> Sequence[str]:
        """Best a :class:`~bot.versions.TagList`, the same one for every reference of the
        repository: it is read as versions once."""
        ...

    def pinned_digest(self, reference: str) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Options:
    """The repository's say over the rules (built from ``.github/pullable.yml``)."""

    cluster_version: str | None = None  # "1.33"
    pin_digest: bool = False
    mirror: Mapping[str, str] = field(default_factory=dict)  # registry -> mirror prefix
    enable: frozenset[str] = frozenset()
    disable: frozenset[str] = frozenset()
    params: Mapping[str, Mapping[str, str | bool | float]] = field(default_factory=dict)
    min_release_age_s: float = 0.0  # a target younger than this is not proposed (S17)

    def enabled(self, rule: Rule) -> bool:
        if rule.id in self.disable:
            return False
        return not rule.opt_in or rule.id in self.enable


@dataclass(frozen=True, slots=True)
class Decision:
    """A rule's verdict: a verified ``target`` (as it should be written, digest included when
    one is to be written) or ``advice`` alone; ``advice`` may accompany a target (a stop-gap)."""

    rule: Rule
    target: Reference | None = None
    digest: str | None = None  # the target's verified digest, written or not
    checked_at: str | None = None
    advice: str | None = None
    unsure: bool = False  # no target because a registry could not be asked: an outage, no answer


# How to name the credentials a private image needs, per file kind.
_CREDENTIALS: dict[Source, str] = {
    Source.COMPOSE: "a `docker login {domain}` on the host that runs compose",
    Source.DOCKERFILE: "registry credentials for {domain} in the build environment (docker login)",
    Source.GITHUB_ACTIONS: "`credentials:` (username, password) for {domain} on the job's container",
    Source.GITLAB_CI: "a DOCKER_AUTH_CONFIG CI/CD variable with credentials for {domain}",
    Source.ANSIBLE: "a registry login for {domain} (community.docker.docker_login) before the pull",
    Source.JINJA: "a registry login for {domain} where the rendered file is used",
}
_K8S_CREDENTIALS = (
    "an imagePullSecrets entry naming a kubernetes.io/dockerconfigjson Secret for {domain} "
    "on the pod or its service account"
)


def evaluate(
    ref: ImageRef,
    resolution: Resolution | None,
    lookup: Lookup | None,
    table: RuleTable,
    options: Options | None = None,
) -> Decision | None:
    """The decision of the first enabled rule that matches ``ref`` and can be satisfied, or None.

    ``lookup`` None means offline: a matching replace rule then yields advice that the target
    could not be verified, never an unverified target.
    """
    opts = options or Options()
    if ref.reference is None or ref.artifact != "image":
        return None
    try:
        current = parse(ref.reference)
    except ReferenceError:
        return None
    status = resolution.status if resolution else Status.UNCHECKED
    for rule in table.rules:
        if not opts.enabled(rule):
            continue
        groups = _matches(rule, ref, current, status)
        if groups is None:
            continue
        params = {k: str(v).lower() if isinstance(v, bool) else str(v)
                  for k, v in {**rule.params, **opts.params.get(rule.id, {})}.items()}  # fmt: skip
        decision = _apply(_Attempt(rule, ref, current, resolution, lookup, opts, params), groups)
        if decision is not None:
            return decision
    return None


def _matches(rule: Rule, ref: ImageRef, current: Reference, status: Status) -> tuple[str, ...] | None:
    """The name regex's groups (``()`` without one) when the rule matches, else None."""
    m = rule.match
    if m.statuses and status not in m.statuses:
        return None
    if m.sources and ref.source not in m.sources:
        return None
    if m.needs_shell and ref.context.needs_shell not in m.needs_shell:
        return None
    if m.not_field and any(_glob(ref.context.field or "", g) for g in m.not_field):
        return None
    if m.digest is not None and (current.digest is not None) != m.digest:
        return None
    if m.tag is not None and not m.tag.fullmatch(current.tag or ""):
        return None
    if m.registries and not any(_glob(current.domain, g) for g in m.registries):
        return None
    hit = rule.matches_name(current.name)
    if hit is False:
        return None
    if isinstance(hit, re.Match):
        return (hit.group(0), *(g or "" for g in hit.groups()))
    return ()


def _glob(text: str, pattern: str) -> bool:
    return fnmatch.fnmatchcase(text, pattern)


@dataclass(slots=True)
class _Attempt:
    """One rule tried on one reference: everything its steps need, and the reasons it gave up."""

    rule: Rule
    ref: ImageRef
    current: Reference
    resolution: Resolution | None
    lookup: Lookup | None
    opts: Options
    params: dict[str, str]
    base: Reference | None = None  # the target's name, once the template is filled
    like: str | None = None
    reasons: list[str] = field(default_factory=list)
    listed: versions.TagList | None = None
    held: dict[str, str] = field(default_factory=dict)  # tag -> why (too young), passed over
    unheld: tuple[int, versions.TagList] | None = None  # (len(held), listed minus held)

    @property
    def status(self) -> Status:
        return self.resolution.status if self.resolution else Status.UNCHECKED

    def values(self, reason: str = "") -> dict[str, str]:
        """Placeholders for advice texts."""
        cur = self.current
        detail = ""
        if self.resolution is not None:
            ev = self.resolution.evidence
            detail = ev.detail or ev.error_code or (f"HTTP {ev.http_status}" if ev.http_status else "")
        creds = _CREDENTIALS.get(self.ref.source, _K8S_CREDENTIALS).format(domain=cur.domain)
        return {
            **self.params,
            "reference": str(cur),
            "name": cur.name,
            "domain": cur.domain,
            "path": cur.path,
            "repo": cur.path.rsplit("/", 1)[-1],
            "tag": cur.tag or "",
            "status": str(self.status),
            "detail": detail or "no detail",
            "credentials": creds,
            "reason": reason,
            "cluster_version": self.opts.cluster_version or "",
        }

    def advise(self, reason: str = "", text: str | None = None) -> str | None:
        text = self.rule.advise if text is None else text
        out = _fill(text, (), self.values(reason)) if text else ""
        if reason and "{reason}" not in (text or ""):
            out = f"{out} ({reason})" if out else reason
        return out or None

    def tags(self) -> versions.TagList:
        """The target repository's own tags, validated; listed once (no copy of a TagList)."""
        assert self.lookup is not None and self.base is not None
        if self.listed is None:
            try:
                got = self.lookup.tags(self.base.name)
                self.listed = got if isinstance(got, versions.TagList) else versions.TagList(got)
            except Exception as exc:  # noqa: BLE001 - a registry failure is advice, not a crash
                raise _Unverified(
                    str(exc) or f"could not list the tags of {self.base.name}: {type(exc).__name__}",
                    outage=True,
                ) from None
        if self.held:  # tags held back by the minimum release age are no candidates
            if self.unheld is None or self.unheld[0] != len(self.held):  # held only grows
                kept = versions.TagList(t for t in self.listed if t not in self.held)
                self.unheld = (len(self.held), kept)  # parsed once per tag held back
            return self.unheld[1]
        return self.listed

    def check(self, reference: str) -> Resolution:
        assert self.lookup is not None
        try:
            return self.lookup.check(reference)
        except Exception as exc:  # noqa: BLE001 - a registry failure is advice, not a crash
            raise _Unverified(
                f"{reference} could not be checked: {type(exc).__name__}", outage=True
            ) from None

    def reported_digest(self, reference: str) -> str | None:
        """The digest the registry reports for ``reference`` (its check: a HEAD, usually already
        made by classification, and free of Docker Hub's pull count), None when not ok. For
        comparing with ``latest``'s, which is the same kind of answer; a digest that gets written
        comes from :meth:`digest_of`."""
        try:
            res = self.check(reference)
        except _Unverified:
            return None
        return res.evidence.digest if res.status is Status.OK else None

    def digest_of(self, reference: str) -> str | None:
        assert self.lookup is not None
        try:
            return self.lookup.pinned_digest(reference)
        except Exception:  # noqa: BLE001 - treated as "no known digest"
            return None


class _Unsatisfied(Exception):
    """This rule cannot produce a target here; the reason goes into advice or is dropped."""


class _Unverified(Exception):
    """A target was chosen but its registry did not confirm it: advice, with the reason.
    ``outage``: the registry gave no answer (unreachable, refused, rate limited), which must not
    read as a "no": no other rule is tried and the decision says it is :attr:`Decision.unsure`."""

    def __init__(self, message: str, *, outage: bool = False) -> None:
        super().__init__(message)
        self.outage = outage


# What a target's check may say that is an answer about the target itself; any other status
# (auth, forbidden, rate limited, unreachable, blocked) means the registry could not be asked.
_ANSWERS = frozenset({Status.TAG_MISSING, Status.REPO_MISSING, Status.DIGEST_MISSING, Status.INVALID})


def _fill(template: str, groups: tuple[str, ...], values: Mapping[str, str]) -> str:
    return string.Formatter().vformat(template, groups, dict(values))


def _apply(a: _Attempt, groups: tuple[str, ...]) -> Decision | None:
    rule = a.rule
    if rule.replace is None:
        return Decision(rule, advice=a.advise())
    try:
        a.base = _target_name(a, groups)
    except _Unsatisfied:
        return None  # e.g. no mirror configured for this registry: the rule does not apply
    if a.lookup is None:
        # Offline: the rule matched on what is written (name, tag, registry), so say what it
        # would do; choosing and verifying a target needs the registry.
        if a.base.name != a.current.name:
            would = f"would move this to {a.base.name}"
        elif rule.replace.tags == ("keep",):
            would = "would change this"
        else:
            would = f"would pin this tag ({', '.join(rule.replace.tags)})"
        return Decision(rule, advice=f"{would}; not verified (offline), so nothing is proposed")
    try:
        target, digest, checked_at = _resolve_target(a)
    except _Unsatisfied as exc:
        if rule.advise is None:
            return None  # cannot be satisfied: the next rule may be
        return Decision(rule, advice=a.advise(str(exc)))
    except _Unverified as exc:
        if exc.outage:
            return Decision(rule, advice=a.advise(str(exc)), unsure=True)
        if rule.replace.if_unverified == "next":
            return None
        return Decision(rule, advice=a.advise(str(exc)))
    if str(target) == str(a.current):
        return None  # nothing would change
    note = a.advise(text=rule.note) if rule.note else None
    if a.held:
        passed = ", ".join(a.held)
        newer = f"newer {passed} held back: published less than {_span(a.opts.min_release_age_s)} ago"
        note = f"{note} ({newer})" if note else newer
    return Decision(rule, target=target, digest=digest, checked_at=checked_at, advice=note)


def _target_name(a: _Attempt, groups: tuple[str, ...]) -> Reference:
    assert a.rule.replace is not None
    template = a.rule.replace.name
    cur = a.current
    values = {**a.params, "domain": cur.domain, "path": cur.path, "name": cur.name,
              "repo": cur.path.rsplit("/", 1)[-1]}  # fmt: skip
    if "{mirror}" in template:
        mirror = a.opts.mirror.get(cur.domain)
        if not mirror:
            raise _Unsatisfied(f"no mirror configured for {cur.domain}")
        values["mirror"] = mirror.rstrip("/")
    name = _fill(template, groups, values)
    try:
        ref = parse(name)
    except ReferenceError as exc:
        raise _Unsatisfied(f"rule {a.rule.id} produced an invalid name {name!r}: {exc}") from None
    if ref.tag or ref.digest:
        raise _Unsatisfied(f"rule {a.rule.id} produced {name!r}, a reference rather than a name")
    return ref


# How many newer tags the minimum release age may pass over before the rule gives up: each costs
# a check and the image's creation time (two or three requests).
_HELD_MAX = 3


def _resolve_target(a: _Attempt) -> tuple[Reference, str, str | None]:
    """(target as it will be written, its verified digest, when it was checked). A target under
    the minimum release age is passed over for the next one the strategies choose without it,
    as Renovate's ``internalChecksFilter: strict`` does (``_HELD_MAX`` at most); when none is
    old enough, the newest one's hold is the advice."""
    while True:
        try:
            return _resolve_once(a)
        except _TooYoung as exc:
            if exc.tag is None or exc.tag in a.held or len(a.held) >= _HELD_MAX:
                raise _Unverified(next(iter(a.held.values()), str(exc))) from None
            a.held[exc.tag] = str(exc)
        except _Unsatisfied:
            if a.held:  # nothing older to fall back on: the newest one's hold is the answer
                raise _Unverified(next(iter(a.held.values()))) from None
            raise


def _resolve_once(a: _Attempt) -> tuple[Reference, str, str | None]:
    assert a.rule.replace is not None and a.base is not None
    rp, cur = a.rule.replace, a.current
    tag = _choose_tag(a)
    target = a.base.with_tag(tag)
    write_digest = rp.digest == "always" or a.opts.pin_digest or cur.digest is not None
    # Same tag and a digest written: keep that digest if the target serves those very bytes
    # (a registry move, a mirror), the least surprising edit.
    if cur.digest and tag == cur.tag:
        res = a.check(str(target.with_digest(cur.digest)))
        if res.status is Status.OK:
            return target.with_digest(cur.digest), cur.digest, res.evidence.checked_at
    if tag is None and cur.digest is not None:
        # Pinned by digest alone: the target must serve those very bytes; `latest` is no stand-in.
        raise _Unsatisfied(f"{target.name} does not serve {cur.digest}, and the reference names no tag")
    res = a.check(str(target))
    digest = res.evidence.digest
    if res.status is not Status.OK:
        why = res.evidence.detail or res.evidence.error_code or ""
        raise _Unverified(
            f"{target} could not be verified: {res.status}" + (f" ({why})" if why else ""),
            outage=res.status not in _ANSWERS,
        )
    if not digest or not is_digest(digest):
        raise _Unverified(f"{target} resolved but its registry gave no usable digest")
    _old_enough(a, target, tag)
    if write_digest:
        # A digest written into a file is the hash of the manifest bytes, never what a header
        # claims: a registry whose Docker-Content-Digest disagrees with its body gets no pin.
        digest = a.digest_of(str(target)) or ""
        if not is_digest(digest):
            raise _Unverified(
                f"{target} resolved but its manifest bytes do not match the digest its registry gave"
            )
        return target.with_digest(digest), digest, res.evidence.checked_at
    return target, digest, res.evidence.checked_at


class _TooYoung(Exception):
    """The chosen target is under the minimum release age (``tag``: what to pass over)."""

    def __init__(self, message: str, tag: str | None) -> None:
        super().__init__(message)
        self.tag = tag


def _old_enough(a: _Attempt, target: Reference, tag: str | None) -> None:
    """Hold back a target created less than ``min_release_age_s`` ago (a tag pushed minutes ago
    may be a mistake or an attack, and is often retracted). The creation time is the image
    config's ``created``, asked only for the chosen target; a lookup that cannot tell (no
    ``created`` method, no such field) holds nothing back."""
    minimum = a.opts.min_release_age_s
    created = getattr(a.lookup, "created", None)
    if minimum <= 0 or created is None:
        return
    try:
        when = created(str(target))
    except Exception:  # noqa: BLE001 - an unknown age is no reason to hold a fix back
        return
    if when is None:
        return
    age = (dt.datetime.now(dt.UTC) - when).total_seconds()
    if age < minimum:
        raise _TooYoung(
            f"{target} was published {_span(max(age, 0))} ago, under the minimum release age of "
            f"{_span(minimum)} (minimum_release_age); it will be proposed once it is older",
            tag,
        )


def _span(seconds: float) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return "moments"


def _choose_tag(a: _Attempt) -> str | None:
    """The first strategy in ``replace.tag`` that yields a tag, from the target's own tag list."""
    assert a.rule.replace is not None and a.base is not None
    rp, cur = a.rule.replace, a.current
    if rp.tags == ("keep",):
        return cur.tag  # None for a digest-only reference: _resolve_target carries the digest
    a.like = cur.tag if rp.variant == "keep" and cur.tag and cur.tag != "latest" else None
    for strategy in rp.tags:
        tag = _STRATEGIES[strategy](a)
        if tag is not None:
            return tag
    raise _Unsatisfied("; ".join(a.reasons) or f"no suitable tag of {a.base.name}")


def _keep(a: _Attempt) -> str | None:
    return a.current.tag


def _cluster_minor(a: _Attempt) -> str | None:
    assert a.base is not None
    line = a.opts.cluster_version
    if not line:
        m = _MINOR.match(a.current.tag or "")
        if m is None:
            shown = a.current.tag or "(none)"
            a.reasons.append(f"no cluster.version is set and the tag {shown!r} names no minor")
            return None
        line = f"{m.group(1)}.{m.group(2)}"
    tag = versions.cluster_minor(a.tags(), line, like=a.like)
    if tag is None and a.like is None:  # the target may spell its versions with a v (v1.33.4)
        tag = versions.cluster_minor(a.tags(), f"v{line}")
    if tag is None:
        a.reasons.append(f"{a.base.name} has no {line}.x tag")
    return tag


def _newest_patch(a: _Attempt) -> str | None:
    """A newer patch of the written line; for a tag that is gone, the newest one still listed."""
    assert a.base is not None
    cur = a.current.tag
    if not cur:
        a.reasons.append("no tag written")
        return None
    listed = a.tags()
    tag = versions.newest_patch(listed, cur) if cur in listed else versions.nearest(listed, cur)
    if tag is None or tag == cur:
        a.reasons.append(f"{a.base.name} has no other patch of {cur}'s minor and variant")
        return None
    return tag


def _newest_in_line(a: _Attempt) -> str | None:
    assert a.base is not None
    if not a.current.tag:
        a.reasons.append("no tag written")
        return None
    line = a.current.tag.split("-", 1)[0]
    tag = versions.newest_in_line(a.tags(), line, like=a.like)
    if tag is None:
        a.reasons.append(f"{a.base.name} has no release in the {line} line")
    return tag


def _newest_stable(a: _Attempt) -> str | None:
    assert a.base is not None
    tag = versions.newest_stable(a.tags(), like=a.like)
    if tag is None:
        a.reasons.append(f"{a.base.name} has no stable versioned tag")
    return tag


def _latest_equivalent(a: _Attempt) -> str | None:
    assert a.base is not None
    name, cur = a.base.name, a.current
    latest = None
    if a.resolution is not None and name == cur.name and (cur.tag or "latest") == "latest":
        latest = a.resolution.evidence.digest
    latest = latest or a.digest_of(f"{name}:latest")
    if latest is None:
        a.reasons.append(f"{name}:latest has no known digest")
        return None
    tag = versions.latest_equivalent(a.tags(), lambda t: a.reported_digest(f"{name}:{t}"), latest)
    if tag is None:
        a.reasons.append(f"no versioned tag of {name} has latest's digest")
    return tag


_STRATEGIES: dict[str, Callable[[_Attempt], str | None]] = {
    "keep": _keep,
    "cluster-minor": _cluster_minor,
    "newest-patch": _newest_patch,
    "newest-in-line": _newest_in_line,
    "newest-stable": _newest_stable,
    "latest-equivalent": _latest_equivalent,
}
