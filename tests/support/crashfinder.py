"""A finder that misbehaves on purpose, for the sandbox tests: it stands in for a parser bug
(a segfault in C code, a runaway loop, a memory blow-up) that no input check foresaw.

Claims ``*.crash`` files; what it does depends on the file's first word."""

from __future__ import annotations

import ctypes
import os
import signal
from collections.abc import Iterator

from bot.model import ImageRef, Part, Role, Source, Span
from bot.scan.common import make_ref

SOURCE = Source.YAML


def claims(path: str, head: bytes) -> bool:
    return path.endswith(".crash")


def find(text: str, path: str, repo: object) -> Iterator[ImageRef]:
    word = text.split(maxsplit=1)[0] if text.strip() else ""
    if word == "SEGV":
        os.kill(os.getpid(), signal.SIGSEGV)
    elif word == "NULL":
        ctypes.string_at(0)  # a real invalid read, as a buggy C extension would do
    elif word == "SPIN":
        while True:
            pass
    elif word == "HOG":
        hog = [bytearray(64 << 20) for _ in range(64)]  # 4 GiB, over the address-space limit
        del hog
    elif word == "SIBLING":
        sibling = getattr(repo, "read_text", lambda p: None)("sibling.txt") or ""
        text = sibling
    image = text.split()[-1]
    yield make_ref(path, SOURCE, image, [Part(Role.IMAGE, image, Span(0, len(image), 1, 1))])
