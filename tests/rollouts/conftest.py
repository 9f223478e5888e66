"""The rollout tests install Argo Rollouts' CRDs, so they get their own bare API server (``argo_cluster``)."""

from __future__ import annotations

import pytest

from clusterproc import ClusterProcess


@pytest.fixture(scope="session")
def cluster(argo_cluster: ClusterProcess) -> ClusterProcess:
    return argo_cluster
