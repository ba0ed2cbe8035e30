"""Pullable: keeps every container image reference in a repository pullable.

The package reads top-down, and no module imports one above it:
``web``/``cli`` (intake) -> ``jobs`` (orchestration) -> ``scan`` (one finder per file kind) ->
``registry`` -> ``rules`` -> ``edit`` -> ``github``. ``model`` and ``reference`` sit under all
of them.
"""

__version__ = "0.1.0"
