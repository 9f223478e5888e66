"""Argo Rollouts' Experiment manifests, run by our controller process (rollouts + analysis + experiments)
on the simulated local cluster.

Acceptance data (through ``TUGBOAT_EXAMPLES``): ``examples/experiment-with-analysis.yaml`` with its
``examples/analysis-templates.yaml``, and ``test/e2e/functional/experiment-basic.yaml``,
``experiment-same-template.yaml``, ``experiment-with-service.yaml``, ``experiment-with-service-name.yaml``,
``experiment-with-multiport-service.yaml``, ``experiment-dry-run-analysis.yaml`` and
``experiment-measurement-retention-analysis.yaml``. Each is driven the way upstream's
``test/e2e/experiment_test.go`` drives it (where it does) and checked on what a user sees: phases and
messages, ReplicaSets per template (names, hashes, annotations, replica counts, pods), Services per
template, AnalysisRuns (phase, dry-run summary, measurement history), the scale-down after the end.

What differs from upstream's runs, and why (each adaptation is also marked where it is made):
- Job metrics: the simulated kubelet does not execute commands; it reads ``sim.tugboat.dev/`` pod
  annotations (DESIGN.md §5). So ``exit 1`` becomes ``exit-code: "1"``, ``exit 0`` ``exit-code: "0"``,
  and ``random-fail``'s coin flip is pinned to one side per experiment (both sides are run).
- Waits are shortened so that the file stays short: 30 s durations become 6-10 s, the examples' 5 s metric
  intervals 1 s, and ``experiment-basic``/``experiment-same-template`` get ``scaleDownDelaySeconds: 2`` (the
  default is 30 s) so that their scale-down is seen. The Service manifests keep upstream's values.
- The manifests with ``generateName`` are created through the API (``kubectl apply`` refuses them), as
  upstream's fixtures create them.
"""

from __future__ import annotations

import concurrent.futures
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import rollouts_e2e_support as support
import yaml
from rollouts_e2e_support import Obj

from clusterproc import ClusterProcess

pytestmark = [
    pytest.mark.skipif(support.EXAMPLES is None, reason="TUGBOAT_EXAMPLES is not set"),
    pytest.mark.usefixtures("kubectl_available"),
]

FUNCTIONAL = "test/e2e/functional"
SIM = "sim.tugboat.dev/"
NAME_ANNOTATION = "experiment.argoproj.io/name"
TEMPLATE_ANNOTATION = "experiment.argoproj.io/template-name"
GROUP_PATH = "/apis/argoproj.io/v1alpha1/namespaces"


@pytest.fixture(scope="module")
def controller(
    sim_cluster: ClusterProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[subprocess.Popen[bytes]]:
    proc = support.start_controller(sim_cluster, tmp_path_factory.mktemp("experiments-e2e"))
    yield proc
    support.stop_controller(proc)


@pytest.fixture
def cluster(sim_cluster: ClusterProcess, controller: subprocess.Popen[bytes]) -> ClusterProcess:
    """The simulated cluster, with the controller process running against it."""
    return sim_cluster


# ------------------------------------------------------------------------------------ manifests


def experiment_doc(docs: list[Obj]) -> Obj:
    return support.find(docs, "Experiment")


def simulate_job(template: Obj, *, exit_code: str) -> None:
    """Adaptation: a Job metric's pod exits with ``exit_code`` at once (the kubelet runs no command)."""
    metric = template["spec"]["metrics"][0]
    pod = metric["provider"]["job"]["spec"]["template"]
    pod.setdefault("metadata", {}).setdefault("annotations", {}).update(
        {f"{SIM}exit-code": exit_code, f"{SIM}run-for": "0s"}
    )


def create(cluster: ClusterProcess, namespace: str, doc: Obj) -> str:
    """Create one object through the API (``generateName`` works); returns its name."""
    kind = doc["kind"]
    plural = {"Experiment": "experiments", "AnalysisTemplate": "analysistemplates"}[kind]
    with cluster.client() as client:
        response = client.post(f"{GROUP_PATH}/{namespace}/{plural}", json=doc)
    assert response.status_code == 201, response.text
    return str(response.json()["metadata"]["name"])


def new_namespace(cluster: ClusterProcess, name: str) -> str:
    with cluster.client() as client:
        response = client.post("/api/v1/namespaces", json={"metadata": {"name": name}})
    assert response.status_code == 201, response.text
    return name


# ------------------------------------------------------------------------------------ reads


def experiment(cluster: ClusterProcess, namespace: str, name: str) -> Obj:
    found = support.get(cluster, f"{GROUP_PATH}/{namespace}/experiments/{name}")
    assert found is not None, f"experiment {name} not found"
    return found


def wait_experiment(
    cluster: ClusterProcess,
    namespace: str,
    name: str,
    check: Callable[[Obj], bool],
    *,
    what: str,
    timeout: float = 30,
) -> Obj:
    last: dict[str, Obj] = {}

    def probe() -> Obj | None:
        last["ex"] = experiment(cluster, namespace, name)
        return last["ex"] if check(last["ex"]) else None

    try:
        return support.wait_for(probe, what=f"{name}: {what}", timeout=timeout)
    except AssertionError as exc:
        status = yaml.safe_dump((last.get("ex") or {}).get("status"), sort_keys=False)
        raise AssertionError(f"{exc}\n{status}") from None


def wait_phase(cluster: ClusterProcess, namespace: str, name: str, phase: str, *, timeout: float = 30) -> Obj:
    return wait_experiment(
        cluster,
        namespace,
        name,
        lambda ex: (ex.get("status") or {}).get("phase") == phase,
        what=phase,
        timeout=timeout,
    )


def owned(cluster: ClusterProcess, path: str, ex: Obj) -> list[Obj]:
    uid = ex["metadata"]["uid"]
    return [
        o
        for o in support.items(cluster, path)
        if any(
            r.get("uid") == uid and r.get("controller") for r in o["metadata"].get("ownerReferences") or []
        )
    ]


def template_replicasets(cluster: ClusterProcess, namespace: str, ex: Obj) -> dict[str, Obj]:
    """The experiment's ReplicaSets by template (upstream's ``GetReplicaSetFromExperiment``)."""
    found = owned(cluster, f"/apis/apps/v1/namespaces/{namespace}/replicasets", ex)
    return {rs["metadata"]["annotations"][TEMPLATE_ANNOTATION]: rs for rs in found}


def services(cluster: ClusterProcess, namespace: str, ex: Obj) -> list[Obj]:
    return owned(cluster, f"/api/v1/namespaces/{namespace}/services", ex)


def runs(cluster: ClusterProcess, namespace: str, ex: Obj) -> dict[str, Obj]:
    found = owned(cluster, f"{GROUP_PATH}/{namespace}/analysisruns", ex)
    return {run["metadata"]["name"]: run for run in found}


def pods_of(cluster: ClusterProcess, namespace: str, rs: Obj) -> list[Obj]:
    uid = rs["metadata"]["uid"]
    return [
        p
        for p in support.pods(cluster, namespace)
        if any(r.get("uid") == uid for r in p["metadata"].get("ownerReferences") or [])
    ]


def rs_counts(cluster: ClusterProcess, namespace: str, name: str) -> dict[str, tuple[int, int, int]]:
    """``(spec.replicas, status.replicas, status.availableReplicas)`` per template."""
    ex = experiment(cluster, namespace, name)
    return {
        template: (
            support.spec_replicas(rs),
            int((rs.get("status") or {}).get("replicas") or 0),
            int((rs.get("status") or {}).get("availableReplicas") or 0),
        )
        for template, rs in template_replicasets(cluster, namespace, ex).items()
    }


def wait_scaled_down(cluster: ClusterProcess, namespace: str, name: str) -> None:
    """Until every ReplicaSet of the experiment asks for no pods and has none."""

    def check() -> bool:
        return set(rs_counts(cluster, namespace, name).values()) == {(0, 0, 0)}

    support.wait_for(check, what=f"{name} scaled down", timeout=20)


def experiment_events(cluster: ClusterProcess, namespace: str, ex: Obj) -> list[str]:
    uid = ex["metadata"]["uid"]
    return [
        e.get("reason", "")
        for e in support.items(cluster, f"/api/v1/namespaces/{namespace}/events")
        if (e.get("involvedObject") or {}).get("uid") == uid
    ]


def in_parallel(*checks: Callable[[], Any]) -> list[Any]:
    """Run waits side by side (each experiment runs on its own clock), re-raising the first failure."""
    with concurrent.futures.ThreadPoolExecutor(len(checks)) as pool:
        return [f.result() for f in [pool.submit(c) for c in checks]]


# ------------------------------------------------------------------------------------ tests


def _shortened(relative: str, *, duration: str) -> Obj:
    doc = experiment_doc(support.load_manifest(relative))
    doc["spec"]["duration"] = duration  # adaptation: upstream's 30 s
    doc["spec"]["scaleDownDelaySeconds"] = 2  # adaptation: the default 30 s
    return doc


def test_basic_and_same_template_experiments_run_for_their_duration(
    cluster: ClusterProcess, sim_namespace: str
) -> None:
    ns = sim_namespace
    basic = create(cluster, ns, _shortened(f"{FUNCTIONAL}/experiment-basic.yaml", duration="6s"))
    same = create(cluster, ns, _shortened(f"{FUNCTIONAL}/experiment-same-template.yaml", duration="6s"))
    assert basic.startswith("experiment-basic-") and same.startswith("experiment-same-template-")
    running = in_parallel(
        lambda: wait_phase(cluster, ns, basic, "Running"), lambda: wait_phase(cluster, ns, same, "Running")
    )
    for ex, templates in zip(running, (("baseline", "canary"), ("first", "second")), strict=True):
        name = ex["metadata"]["name"]
        rses = template_replicasets(cluster, ns, ex)
        assert set(rses) == set(templates)
        for template, rs in rses.items():
            assert rs["metadata"]["name"] == f"{name}-{template}"
            assert rs["metadata"]["annotations"][NAME_ANNOTATION] == name
            assert rs["spec"]["selector"]["matchLabels"][support.HASH] == support.hash_of(rs)
            assert [p["status"]["phase"] for p in pods_of(cluster, ns, rs)] == ["Running"]
        status = ex["status"]
        assert status["availableAt"]
        assert {(t["name"], t["status"], t["availableReplicas"]) for t in status["templateStatuses"]} == {
            (t, "Running", 1) for t in templates
        }
    basic_rses = template_replicasets(cluster, ns, running[0])
    same_rses = template_replicasets(cluster, ns, running[1])
    # Different images, different hashes; one pod template twice, one hash (as upstream).
    assert support.hash_of(basic_rses["baseline"]) != support.hash_of(basic_rses["canary"])
    assert support.hash_of(same_rses["first"]) == support.hash_of(same_rses["second"])

    done = in_parallel(
        lambda: wait_phase(cluster, ns, basic, "Successful"),
        lambda: wait_phase(cluster, ns, same, "Successful"),
    )
    for ex in done:
        name = ex["metadata"]["name"]
        cond = next(c for c in ex["status"]["conditions"] if c["type"] == "Progressing")
        assert (cond["status"], cond["reason"]) == ("False", "ExperimentCompleted")
        assert {t["status"] for t in ex["status"]["templateStatuses"]} == {"Successful"}
        wait_scaled_down(cluster, ns, name)
        reasons = experiment_events(cluster, ns, ex)
        for reason in ("ExperimentPending", "ExperimentRunning", "ExperimentSuccessful", "ScalingReplicaSet"):
            assert reason in reasons, reasons


SERVICE_MANIFESTS: dict[str, tuple[str, list[tuple[str | None, int]]]] = {
    "experiment-with-service": ("experiment-with-service-test", [(None, 8080)]),
    "experiment-with-service-name": ("test-service-name", [(None, 8080)]),
    "experiment-with-multiport-service": (
        "experiment-with-multiport-service-test",
        [("testport1", 8080), ("testport2", 8081), ("testport3", 8082)],
    ),
}


def test_experiments_with_services_and_scale_down_delay(cluster: ClusterProcess, sim_namespace: str) -> None:
    """Upstream's TestExperimentWith{Service,ServiceName,MultiportService}AndScaleDownDelay, side by side."""
    ns = sim_namespace
    for name in SERVICE_MANIFESTS:
        support.apply(cluster, ns, support.load_manifest(f"{FUNCTIONAL}/{name}.yaml"))

    def while_running(name: str) -> None:
        service_name, ports = SERVICE_MANIFESTS[name]
        ex = wait_phase(cluster, ns, name, "Running")
        support.wait_for(
            lambda: rs_counts(cluster, ns, name) == {"test": (1, 1, 1)}, what=f"{name} pods", timeout=20
        )
        (svc,) = services(cluster, ns, ex)
        rs = template_replicasets(cluster, ns, ex)["test"]
        assert svc["metadata"]["name"] == service_name
        assert svc["spec"]["selector"] == rs["metadata"]["labels"]
        assert [(p.get("name"), p["port"], p["targetPort"]) for p in svc["spec"]["ports"]] == [
            (port_name, port, port) for port_name, port in ports
        ]
        status = experiment(cluster, ns, name)["status"]
        (template,) = status["templateStatuses"]
        assert (template["serviceName"], template["podTemplateHash"]) == (service_name, support.hash_of(rs))

    def after_the_end(name: str) -> None:
        ex = wait_phase(cluster, ns, name, "Successful", timeout=30)
        # scaleDownDelaySeconds: 5 - the pods outlive the end a little.
        assert rs_counts(cluster, ns, name)["test"][0] == 1
        wait_scaled_down(cluster, ns, name)
        support.wait_for(lambda: not services(cluster, ns, ex), what=f"{name} service deleted", timeout=10)

    in_parallel(*(lambda name=name: while_running(name) for name in SERVICE_MANIFESTS))
    in_parallel(*(lambda name=name: after_the_end(name) for name in SERVICE_MANIFESTS))


def test_dry_run_and_measurement_retention_pass_to_the_analysis(
    cluster: ClusterProcess, sim_namespace: str
) -> None:
    """Upstream's TestExperimentWithDryRunMetrics and TestExperimentWithMeasurementRetentionMetrics."""
    ns = sim_namespace
    dry_docs = support.load_manifest(f"{FUNCTIONAL}/experiment-dry-run-analysis.yaml")
    simulate_job(support.find(dry_docs, "AnalysisTemplate"), exit_code="1")  # adaptation: `exit 1`
    mr_docs = support.load_manifest(f"{FUNCTIONAL}/experiment-measurement-retention-analysis.yaml")
    simulate_job(support.find(mr_docs, "AnalysisTemplate"), exit_code="0")  # adaptation: `exit 0`
    for docs in (dry_docs, mr_docs):
        experiment_doc(docs)["spec"]["duration"] = "10s"  # adaptation: upstream's 30 s
        support.apply(cluster, ns, docs)

    def dry_run() -> None:
        ex = wait_phase(cluster, ns, "experiment-with-dry-run", "Successful", timeout=40)
        (run,) = runs(cluster, ns, ex).values()
        assert run["metadata"]["name"] == "experiment-with-dry-run-dry-run-job"
        assert run["spec"]["dryRun"] == [{"metricName": "test.*"}]
        assert run["status"]["phase"] == "Successful"
        summary = run["status"]["dryRunSummary"]
        assert (summary["count"], summary.get("error", 0), summary.get("failed", 0)) == (1, 0, 1)
        assert summary.get("successful", 0) == 0

    def measurement_retention() -> None:
        ex = wait_phase(cluster, ns, "experiment-with-mr", "Successful", timeout=40)
        name = "experiment-with-mr-measurement-retention-job"

        def terminated() -> Obj | None:  # the experiment's end stops the run (it measures for ever)
            run = runs(cluster, ns, ex).get(name)
            return run if run and (run.get("status") or {}).get("phase") == "Successful" else None

        run = support.wait_for(terminated, what="the measurement-retention run terminated", timeout=20)
        assert run["spec"]["measurementRetention"] == [{"metricName": "test.*", "limit": 2}]
        result = run["status"]["metricResults"][0]
        assert result["count"] > 2  # measured every 3 s for 10 s, yet only the last two are kept
        assert len(result["measurements"]) == 2

    in_parallel(dry_run, measurement_retention)


def _example(exit_code: str) -> list[Obj]:
    """experiment-with-analysis.yaml with its AnalysisTemplates; ``random-fail`` pinned to ``exit_code``."""
    templates = support.load_manifest("examples/analysis-templates.yaml")
    for name, code in (("pass", "0"), ("random-fail", exit_code)):
        template = support.find(templates, "AnalysisTemplate", name)
        template["spec"]["metrics"][0]["interval"] = "1s"  # adaptation: upstream's 5 s
        simulate_job(template, exit_code=code)
    return [*templates, *support.load_manifest("examples/experiment-with-analysis.yaml")]


def test_experiment_with_analysis_example(cluster: ClusterProcess, sim_namespace: str) -> None:
    """The example runs its two ReplicaSets with two analyses that are not required and no duration: it
    runs until terminated. With the coin pinned to failure, the failed analysis fails the experiment."""
    name = "experiment-with-analysis"
    passing, failing = sim_namespace, new_namespace(cluster, f"{sim_namespace}-fail")
    support.apply(cluster, passing, _example("0"))
    support.apply(cluster, failing, _example("1"))

    def passes() -> None:
        ex = wait_phase(cluster, passing, name, "Running")
        assert set(template_replicasets(cluster, passing, ex)) == {"purple", "orange"}

        def both_runs_successful() -> Obj | None:
            now = experiment(cluster, passing, name)
            phases = {r["name"]: r["phase"] for r in now["status"].get("analysisRuns") or []}
            return now if phases == {"random-fail": "Successful", "pass": "Successful"} else None

        done = support.wait_for(both_runs_successful, what="both runs Successful", timeout=30)
        found = runs(cluster, passing, ex)
        assert {n: r["status"]["phase"] for n, r in found.items()} == {
            f"{name}-random-fail": "Successful",
            f"{name}-pass": "Successful",
        }
        # No duration and nothing required: it goes on.
        assert done["status"]["phase"] == "Running"
        time.sleep(1)
        assert experiment(cluster, passing, name)["status"]["phase"] == "Running"
        cluster.kubectl(
            "-n", passing, "patch", "experiment", name, "--type=merge", "-p", '{"spec":{"terminate":true}}'
        )
        ex = wait_phase(cluster, passing, name, "Successful")
        assert {t["status"] for t in ex["status"]["templateStatuses"]} == {"Successful"}

        def with_deadlines() -> dict[str, Obj] | None:
            rses = template_replicasets(cluster, passing, ex)
            return rses if rses and all(support.deadline_of(rs) for rs in rses.values()) else None

        rses = support.wait_for(with_deadlines, what="scale-down deadlines", timeout=10)
        assert {support.spec_replicas(rs) for rs in rses.values()} == {1}  # for 30 s more

    def fails() -> None:
        ex = wait_phase(cluster, failing, name, "Failed", timeout=40)
        message = 'Metric "random-fail" assessed Failed due to failed (2) > failureLimit (1)'
        assert ex["status"]["message"] == message
        entry = next(r for r in ex["status"]["analysisRuns"] if r["name"] == "random-fail")
        assert (entry["phase"], entry["analysisRun"]) == ("Failed", f"{name}-random-fail")
        assert "AnalysisRunFailed" in experiment_events(cluster, failing, ex)
        assert "ExperimentFailed" in experiment_events(cluster, failing, ex)

    in_parallel(passes, fails)
