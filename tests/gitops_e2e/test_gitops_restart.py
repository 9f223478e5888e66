"""A killed controller resumes: the sync operation persisted in ``status.operationState`` continues after
a restart, in the same operation (same ``startedAt``, hooks not run twice), and ``tugboat up`` runs the
controller beside the local cluster.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parent))

from gitops_support import GitRepo, application, create_app, get, start_controller, unique, wait_app

from clusterproc import ClusterProcess


def job(name: str, *, hook: str, wave: int, run_for: str) -> str:
    return f"""apiVersion: batch/v1
kind: Job
metadata:
  generateName: {name}-
  annotations:
    argocd.argoproj.io/hook: {hook}
    argocd.argoproj.io/hook-delete-policy: BeforeHookCreation
    argocd.argoproj.io/sync-wave: "{wave}"
spec:
  backoffLimit: 0
  template:
    metadata:
      annotations:
        sim.tugboat.dev/run-for: "{run_for}"
        sim.tugboat.dev/exit-code: "0"
    spec:
      restartPolicy: Never
      containers:
      - name: main
        image: busybox
"""


def configmap(name: str, wave: int) -> str:
    return f"""apiVersion: v1
kind: ConfigMap
metadata:
  name: {name}
  annotations:
    argocd.argoproj.io/sync-wave: "{wave}"
data:
  wave: "{wave}"
"""


def test_killed_controller_resumes_the_same_operation(sim_cluster: ClusterProcess, tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "repo")
    repo.commit(
        {
            "app/pre.yaml": job("pre", hook="PreSync", wave=0, run_for="1s"),
            "app/w0.yaml": configmap("wave-0", 0),
            "app/slow.yaml": job("slow", hook="Sync", wave=1, run_for="4s"),
            "app/w2.yaml": configmap("wave-2", 2),
            "app/post.yaml": job("post", hook="PostSync", wave=0, run_for="1s"),
        }
    )
    name = unique("resume")
    state = tmp_path / "controller"
    controller = start_controller(sim_cluster, state)
    try:
        create_app(sim_cluster, application(name, repo.url, "app", namespace=name))
        running = wait_app(
            sim_cluster,
            name,
            lambda a: any(
                r.get("hookType") == "Sync" and r.get("hookPhase") == "Running"
                for r in (a.get("status", {}).get("operationState") or {})
                .get("syncResult", {})
                .get("resources", [])
            ),
            controller=controller,
            what="the wave-1 hook running",
        )
    finally:
        controller.stop(signal.SIGKILL)
    started_at = running["status"]["operationState"]["startedAt"]
    assert running["status"]["operationState"]["phase"] == "Running"
    assert get(sim_cluster, f"/api/v1/namespaces/{name}/configmaps/wave-2") is None

    controller = start_controller(sim_cluster, state)
    try:
        done = wait_app(
            sim_cluster,
            name,
            lambda a: (a["status"].get("operationState") or {}).get("phase") == "Succeeded",
            controller=controller,
            what="the operation completed after the restart",
        )
    finally:
        controller.stop()
    op = done["status"]["operationState"]
    assert op["startedAt"] == started_at  # the same operation, continued
    phases = [(r["syncPhase"], r["kind"], r["name"].rsplit("-", 1)[0]) for r in op["syncResult"]["resources"]]
    assert [p for p in phases if p[1] == "Job"] == [
        ("PreSync", "Job", "pre-" + op["syncResult"]["revision"][:7] + "-presync"),
        ("Sync", "Job", "slow-" + op["syncResult"]["revision"][:7] + "-sync"),
        ("PostSync", "Job", "post-" + op["syncResult"]["revision"][:7] + "-postsync"),
    ]
    with sim_cluster.client() as client:
        jobs = client.get(f"/apis/batch/v1/namespaces/{name}/jobs").json()["items"]
    # Each hook ran exactly once, although the controller died while the Sync hook ran.
    assert sorted(j["metadata"]["name"].split("-")[0] for j in jobs) == ["post", "pre", "slow"]
    assert get(sim_cluster, f"/api/v1/namespaces/{name}/configmaps/wave-2") is not None
    assert len(done["status"]["history"]) == 1


def test_tugboat_up_runs_the_controllers(tmp_path: Path) -> None:
    state = tmp_path / "state"
    log = (tmp_path / "up.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tugboat.cli.main",
            "up",
            "--port",
            "0",
            "--state-dir",
            str(state),
            "--nodes",
            "1",
            "--ui-port",
            "0",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        kubeconfig = state / "kubeconfig"
        deadline = time.monotonic() + 60
        while not kubeconfig.exists() and time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "up.log").read_text()
            time.sleep(0.1)
        server = yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
        cluster = ClusterProcess(state, proc, url=server, kubeconfig=kubeconfig)
        project = None
        while project is None and time.monotonic() < deadline:
            project = get(cluster, "/apis/argoproj.io/v1alpha1/namespaces/argocd/appprojects/default")
            time.sleep(0.2)
        assert project is not None, (tmp_path / "up.log").read_text()
        ps = subprocess.run(["ps", "-o", "args=", "--ppid", str(proc.pid)], capture_output=True, text=True)
        assert "gitops-controller" in ps.stdout and "rollouts-controller" in ps.stdout
        while get(cluster, "/apis/argoproj.io/v1alpha1/rollouts") is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert get(cluster, "/apis/argoproj.io/v1alpha1/rollouts") is not None
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    assert code == 0, (tmp_path / "up.log").read_text()
