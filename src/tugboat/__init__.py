"""Tugboat: GitOps continuous delivery and progressive delivery for Kubernetes.

One code base does the jobs of Argo CD and Argo Rollouts, speaks their resource formats, and ships an
embedded local cluster (``tugboat.localcluster``) so that everything runs on a laptop without Kubernetes.
"""

__version__ = "0.1.0"
