"""Jinja templates (``*.j2``, ``*.jinja2``, ``*.jinja``): Ansible roles render compose files,
manifests and Dockerfiles from them, and no other tool reads the images they hold.

A template is not YAML (nor a Dockerfile) until rendered, so it is read line by line with the Helm
template reader (:func:`bot.scan.helm_template.image_lines`): a literal ``image:`` value is a
reference with its exact span; a templated one is skipped with the expression as the reason.
``FROM`` lines count only in Dockerfile templates (``Dockerfile.j2``, or a first instruction
``FROM``/``ARG``): elsewhere ``FROM`` starts SQL and Python lines.

Jinja comments (``{# ... #}``) are blanked first, so a commented-out ``image:`` line is not
reported and ``image: nginx:1.27 {# pinned #}`` reads ``nginx:1.27``. In a role's or playbook's
``templates/`` folder, variables are resolved as in tasks (:mod:`bot.scan.ansible_vars`), unless
the template assigns the name itself (``{% set %}``, ``{% for %}``, macros).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator

from bot.model import ImageRef, Part, Skip, Source
from bot.scan import Repo
from bot.scan.ansible_vars import Resolver, role_dir
from bot.scan.helm_template import image_lines
from bot.scan.text import Locator

SOURCE = Source.JINJA

_SUFFIXES = (".j2", ".jinja2", ".jinja")
_COMMENT = re.compile(r"\{#.*?#\}", re.S)
_DOCKERFILE_NAME = re.compile(r"(?:^|[._-])(?:docker|container)file(?:$|[._-])", re.I)
_INSTRUCTION = re.compile(r"(?:FROM|ARG)[ \t]")
_ASSIGNED = re.compile(r"\{%-?\s*(?:set|for|macro|call|with)\b([^%]*)%\}")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def claims(path: str, head: bytes) -> bool:
    """By suffix only: ``templates/deploy.yaml.j2`` is Jinja, whatever it renders to."""
    return path.lower().endswith(_SUFFIXES)


def find(text: str, path: str, repo: Repo) -> Iterator[ImageRef]:
    """Literal references on ``image:`` (and, in Dockerfile templates, ``FROM``) lines."""
    blank = _COMMENT.sub(_blank, text) if "{#" in text else text
    base = path.rpartition("/")[2]
    stem = base[: base.lower().rfind(".j")]
    dockerfile = bool(_DOCKERFILE_NAME.search(stem)) or stem.lower().endswith(".dockerfile")
    dockerfile = dockerfile or _starts_like_a_dockerfile(blank)
    refs = list(image_lines(blank, path, SOURCE, from_lines=dockerfile))
    if blank is not text:
        refs = _respan(refs, text, blank)
    resolver: Resolver | None = None
    role = role_dir(path, ("templates",))
    assigned = _assigned(text)
    for ref in refs:
        if role is None or ref.skip is not Skip.TEMPLATED or "{{" not in ref.text:
            yield ref
            continue
        if any(w in assigned for w in _WORD.findall(ref.text)):
            detail = f"{ref.detail}: its variables are assigned inside the template"
            yield dataclasses.replace(ref, detail=detail)
            continue
        if resolver is None:
            resolver = Resolver(path, text, repo, role=role)
        yield resolver.resolve(ref)


def _starts_like_a_dockerfile(text: str) -> bool:
    """First line that is not blank, a comment or a ``{% %}`` statement is ``FROM``/``ARG``
    (a loop over lines, not a regex: nested optional whitespace backtracks exponentially)."""
    for line in text[:8192].splitlines()[:100]:
        s = line.strip()
        if not s or s.startswith("#") or (s.startswith("{%") and s.endswith("%}")):
            continue
        return _INSTRUCTION.match(s) is not None
    return False


def _blank(m: re.Match[str]) -> str:
    """A comment as spaces, line breaks kept, so lines and columns do not move."""
    return re.sub(r"[^\n]", " ", m.group())


def _assigned(text: str) -> set[str]:
    """Names a template binds itself (loop variables, ``set``, macro arguments)."""
    out: set[str] = set()
    for m in _ASSIGNED.finditer(text):
        head = m.group(1).split(" in ")[0].split("=")[0]
        out.update(_WORD.findall(head))
    return out


def _respan(refs: list[ImageRef], text: str, blank: str) -> list[ImageRef]:
    """Byte spans on the original text: blanking a comment keeps characters, not bytes (a
    comment in another script shifts every byte after it on its line)."""
    if text.isascii():
        return refs
    loc, flat = Locator(text), blank.encode("utf-8", "surrogatepass")
    starts = [0, *(m.end() for m in re.finditer("\n", text))]

    def move(p: Part) -> Part:
        s = starts[p.span.line - 1] + p.span.column - 1
        n = len(flat[p.span.start : p.span.end].decode("utf-8", "surrogatepass"))
        return dataclasses.replace(
            p, span=loc.span(s, s + n), raw=p.raw and text[s : s + n] == blank[s : s + n]
        )

    return [dataclasses.replace(r, parts=tuple(move(p) for p in r.parts)) for r in refs]
