"""Shell command lines that pull images: ``docker``/``podman``/``nerdctl`` ``run|create|pull``,
``crane`` (``copy``'s source, ``digest``, ``manifest``, ``pull``, ``export``, ``config``) and
``skopeo`` (``copy``'s and ``inspect``'s ``docker://`` source).

The finder reads shell scripts (``*.sh``, ``*.bash``, a ``sh``/``bash`` shebang) and Makefiles
(``Makefile``, ``*.mk``: recipe lines, ``$(VAR)`` being make's). :func:`commands` is the reader
itself, reused for GitHub Actions ``run:`` steps and GitLab ``script:`` lines, with positions
mapped back into the YAML file (:func:`in_scalar`).

Only literal references are reported as references; a word holding a variable (``$IMAGE``,
``${TAG}``, ``$(IMAGE)``) is reported as ``Skip.VARIABLE`` with the word, an expression
(``${{ matrix.image }}``) as ``Skip.TEMPLATED``. Words are tokenised as the shell does (quotes,
backslash-newline continuations, ``;``/``&&``/``|`` separators, ``#`` comments); options that
take a value are skipped with their value, so the image is the first operand.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from yaml.nodes import ScalarNode

from bot.model import Context, ImageRef, Part, Role, Skip, Source
from bot.scan.common import make_ref
from bot.scan.text import Locator
from bot.scan.yamlsrc import Doc

SOURCE = Source.SHELL

_TOOLS = ("docker", "podman", "nerdctl", "crane", "skopeo")
_SUFFIXES = (".sh", ".bash", ".zsh", ".ksh", ".mk")
_MAKEFILES = frozenset({"Makefile", "makefile", "GNUmakefile"})
_SHEBANG = re.compile(rb"^#![ \t]*\S*?(?:/|env[ \t]+)(?:ba|z|k|da|a)?sh\b")
_ASSIGN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_WRAPPERS = frozenset({"sudo", "exec", "time", "command", "nohup", "env"})

# Options taking a value (docker/podman/nerdctl run, create and pull; global options).
_DOCKER_VALUED = frozenset(
    {
        "-a", "--attach", "--add-host", "--annotation", "--blkio-weight", "--blkio-weight-device", "-c",
        "--cpu-shares", "--cap-add", "--cap-drop", "--cgroup-parent", "--cgroupns", "--cidfile",
        "--cpu-period", "--cpu-quota", "--cpu-rt-period", "--cpu-rt-runtime", "--cpus", "--cpuset-cpus",
        "--cpuset-mems", "--device", "--device-cgroup-rule", "--device-read-bps", "--device-read-iops",
        "--device-write-bps", "--device-write-iops", "--dns", "--dns-option", "--dns-search",
        "--domainname", "--entrypoint", "-e", "--env", "--env-file", "--expose", "--gpus", "--group-add",
        "--health-cmd", "--health-interval", "--health-retries", "--health-start-period",
        "--health-timeout", "-h", "--hostname", "--ip", "--ip6", "--ipc", "--isolation", "--kernel-memory",
        "-l", "--label", "--label-file", "--link", "--link-local-ip", "--log-driver", "--log-opt",
        "--mac-address", "-m", "--memory", "--memory-reservation", "--memory-swap", "--memory-swappiness",
        "--mount", "--name", "--network", "--net", "--network-alias", "--oom-score-adj", "--pid",
        "--pids-limit", "--platform", "-p", "--publish", "--pull", "--restart", "--runtime",
        "--security-opt", "--shm-size", "--stop-signal", "--stop-timeout", "--storage-opt", "--sysctl",
        "--tmpfs", "-u", "--user", "--ulimit", "--userns", "--uts", "-v", "--volume", "--volume-driver",
        "--volumes-from", "-w", "--workdir", "--arch", "--os", "--variant", "--authfile", "--creds",
        "--cert-dir", "--retry", "--retry-delay", "--decryption-key", "--secret", "--pod", "--namespace",
        "-n", "--snapshotter", "--config", "--context", "-H", "--host", "--log-level", "--tlscacert",
        "--tlscert", "--tlskey", "--cosign-key",
    }
)  # fmt: skip
_DOCKER_BOOL_SHORT = frozenset("dtiPq")  # -d -t -i -P -q, combinable (-it, -dit); -a is pull's --all-tags
_CRANE_VALUED = frozenset({"--platform", "--format", "-o", "--output", "--jobs", "-j"})
_CRANE_SUBS = frozenset({"copy", "cp", "digest", "manifest", "pull", "export", "config", "validate"})
_SKOPEO_VALUED = frozenset(
    {
        "--authfile", "--creds", "--src-creds", "--dest-creds", "--src-cert-dir", "--dest-cert-dir",
        "--override-arch", "--override-os", "--override-variant", "-f", "--format", "--retry-times",
        "--registries-conf", "--src-authfile", "--dest-authfile", "--src-registry-token",
        "--dest-registry-token", "--multi-arch", "--cert-dir", "--command-timeout", "--policy", "--tmpdir",
    }
)  # fmt: skip
_DOCKER_PREFIX = "docker://"


def mentions(text: str) -> bool:
    """Whether ``text`` names any tool this module reads (a linear pre-filter)."""
    return any(t in text for t in _TOOLS)


def claims(path: str, head: bytes) -> bool:
    """Shell scripts (by suffix or ``sh``/``bash`` shebang) and Makefiles that name a tool in
    their head (or are longer than it). With no head at all (the App deciding what to fetch from
    the tree listing), the name decides."""
    base = posixpath.basename(path)
    if not (base in _MAKEFILES or base.endswith(_SUFFIXES) or _SHEBANG.match(head)):
        return False
    return not head or any(t.encode() in head for t in _TOOLS) or len(head) >= 4096


def find(text: str, path: str, repo: object = None) -> Iterator[ImageRef]:
    """The references on the command lines of a script or Makefile, in file order."""
    base = posixpath.basename(path)
    make = base in _MAKEFILES or base.endswith(".mk")
    return iter(commands(text, path, SOURCE, Placement(Locator(text)), make=make))


# --- positions --------------------------------------------------------------------------------


@dataclass(slots=True)
class Placement:
    """Where the characters of a command text sit in the file: ``at(i)`` is the file offset of
    character ``i``, or None when the text is not the file's bytes one to one (a folded or
    escaped YAML scalar); ``within`` bounds the search for an inexact word's position."""

    loc: Locator
    at: Callable[[int], int] | None = lambda i: i
    within: tuple[int, int] = (0, -1)

    def part(self, text: str, start: int, end: int, quote: str, raw: bool) -> Part:
        loc = self.loc
        if self.at is not None:
            s, e = self.at(start), self.at(end - 1) + 1 if end > start else self.at(start)
            return Part(Role.IMAGE, text, loc.span(s, e), quote, raw and loc.text[s:e] == text)
        lo, hi = self.within
        i = loc.text.find(text, lo, hi if hi >= 0 else len(loc.text))
        s = i if i >= 0 else lo
        return Part(Role.IMAGE, text, loc.span(s, s + (len(text) if i >= 0 else 0)), quote, False)


def in_scalar(doc: Doc, node: ScalarNode) -> Placement:
    """The :class:`Placement` for a YAML scalar's value: exact for a plain or quoted one-line value
    whose bytes are the value and for a literal ``|`` block; else located by search, not raw."""
    s, e = doc.bounds(node)
    text = doc.loc.text
    if node.style in ("'", '"'):
        s, e = s + 1, e - 1
    if node.style in (None, "", "'", '"') and text[s:e] == node.value:
        return Placement(doc.loc, lambda i, s=s: s + i)  # type: ignore[misc]
    if node.style == "|":
        layout = _block(text, s, node.value)
        if layout is not None:
            starts, indent, offsets = layout

            def at(i: int) -> int:
                import bisect

                line = bisect.bisect_right(offsets, i) - 1
                return starts[line] + indent + (i - offsets[line])

            return Placement(doc.loc, at)
    return Placement(doc.loc, None, (s, e))


def _block(text: str, start: int, value: str) -> tuple[list[int], int, list[int]] | None:
    """File offsets of a literal block's content lines, their indentation, and each line's
    offset in the value; None unless every line is the file's bytes."""
    head_end = text.find("\n", start)
    if head_end < 0:
        return None
    lines = value.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    first = next((ln for ln in lines if ln.strip()), None)
    if first is None:
        return None
    pos = head_end + 1
    starts, offsets, off = [], [], 0
    indent = -1
    for ln in lines:
        nl = text.find("\n", pos)
        row = text[pos : len(text) if nl < 0 else nl].rstrip("\r")
        if ln and indent < 0:
            indent = len(row) - len(ln)
            if indent < 0 or row[indent:] != ln:
                return None
        if ln and row[indent:] != ln:
            return None
        starts.append(pos)
        offsets.append(off)
        off += len(ln) + 1
        pos = len(text) if nl < 0 else nl + 1
    return starts, max(indent, 0), offsets


# --- words ------------------------------------------------------------------------------------


@dataclass(slots=True)
class Word:
    value: str  # as the shell reads it (quotes removed)
    start: int  # in the command text, inside the quotes of a singly quoted word
    end: int
    quote: str  # the quote around the whole word, if it is one quoted string
    raw: bool  # the text between start and end is the value


_SEPARATORS = ";&|\n()`"


def words(text: str, *, make: bool = False) -> Iterator[list[Word]]:
    """Simple commands as lists of words (a linear scan, as the shell tokenises)."""
    i, n = 0, len(text)
    cmd: list[Word] = []
    while i < n:
        c = text[i]
        if c == "\\" and text.startswith("\n", i + 1):
            i += 2
            continue
        if c in " \t\r":
            i += 1
            continue
        if c in _SEPARATORS:
            if cmd:
                yield cmd
                cmd = []
            i += 1
            continue
        if c == "#":
            nl = text.find("\n", i)
            i = n if nl < 0 else nl
            continue
        w, i = _word(text, i, make)
        cmd.append(w)
    if cmd:
        yield cmd


def _word(text: str, i: int, make: bool) -> tuple[Word, int]:
    start, n = i, len(text)
    value: list[str] = []
    quoted: list[str] = []
    while i < n:
        c = text[i]
        if c in " \t\r" or c in _SEPARATORS:
            break
        if c == "\\" and i + 1 < n:
            if text[i + 1] == "\n":
                i += 2
                continue
            value.append(text[i + 1])
            quoted.append("\\")
            i += 2
        elif c in "'\"":
            close = text.find(c, i + 1)
            while c == '"' and close > 0 and text[close - 1] == "\\":
                close = text.find(c, close + 1)
            if close < 0:
                close = n
            value.append(text[i + 1 : close])
            quoted.append(c)
            i = close + 1
        elif c == "$" and i + 1 < n and text[i + 1] in "({":
            close = _balanced(text, i + 1)
            value.append(text[i:close])
            i = close
        else:
            value.append(c)
            i += 1
    word = "".join(value)
    end = i
    quote = ""
    raw = text[start:end] == word
    whole = len(quoted) == 1 and end - start >= 2 and text[start] == text[end - 1] == quoted[0]
    if not raw and whole and quoted[0] in "'\"":
        quote, start, end = quoted[0], start + 1, end - 1
        raw = text[start:end] == word
    return Word(word, start, end, quote, raw), i


def _balanced(text: str, i: int) -> int:
    """Index past the bracket closing ``text[i]`` (``(`` or ``{``), or the line's end."""
    opening = text[i]
    closing = ")" if opening == "(" else "}"
    depth = 0
    for j in range(i, len(text)):
        if text[j] == opening:
            depth += 1
        elif text[j] == closing:
            depth -= 1
            if depth == 0:
                return j + 1
        elif text[j] == "\n":
            return j
    return len(text)


# --- commands ---------------------------------------------------------------------------------


def commands(
    text: str,
    path: str,
    source: Source,
    where: Placement,
    ctx: Context | None = None,
    *,
    make: bool = False,
) -> list[ImageRef]:
    """References pulled by the commands in ``text`` (a script, a ``run:`` step, a recipe)."""
    if not mentions(text):
        return []
    out: list[ImageRef] = []
    for cmd in words(text, make=make):
        found = _image_word(cmd, make)
        if found is None:
            continue
        tool, word, prefix = found
        out.append(
            _ref(word, prefix, tool, path=path, source=source, where=where, ctx=ctx or Context(), make=make)
        )
    return out


def _image_word(cmd: list[Word], make: bool) -> tuple[str, Word, int] | None:
    """(``tool sub``, the word naming the image, length of a ``docker://`` prefix) or None."""
    i = 0
    while i < len(cmd):
        v = cmd[i].value.lstrip("@-+") if make and i == 0 else cmd[i].value
        if _ASSIGN.match(v) or v in _WRAPPERS or (i and cmd[i - 1].value == "sudo" and v.startswith("-")):
            i += 1
            continue
        break
    if i >= len(cmd):
        return None
    tool = posixpath.basename(cmd[i].value.lstrip("@-+") if make and i == 0 else cmd[i].value)
    rest = cmd[i + 1 :]
    if tool in ("docker", "podman", "nerdctl"):
        j = _skip_options(rest, 0, _DOCKER_VALUED)
        if j < len(rest) and rest[j].value in ("container", "image"):
            j += 1
        if j >= len(rest) or rest[j].value not in ("run", "create", "pull"):
            return None
        sub = rest[j].value
        k = _skip_options(rest, j + 1, _DOCKER_VALUED)
        return (f"{tool} {sub}", rest[k], 0) if k < len(rest) else None
    if tool == "crane":
        j = _skip_options(rest, 0, _CRANE_VALUED)
        if j >= len(rest) or rest[j].value not in _CRANE_SUBS:
            return None
        k = _skip_options(rest, j + 1, _CRANE_VALUED)
        return (f"crane {rest[j].value}", rest[k], 0) if k < len(rest) else None
    if tool == "skopeo":
        j = _skip_options(rest, 0, _SKOPEO_VALUED)
        if j >= len(rest) or rest[j].value not in ("copy", "inspect"):
            return None
        k = _skip_options(rest, j + 1, _SKOPEO_VALUED)
        if k < len(rest) and rest[k].value.startswith(_DOCKER_PREFIX):
            return f"skopeo {rest[j].value}", rest[k], len(_DOCKER_PREFIX)
    return None


def _skip_options(ws: list[Word], j: int, valued: frozenset[str]) -> int:
    """Index of the first operand at or after ``j``: options, and the values of those that take
    one, skipped."""
    while j < len(ws):
        v = ws[j].value
        if v == "--":
            return j + 1
        if not v.startswith("-") or v == "-":
            return j
        if "=" in v or v not in valued:
            j += 1
            continue
        j += 2
    return j


def _ref(
    word: Word,
    prefix: int,
    tool: str,
    *,
    path: str,
    source: Source,
    where: Placement,
    ctx: Context,
    make: bool,
) -> ImageRef:
    value = word.value[prefix:]
    start = word.start + prefix
    part = where.part(value, start, start + len(value), word.quote, word.raw)
    notes = (*ctx.notes, f"pulled by {tool}")
    context = Context(ctx.kind or "command", ctx.name, ctx.container, None, ctx.field, notes)
    if "${{" in value or "{{" in value:
        return make_ref(
            path, source, value, [part], context, skip=Skip.TEMPLATED, detail=f"expression {value!r}"
        )
    if "$" in value or "`" in value:
        what = "make variable" if make and "$(" in value else "shell variable"
        return make_ref(
            path, source, value, [part], context, skip=Skip.VARIABLE, detail=f"{what} in {value!r}"
        )
    return make_ref(path, source, value, [part], context)
