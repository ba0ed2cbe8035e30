"""The scan-result cache key covers every module whose change can change a scan result: a fix to
the YAML walker deployed without a version bump must not keep serving stale cached results."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bot.jobs import reader
from bot.scan import FINDERS

ROOT = Path(__file__).resolve().parents[2]


def test_every_module_under_bot_scan_is_in_the_key() -> None:
    hashed = set(reader.scanner_modules())
    missing = [p for p in sorted((ROOT / "bot" / "scan").rglob("*.py")) if p.resolve() not in hashed]
    assert not missing, f"left out of the scanner key: {missing}"


def test_every_bot_module_a_scan_loads_is_in_the_key() -> None:
    """Independent of the import walk: import the scanner in a fresh interpreter, scan one file of
    each kind that dispatches (Argo CD, Flux), and list the ``bot`` modules that got loaded."""
    code = (
        "import importlib, json, sys\n"
        "import bot.scan as s\n"
        f"[importlib.import_module(n) for n in {list(FINDERS)!r}]\n"
        "head = b'apiVersion: argoproj.io/v1alpha1\\nkind: Application\\n'\n"
        "s.scan_file('a.yaml', head, s.LocalRepo('.'))\n"
        "mods = [m for n, m in sys.modules.items() if n == 'bot' or n.startswith('bot.')]\n"
        "print(json.dumps(sorted(m.__file__ for m in mods if getattr(m, '__file__', None))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    loaded = {Path(p).resolve() for p in json.loads(out.stdout)}
    loaded.discard((ROOT / "bot" / "__init__.py").resolve())  # the version, hashed on its own
    missing = sorted(loaded - set(reader.scanner_modules()))
    assert not missing, f"loaded by a scan but left out of the scanner key: {missing}"
    assert (ROOT / "bot" / "scan" / "yamlimages.py").resolve() in loaded


@pytest.mark.parametrize("name", ["yamlimages.py", "ansible_vars.py", "argocd.py", "flux.py", "manifests.py"])
def test_a_change_to_any_scan_module_changes_the_key(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    before = reader.scanner_key()
    target = (ROOT / "bot" / "scan" / name).resolve()
    real = Path.read_bytes

    def edited(self: Path) -> bytes:
        data = real(self)
        return data + b"\n# a fix\n" if self.resolve() == target else data

    monkeypatch.setattr(Path, "read_bytes", edited)
    assert reader.scanner_key() != before
