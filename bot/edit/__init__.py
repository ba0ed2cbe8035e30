"""The edit engine: minimal byte edits that make image references read as new targets.

``plan`` decides what to write where, ``insert`` adds key paths that are not written yet,
``apply``/``apply_all`` splice it in, ``verify`` checks a re-scan. This package imports only
:mod:`bot.model` and :mod:`bot.reference`: it sits below the scanners, the registry client and
the rules, which all build on it.
"""

from __future__ import annotations

from bot.edit import insert
from bot.edit.errors import EditError
from bot.edit.plan import expected, plan, written
from bot.edit.splice import apply, apply_all
from bot.edit.verify import Mismatch, verify

__all__ = [
    "EditError",
    "Mismatch",
    "apply",
    "apply_all",
    "expected",
    "insert",
    "plan",
    "verify",
    "written",
]
