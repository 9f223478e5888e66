"""The Application and AppProject CRDs install on the local cluster and read like Argo CD's."""

from __future__ import annotations

import json

from clusterproc import ClusterProcess
from tugboat.gitops import crds
from tugboat.kube.client import Client


async def test_install_is_idempotent_and_kubectl_prints_argo_columns(cluster: ClusterProcess) -> None:
    async with Client.from_kubeconfig(cluster.kubeconfig, field_manager="tugboat-gitops") as client:
        await crds.install(client)
        await crds.install(client)  # an upgrade: nothing changes, nothing fails
        project = await client.get(crds.APPPROJECT, "default", "argocd")
        assert project["spec"]["sourceRepos"] == ["*"]
        app = {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Application",
            "metadata": {"name": "guestbook", "namespace": "argocd"},
            "spec": {
                "project": "default",
                "source": {
                    "repoURL": "https://example.com/repo.git",
                    "path": "guestbook",
                    "targetRevision": "HEAD",
                },
                "destination": {"server": "https://kubernetes.default.svc", "namespace": "default"},
            },
        }
        await client.create(crds.APPLICATION, app)
        await client.patch(
            crds.APPLICATION,
            "guestbook",
            {"status": {"sync": {"status": "Synced", "revision": "abc123"}, "health": {"status": "Healthy"}}},
            namespace="argocd",
        )
    table = cluster.kubectl("get", "app", "-n", "argocd").stdout.splitlines()
    assert table[0].split() == ["NAME", "SYNC", "STATUS", "HEALTH", "STATUS"]
    assert table[1].split() == ["guestbook", "Synced", "Healthy"]
    wide = cluster.kubectl("get", "applications", "-n", "argocd", "-o", "wide").stdout.splitlines()
    assert wide[1].split() == ["guestbook", "Synced", "Healthy", "abc123", "default"]
    assert cluster.kubectl("get", "appproj", "-n", "argocd", "-o", "name").stdout.split() == [
        "appproject.argoproj.io/default"
    ]
    # A spec without the required fields is refused, as Argo CD's CRD refuses it.
    bad = cluster.kubectl(
        "apply",
        "-f",
        "-",
        input=json.dumps(
            {
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "Application",
                "metadata": {"name": "broken", "namespace": "argocd"},
                "spec": {"source": {"repoURL": "x"}},
            }
        ),
        check=False,
    )
    assert bad.returncode != 0 and "spec.destination: Required value" in bad.stderr
