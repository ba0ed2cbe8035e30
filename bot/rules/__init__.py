"""The rule table (``rules/*.yaml``) and the engine that applies it to one reference.

Layering: this package sits below :mod:`bot.registry` and :mod:`bot.scan`; it imports only
:mod:`bot.model`, :mod:`bot.reference` and :mod:`bot.versions`, and names what it needs from a
registry as the :class:`Lookup` protocol.
"""

from __future__ import annotations

from bot.rules.engine import Decision, Lookup, Options, evaluate
from bot.rules.table import (
    Match,
    Replace,
    Rule,
    RuleError,
    RuleTable,
    default_dir,
    load,
    load_layered,
    load_text,
)

__all__ = [
    "Decision",
    "Lookup",
    "Match",
    "Options",
    "Replace",
    "Rule",
    "RuleError",
    "RuleTable",
    "default_dir",
    "evaluate",
    "load",
    "load_layered",
    "load_text",
]
