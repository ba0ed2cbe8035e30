"""Where the offline artifacts the tests need are installed (by ``scripts/test``)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NPM_ROOT = Path(os.environ.get("PULLABLE_NPM_ROOT", ROOT / ".ci" / "npm" / "node_modules"))


def npm_file(package: str, relpath: str) -> Path:
    """A file inside an npm package installed by ``scripts/test``; fails loudly when missing."""
    p = NPM_ROOT / package / relpath
    if not p.exists():
        raise FileNotFoundError(f"{p} is missing: run scripts/test once (it installs npm test data)")
    return p


def binary(name: str) -> str:
    """Path of a Debian binary the tests start (docker-registry, redis-server, htpasswd)."""
    for cand in (shutil.which(name), f"/usr/bin/{name}", f"/usr/sbin/{name}"):
        if cand and os.path.exists(cand):
            return cand
    raise FileNotFoundError(f"{name} is not installed: run scripts/test once (it apt-installs it)")
