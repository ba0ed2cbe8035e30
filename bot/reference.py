"""Image references, parsed and normalised exactly as Docker does.

A port of ``github.com/distribution/reference`` (``ParseNormalizedNamed``, ``FamiliarString``,
``ParseDockerRef``) and of the go-digest checks it calls, so that what we report and write back is
what ``docker pull`` would do with the same text. Error texts are Docker's own, because users will
search for them. Only sha256 digests are accepted, as in upstream's registered algorithms.

Everything here runs once per reference found, so the grammar is compiled once into a few regexes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

__all__ = [
    "Reference",
    "ReferenceError",
    "is_digest",
    "is_name",
    "is_tag",
    "name_of",
    "parse",
    "qualified",
]

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_PREFIX = "library/"
NAME_MAX = 255  # RepositoryNameTotalLengthMax: the path only, since distribution/reference v0.6.0

# The grammar of distribution/reference's regexp.go. re.ASCII because Go's \w and \d are ASCII;
# fullmatch() because Python's $ would accept a trailing newline.
_ALNUM = r"[a-z0-9]+"
_SEP = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEP}{_ALNUM})*"
_REMOTE = rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_DOMAIN = rf"(?:{_DOMAIN_NAME}|{_IPV6})(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}"

# One pass gives all four parts: the domain group is tried first, as in Go's anchoredNameRegexp.
_REFERENCE_RE = re.compile(rf"(?:({_DOMAIN})/)?({_REMOTE})(?::({_TAG}))?(?:@({_DIGEST}))?", re.ASCII)
_TAG_RE = re.compile(_TAG, re.ASCII)
_IDENTIFIER_RE = re.compile(r"[a-f0-9]{64}", re.ASCII)
_SHA256_RE = re.compile(r"sha256:[a-f0-9]{64}", re.ASCII)
# go-digest's DigestRegexp: decides "invalid format" vs "unsupported algorithm".
_GO_DIGEST_RE = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+", re.ASCII)
_ALGORITHMS = {"sha256": 64}

# qualified(): the registry must look like a real host, so "1.2/x:y" or "conf.d/app:1" do not fire.
_QUALIFIED_HOST_RE = re.compile(
    r"(?:localhost|(?:[0-9]{1,3}\.){3}[0-9]{1,3}|(?:[a-z0-9-]+\.)+[a-z][a-z0-9-]*[a-z0-9])(?::[0-9]{1,5})?",
    re.ASCII | re.IGNORECASE,
)

ERR_FORMAT = "invalid reference format"
ERR_UPPERCASE = "repository name must be lowercase"
ERR_TOO_LONG = f"repository name must not be more than {NAME_MAX} characters"
ERR_DIGEST_FORMAT = "invalid checksum digest format"
ERR_DIGEST_LENGTH = "invalid checksum digest length"
ERR_DIGEST_UNSUPPORTED = "unsupported digest algorithm"


class ReferenceError(ValueError):
    """A string Docker would refuse; ``str(exc)`` is Docker's own message."""


@dataclass(frozen=True, slots=True)
class Reference:
    """A normalised reference: ``domain`` is never empty and docker.io paths carry ``library/``."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """The repository name registries and caches key on."""
        return f"{self.domain}/{self.path}"

    def __str__(self) -> str:
        return self.name + _suffix(self.tag, self.digest)

    def familiar_name(self) -> str:
        """The name as people write it, so messages and edits look like the user's own text.

        Unlike Docker's ``FamiliarString``, ``docker.io/`` stays when dropping it would make the
        first path component read as a registry (``docker.io/foo.bar/x``): we write this form back
        into files, so it must parse to the same reference.
        """
        if self.domain != DEFAULT_DOMAIN:
            return self.name
        rest = self.path.removeprefix(OFFICIAL_PREFIX)
        if "/" not in rest:
            return rest
        first = self.path.partition("/")[0]
        if "." in first or ":" in first or first == "localhost":
            return self.name
        return self.path

    def familiar(self) -> str:
        """Docker's ``FamiliarString``: the short form, tag and digest kept."""
        return self.familiar_name() + _suffix(self.tag, self.digest)

    def docker_ref(self) -> str:
        """What ``docker pull`` fetches (``ParseDockerRef``): the digest wins, else ``:latest``."""
        if self.digest:
            return f"{self.name}@{self.digest}"
        return f"{self.name}:{self.tag or 'latest'}"

    def with_tag(self, tag: str | None) -> Reference:
        """A copy with another tag (None drops it); refuses tags Docker would refuse."""
        if tag is not None and not is_tag(tag):
            raise ReferenceError(ERR_FORMAT)
        return replace(self, tag=tag)

    def with_digest(self, digest: str | None) -> Reference:
        """A copy with another digest (None drops it); refuses digests Docker would refuse."""
        if digest is not None:
            _check_digest(digest)
        return replace(self, digest=digest)


def _suffix(tag: str | None, digest: str | None) -> str:
    return (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")


def _check_digest(digest: str) -> None:
    """go-digest's ``Digest.Validate``, with sha256 the only registered algorithm."""
    if _SHA256_RE.fullmatch(digest):
        return
    algorithm, sep, encoded = digest.partition(":")
    if not algorithm or not sep or not encoded:
        raise ReferenceError(ERR_DIGEST_FORMAT)
    size = _ALGORITHMS.get(algorithm)
    if size is None:
        if _GO_DIGEST_RE.fullmatch(digest) is None:
            raise ReferenceError(ERR_DIGEST_FORMAT)
        raise ReferenceError(ERR_DIGEST_UNSUPPORTED)
    if len(encoded) != size:
        raise ReferenceError(ERR_DIGEST_LENGTH)
    raise ReferenceError(ERR_DIGEST_FORMAT)  # right length, not lowercase hex


def _split_docker_domain(text: str) -> tuple[str, str]:
    """``splitDockerDomain``: only a first component with '.', ':', uppercase or ``localhost``
    is a registry; anything else is a Docker Hub namespace."""
    first, slash, rest = text.partition("/")
    if not slash or (
        "." not in first and ":" not in first and first != "localhost" and first.lower() == first
    ):
        domain, remainder = DEFAULT_DOMAIN, text
    else:
        domain, remainder = first, rest
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = OFFICIAL_PREFIX + remainder
    return domain, remainder


def parse(text: str) -> Reference:
    """Docker's ``ParseNormalizedNamed``; raises :class:`ReferenceError` with Docker's message."""
    if _IDENTIFIER_RE.fullmatch(text):
        raise ReferenceError(f"invalid repository name ({text}), cannot specify 64-byte hexadecimal strings")
    domain, remainder = _split_docker_domain(text)
    remote = remainder.partition(":")[0]
    if remote.lower() != remote:
        raise ReferenceError(f"{ERR_FORMAT}: repository name ({remote}) must be lowercase")
    full = f"{domain}/{remainder}"
    m = _REFERENCE_RE.fullmatch(full)
    if m is None:
        if _REFERENCE_RE.fullmatch(full.lower()):
            raise ReferenceError(ERR_UPPERCASE)
        raise ReferenceError(ERR_FORMAT)
    domain, path, tag, digest = m.groups()
    if domain is None:
        # Docker's domain split and its grammar disagree on "a_b.c/x": upstream returns a name with
        # an empty domain, which no registry serves. We refuse it rather than invent a host.
        raise ReferenceError(ERR_FORMAT)
    if len(path) > NAME_MAX:
        raise ReferenceError(ERR_TOO_LONG)
    if digest is not None:
        _check_digest(digest)
    return Reference(domain, path, tag, digest)


def is_tag(text: str) -> bool:
    """A tag Docker accepts; what we require of every tag a registry lists before using it."""
    return _TAG_RE.fullmatch(text) is not None


def is_digest(text: str) -> bool:
    """A canonical sha256 digest: the only form we accept from registries or write into files."""
    return _SHA256_RE.fullmatch(text) is not None


def name_of(text: str | None) -> str | None:
    """The normalised repository name of a reference (``nginx:1.27`` -> ``docker.io/library/nginx``),
    the name ignores and PR change sets are keyed on; None for text that is not a reference."""
    if not text:
        return None
    try:
        return parse(text).name
    except ReferenceError:
        return None


def is_name(text: str) -> bool:
    """A repository name already in normalised form (``docker.io/library/nginx``)."""
    try:
        ref = parse(text)
    except ReferenceError:
        return False
    return ref.tag is None and ref.digest is None and ref.name == text


def qualified(text: str) -> Reference | None:
    """A reference embedded in free text (container args, env values), or None.

    Strict on purpose, because a false positive becomes a wrong edit: the text must name its
    registry explicitly (a host with a dot and a letter top-level label, an IPv4 address, or
    localhost, optionally with a port) and carry a tag or a digest. URLs, paths, emails,
    ``key=value`` pairs and version strings do not qualify; nor does a tag ending in '.' or '-',
    which is what sentence punctuation after a reference looks like.
    """
    first, slash, _ = text.partition("/")
    if not slash or _QUALIFIED_HOST_RE.fullmatch(first) is None:
        return None
    try:
        ref = parse(text)
    except ReferenceError:
        return None
    if ref.tag is None and ref.digest is None:
        return None
    if ref.tag is not None and ref.tag[-1] in ".-":
        return None
    return ref
