"""Pullable end to end on ``examples/``, with no internet: a local registry stands in for Docker
Hub, registry.k8s.io and the others, holding the images the sample repository names — except the
ones that rotted (retired Bitnami images, the frozen k8s.gcr.io, tags that never existed).

Run through ``scripts/demo``, which installs what this needs first.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.demo import registries  # noqa: E402 - after the path is set


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="pullable-demo-") as tmp:
        work = Path(tmp)
        with registries(work) as config:
            repo = work / "examples"
            shutil.copytree(ROOT / "examples", repo)
            exe = str(Path(sys.executable).parent / "pullable")
            env_note = f"(stand-in registries on 127.0.0.1; operator config {config})"
            print(f"$ pullable scan examples --config pullable.yml   {env_note}\n", flush=True)
            subprocess.run([exe, "scan", str(repo), "--config", str(config)], check=False)  # noqa: S603
            print("\n$ pullable fix examples --config pullable.yml --dry-run\n", flush=True)
            subprocess.run([exe, "fix", str(repo), "--config", str(config), "--dry-run"], check=False)  # noqa: S603
    return 0


if __name__ == "__main__":
    sys.exit(main())
