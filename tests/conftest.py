"""Shared fixtures: a real local cluster process per test session, and per-test namespaces."""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from clusterproc import ClusterProcess, have_kubectl, start_cluster

_counter = itertools.count()


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterProcess]:
    """One local cluster for the session; tests isolate themselves in their own namespaces."""
    proc = start_cluster(tmp_path_factory.mktemp("cluster"))
    yield proc
    proc.stop()


@pytest.fixture
def namespace(cluster: ClusterProcess) -> str:
    name = f"t{next(_counter)}"
    with cluster.client() as client:
        response = client.post("/api/v1/namespaces", json={"metadata": {"name": name}})
        assert response.status_code == 201, response.text
    return name


@pytest.fixture
def kubectl_available() -> None:
    if not have_kubectl():
        pytest.skip("kubectl is not on the PATH")
