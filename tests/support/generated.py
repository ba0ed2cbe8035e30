"""Generated install.yaml-style manifests (argo-cd's ``manifests/install.yaml`` is 1.9 MB: CRDs
with large OpenAPI schemas, then the workloads), for the large-file tests and bench/scan.py."""

from __future__ import annotations

CRD_HEAD = """apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: things{i}.example.io
spec:
  group: example.io
  names: {{kind: Thing{i}, plural: things{i}}}
  scope: Namespaced
  versions:
  - name: v1alpha1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
"""
CRD_FIELD = """          field{j}:
            description: Field {j} of the thing; an image of the desired state, as the
              controller reads it. Kustomize images and Helm values may override it.
            type: object
            properties:
              name: {{type: string}}
              value: {{type: string}}
              enabled: {{type: boolean}}
"""
WORKLOAD = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: component-{i}
spec:
  template:
    spec:
      containers:
      - name: main
        image: quay.io/example/component-{i}:v2.{i}.0
        args: [--loglevel, info]
"""


def install_yaml(target_bytes: int, workloads: int = 12) -> tuple[str, list[str]]:
    """A multi-document manifest of about ``target_bytes``: CRDs first, ``workloads``
    Deployments last; returns the text and the images it holds, in order."""
    docs: list[str] = []
    size, i = 0, 0
    budget = target_bytes - workloads * len(WORKLOAD)
    while size < budget:
        crd = CRD_HEAD.format(i=i) + "".join(CRD_FIELD.format(j=j) for j in range(200))
        docs.append(crd)
        size += len(crd) + 4
        i += 1
    images = []
    for w in range(workloads):
        docs.append(WORKLOAD.format(i=w))
        images.append(f"quay.io/example/component-{w}:v2.{w}.0")
    return "---\n".join(docs), images
