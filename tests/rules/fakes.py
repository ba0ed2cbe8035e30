"""A registry in a dict, for rule tests: repositories with their tags and digests, and the
failures a real registry gives (missing repository, tag or digest; refused; unreachable)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from bot.model import Context, Evidence, ImageRef, Part, Resolution, Role, Source, Span, Status
from bot.reference import parse


def digest(seed: str) -> str:
    return "sha256:" + hashlib.sha256(seed.encode()).hexdigest()


class FakeLookup:
    """``repos`` maps a normalised name to {tag: digest}; a digest may be shared by tags."""

    def __init__(
        self,
        repos: Mapping[str, Mapping[str, str]],
        *,
        status: Mapping[str, Status] | None = None,  # name or domain -> forced status
    ) -> None:
        self.repos = {k: dict(v) for k, v in repos.items()}
        self.status = dict(status or {})
        self.calls: list[tuple[str, str]] = []

    def check(self, reference: str) -> Resolution:
        self.calls.append(("check", reference))
        r = parse(reference)
        forced = self.status.get(r.name) or self.status.get(r.domain)
        if forced is not None:
            return Resolution(reference, forced, Evidence(http_status=401, detail=f"{forced} (fake)"))
        tags = self.repos.get(r.name)
        if tags is None:
            return Resolution(
                reference, Status.REPO_MISSING, Evidence(http_status=404, error_code="NAME_UNKNOWN")
            )
        if r.digest is not None:
            if r.digest not in tags.values():
                return Resolution(reference, Status.DIGEST_MISSING, Evidence(http_status=404))
            return Resolution(
                reference, Status.OK, Evidence(http_status=200, digest=r.digest, checked_at="now")
            )
        tag = r.tag or "latest"
        if tag not in tags:
            return Resolution(
                reference, Status.TAG_MISSING, Evidence(http_status=404, error_code="MANIFEST_UNKNOWN")
            )
        return Resolution(reference, Status.OK, Evidence(http_status=200, digest=tags[tag], checked_at="now"))

    def tags(self, name: str) -> list[str]:
        self.calls.append(("tags", name))
        return list(self.repos.get(name, {}))

    def pinned_digest(self, reference: str) -> str | None:
        self.calls.append(("digest", reference))
        r = parse(reference)
        return self.repos.get(r.name, {}).get(r.tag or "latest")

    def resolve(self, text: str) -> Resolution:
        """What the scan would have recorded for ``text``."""
        return self.check(str(parse(text)))


def image_ref(
    text: str,
    *,
    source: Source = Source.KUBERNETES,
    needs_shell: bool | None = None,
    path: str = "deploy.yaml",
) -> ImageRef:
    """A one-part reference as a finder would report it (the value starts at byte 10)."""
    span = Span(10, 10 + len(text), 1, 11)
    return ImageRef(
        path=path,
        line=1,
        column=11,
        source=source,
        text=text,
        parts=(Part(Role.IMAGE, text, span),),
        reference=str(parse(text)),
        context=Context(needs_shell=needs_shell),
    )
