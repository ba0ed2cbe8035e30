"""Kubernetes manifests, and the catch-all for every other YAML file (it is last in FINDERS).

A document with ``apiVersion`` and ``kind`` is a Kubernetes object: its containers,
initContainers and ephemeralContainers (Pod, the workload kinds, CronJob's ``jobTemplate``,
PodTemplate, ``List`` items), image volumes, and any other ``image:`` key (CRDs: Argo Workflows,
Tekton, operators) are reported with the object's kind and name. Any other document is reported as
plain YAML. Both also read Helm-style image maps, since charts' custom resources and values-like
blocks turn up everywhere. Only parsed keys count: text inside a string value never does.
"""

from __future__ import annotations

from collections.abc import Iterator

from bot.model import ImageRef, Source
from bot.scan import Repo
from bot.scan._k8s import Where, images, is_object, objects, want
from bot.scan.yamlsrc import documents

SOURCE = Source.KUBERNETES


def claims(path: str, head: bytes) -> bool:
    """Any YAML file: most hold no image, and the pre-filter drops those before parsing."""
    return path.endswith((".yaml", ".yml"))


def find(text: str, path: str, repo: Repo) -> Iterator[ImageRef]:
    if not want(text):
        return
    for doc in documents(text, want=want):
        if is_object(doc.root):
            yield from objects(doc, doc.root, Where(path, Source.KUBERNETES))
        else:
            yield from images(doc, doc.root, Where(path, Source.YAML))
