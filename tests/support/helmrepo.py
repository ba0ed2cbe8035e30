"""A Helm chart repository on loopback for tests: a static ``index.yaml`` and chart archives
built here, served by a threaded HTTP server (what `helm repo index` + any web server give).

    repo = HelmRepo(tmp_path)                                 # started; repo.url is http://127.0.0.1:PORT
    repo.add(chart("pg", "1.2.3", values="image: ..."))       # archive + index entry
    repo.config_mapping("charts.example.test")                # operator config: that host -> repo.url
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import tarfile
import threading
from collections.abc import Iterator, Mapping
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml


def tgz(files: Mapping[str, bytes | str], *, links: Mapping[str, str] | None = None) -> bytes:
    """A gzip'd tar of ``files`` (path -> content) and symlinks (path -> target)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            body = data.encode() if isinstance(data, str) else data
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(body), 0, 0o644
            tar.addfile(info, io.BytesIO(body))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return gzip.compress(raw.getvalue(), mtime=0)


def chart(
    name: str,
    version: str,
    *,
    values: str = "",
    app_version: str | None = None,
    templates: Mapping[str, str] | None = None,
    subcharts: Mapping[str, bytes] | None = None,
    extra: Mapping[str, str] | None = None,
) -> tuple[str, str, str | None, bytes]:
    """(name, version, appVersion, archive) of a chart laid out as `helm package` does."""
    meta: dict[str, Any] = {"apiVersion": "v2", "name": name, "version": version}
    if app_version:
        meta["appVersion"] = app_version
    files: dict[str, bytes | str] = {
        f"{name}/Chart.yaml": yaml.safe_dump(meta, sort_keys=False),
        f"{name}/values.yaml": values,
    }
    for path, text in (templates or {}).items():
        files[f"{name}/templates/{path}"] = text
    for sub, data in (subcharts or {}).items():
        files[f"{name}/charts/{sub}.tgz"] = data
    for path, text in (extra or {}).items():
        files[f"{name}/{path}"] = text
    return name, version, app_version, tgz(files)


def big_index(entry_yaml: str, size: int) -> bytes:
    """An ``index.yaml`` of about ``size`` bytes as Helm writes it: filler charts (each a few
    versions with a long description), then the chart of ``entry_yaml``, then more filler."""
    desc = "A chart padded to make the index as large as a popular repository's. " * 6
    one = "".join(
        f"  - apiVersion: v2\n    description: {desc}\n    digest: {'ab' * 32}\n"
        f"    name: c{{i}}\n    urls:\n    - c{{i}}-1.{v}.0.tgz\n    version: 1.{v}.0\n"
        for v in range(3)
    )
    block = "".join(f"  c{i}:\n" + one.replace("{i}", str(i)) for i in range(50))
    per = len(block)
    halves = [block.replace("  c", f"  h{h}x").replace("name: c", f"name: h{h}x") for h in range(2)]
    parts = ["apiVersion: v1\nentries:\n"]
    n = size // per // 2
    for k in range(n):
        parts.append(halves[0].replace("  h0x", f"  h0x{k}_"))
    parts.append(entry_yaml)
    for k in range(n):
        parts.append(halves[1].replace("  h1x", f"  h1x{k}_"))
    parts.append("generated: '2026-12-01T00:00:00Z'\n")
    return "".join(parts).encode()


class HelmRepo:
    """A static chart repository on 127.0.0.1 (stop it with :meth:`stop`)."""

    def __init__(
        self,
        root: Path,
        *,
        prefix: str = "",
        absolute_urls: bool = False,
        auth: tuple[str, str] | None = None,
    ) -> None:
        self.root = root
        self.prefix = prefix
        self.dir = root / prefix if prefix else root
        self.dir.mkdir(parents=True, exist_ok=True)
        self.entries: dict[str, list[dict[str, Any]]] = {}
        self.absolute = absolute_urls
        self.requests: list[str] = []
        repo = self

        class Handler(SimpleHTTPRequestHandler):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, directory=str(repo.root), **kwargs)

            def do_GET(self) -> None:
                repo.requests.append(self.path)
                if auth is not None:
                    want = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
                    if self.headers.get("Authorization") != want:
                        self.send_response(401)
                        self.send_header("WWW-Authenticate", 'Basic realm="charts"')
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                super().do_GET()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self._write_index()

    def add(
        self, built: tuple[str, str, str | None, bytes], *, digest: str | None = None, path: str = ""
    ) -> None:
        """Publish a chart archive (under ``path``/ when given) and list it in the index."""
        name, version, app, data = built
        rel = f"{path}/{name}-{version}.tgz" if path else f"{name}-{version}.tgz"
        target = self.dir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        base = f"{self.url}/{self.prefix}" if self.prefix else self.url
        url = f"{base}/{rel}" if self.absolute else rel
        entry: dict[str, Any] = {
            "apiVersion": "v2", "name": name, "version": version, "urls": [url],
            "digest": digest or hashlib.sha256(data).hexdigest(),
        }  # fmt: skip
        if app:
            entry["appVersion"] = app
        self.entries.setdefault(name, []).insert(0, entry)
        self._write_index()

    def _write_index(self) -> None:
        index = {"apiVersion": "v1", "entries": self.entries, "generated": "2026-12-01T00:00:00Z"}
        (self.dir / "index.yaml").write_text(yaml.safe_dump(index, sort_keys=False))

    def config_mapping(self, host: str) -> dict[str, Any]:
        """Operator configuration pointing chart host ``host`` at this server."""
        return {"registries": {host: {"endpoint": self.url}}}

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def serve(root: Path, prefix: str = "") -> Iterator[HelmRepo]:
    """For fixtures: a started repository, stopped afterwards."""
    repo = HelmRepo(root, prefix=prefix)
    try:
        yield repo
    finally:
        repo.stop()
