"""Shared manifests and helpers for the conformance suite (research/kubeapi.md §5)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from typing import Any

from clusterproc import ClusterProcess

CRD_YAML = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: rollouts.example.com
spec:
  group: example.com
  scope: Namespaced
  names:
    plural: rollouts
    singular: rollout
    kind: Rollout
    shortNames: [ro]
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
      scale:
        specReplicasPath: .spec.replicas
        statusReplicasPath: .status.replicas
    additionalPrinterColumns:
    - name: Replicas
      type: integer
      jsonPath: .spec.replicas
    - name: Image
      type: string
      jsonPath: .spec.image
    - name: Age
      type: date
      jsonPath: .metadata.creationTimestamp
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              replicas:
                type: integer
                default: 1
              image:
                type: string
              strategy:
                type: string
                default: Canary
          status:
            type: object
            properties:
              replicas:
                type: integer
              observedGeneration:
                type: integer
              phase:
                type: string
"""


def deployment_yaml(
    name: str = "web", *, image: str = "nginx:1.25", replicas: int = 2, env: str = "1"
) -> str:
    return f"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  labels: {{app: {name}}}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
      - name: nginx
        image: {image}
        ports:
        - containerPort: 80
        env:
        - name: A
          value: "{env}"
"""


def rollout_yaml(name: str = "r1", *, replicas: int = 2, image: str = "app:v1", extra: str = "") -> str:
    return f"""\
apiVersion: example.com/v1
kind: Rollout
metadata:
  name: {name}
spec:
  replicas: {replicas}
  image: {image}
{extra}"""


def kubectl_ns(
    cluster: ClusterProcess, namespace: str, *args: str, input: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """``kubectl -n <namespace> <args>``."""
    return cluster.kubectl("-n", namespace, *args, input=input, check=check)


def install_rollout_crd(cluster: ClusterProcess) -> None:
    """Apply the ``rollouts.example.com`` CRD and wait until it is served."""
    cluster.kubectl("apply", "-f", "-", input=CRD_YAML)
    cluster.kubectl("wait", "--for=condition=Established", "crd/rollouts.example.com", "--timeout=30s")


def wait_for(
    predicate: Callable[[], Any], *, timeout: float = 15, interval: float = 0.05, what: str = ""
) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        time.sleep(interval)
