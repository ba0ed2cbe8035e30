"""Pullable: keeps every container image reference in a repository pullable.

Bottom up, and no module imports one above it (``tests/test_layering.py``): the base (``model``,
``reference``, ``versions``, ``settings``, ``metrics``, ``report``, ``logs``); five siblings that never
import one another (``scan``, ``registry``, ``rules``, ``edit``, ``github``); ``repoconfig`` and
``pullsecrets`` (the pull-secret check); ``pipeline``, which composes the siblings for the CLI
and the App alike; ``jobs`` (the App's orchestration); ``web``; ``cli``. There are no import
circles.
"""

__version__ = "0.1.0"
