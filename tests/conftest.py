"""Suite-wide fixtures. Shared helpers live in ``tests/support/<area>.py``; a module there that
defines fixtures is listed in ``pytest_plugins`` so every test folder can use them."""

from __future__ import annotations

pytest_plugins: list[str] = ["tests.support.fakegithub", "tests.support.registry"]
