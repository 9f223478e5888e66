"""Shared fixtures: real local cluster processes per test session, and per-test namespaces.

``cluster`` is the bare API server (``--nodes 0``: no simulated nodes or controllers), for tests of API
semantics that must not be disturbed by controllers. ``sim_cluster`` runs the whole simulation (nodes,
kubelets, built-in controllers, traffic), for tests of behaviour.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from clusterproc import ClusterProcess, have_kubectl, start_cluster

_counter = itertools.count()

# Test files that take a minute or more on their own (a whole `tugboat up` with a browser, the seed's
# process end to end). pytest-xdist's `--dist loadfile` hands out files in collection order, so these go
# first: started last, they would run alone while the other workers sit idle.
_LONG_FIRST = ("tests/ui/", "tests/rollouts_e2e/test_seed.py", "tests/cli/test_demo.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.path.as_posix()
        return 0 if any(f"/{long}" in path or path.endswith(long) for long in _LONG_FIRST) else 1

    items.sort(key=rank)  # stable: the order within each group stays as collected


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterProcess]:
    """One bare API server for the session; tests isolate themselves in their own namespaces."""
    proc = start_cluster(tmp_path_factory.mktemp("cluster"))
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def argo_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterProcess]:
    """A second bare API server, for tests that install Argo's CRDs: ``rollouts.argoproj.io`` would
    make kubectl's ``rollouts``/``ro`` ambiguous for the conformance tests' own ``Rollout`` CRD."""
    proc = start_cluster(tmp_path_factory.mktemp("argo-cluster"))
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def sim_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterProcess]:
    """One fully simulated local cluster (3 nodes, every controller) for the session."""
    proc = start_cluster(tmp_path_factory.mktemp("sim-cluster"), simulate=True)
    yield proc
    proc.stop()


def _new_namespace(cluster: ClusterProcess) -> str:
    name = f"t{next(_counter)}"
    with cluster.client() as client:
        response = client.post("/api/v1/namespaces", json={"metadata": {"name": name}})
        assert response.status_code == 201, response.text
    return name


@pytest.fixture
def namespace(cluster: ClusterProcess) -> str:
    return _new_namespace(cluster)


@pytest.fixture
def sim_namespace(sim_cluster: ClusterProcess) -> str:
    return _new_namespace(sim_cluster)


@pytest.fixture
def kubectl_available() -> None:
    if not have_kubectl():
        pytest.skip("kubectl is not on the PATH")
