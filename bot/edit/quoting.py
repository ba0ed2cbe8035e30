"""Whether a new plain YAML scalar would still be read as a string.

A tag written ``1.30`` is the float 1.3 to every YAML parser, ``8`` an int, ``2024-01-01`` a
date under YAML 1.1, ``on`` a boolean under YAML 1.1 but a string under 1.2. Kubernetes (go-yaml
v2 via sigs.k8s.io/yaml), Helm and Ansible do not agree on one YAML version, so a value is left
plain only when both versions' resolvers read it as a string; otherwise the edit adds quotes.
"""

from __future__ import annotations

import re
from functools import cache
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from ruamel.yaml.resolver import VersionedResolver

_STR = "tag:yaml.org,2002:str"
# A plain scalar safe in block and flow context alike: no indicator first, no ": ", " #", ",".
_PLAIN_SAFE = re.compile(r"[A-Za-z0-9_./][A-Za-z0-9_./:@+=-]*")
# YAML 1.1's one-letter booleans, which go-yaml v2 resolves and PyYAML does not.
_LETTER_BOOLS = frozenset({"y", "Y", "n", "N"})


@cache
def _resolvers() -> tuple[yaml.resolver.Resolver, VersionedResolver, Any]:
    """Built on first use: ruamel costs ~80 ms to import, and a scan that edits nothing needs none."""
    from ruamel.yaml.nodes import ScalarNode
    from ruamel.yaml.resolver import VersionedResolver

    return yaml.resolver.Resolver(), VersionedResolver(version=(1, 2)), ScalarNode


def needs_quotes(value: str) -> bool:
    """True when ``value`` written as a plain scalar would not read back as that string."""
    if value in _LETTER_BOOLS or not _PLAIN_SAFE.fullmatch(value):
        return True
    yaml11, yaml12, ruamel_scalar = _resolvers()
    return (
        yaml11.resolve(yaml.ScalarNode, value, (True, False)) != _STR
        or str(yaml12.resolve(ruamel_scalar, value, (True, False))) != _STR
    )


def fits(value: str, quote: str) -> bool:
    """Whether ``value`` can sit between ``quote`` characters with its bytes taken literally
    (no escape needed), which is what lets the edit stay a plain splice."""
    if quote == '"':
        return '"' not in value and "\\" not in value
    if quote == "'":
        return "'" not in value
    return True
