"""ExperimentReconciler (tugboat.rollouts.experiments) against Argo Rollouts' experiment controller.

Experiments are created through the API of the bare ``argo_cluster`` API server and reconciled by hand
with a controlled clock, so ``duration``, ``progressDeadlineSeconds`` and ``scaleDownDelaySeconds`` are
tested without sleeping. There are no controllers in the bare cluster: the test plays the ReplicaSet
controller (it patches ReplicaSet status, as test_reconciler.py does) and the AnalysisRun controller (it
patches run phases), and reads every object back from the API before each reconcile, as the controller's
informers would.

Covered: ReplicaSets per template (name, hash label, annotations, owner, replicas, minReadySeconds,
selector), template statuses and their Events, Pending → Running (availableAt) → Successful after
``duration``, the scale-down delay, per-template Services (generated or named, ports, selector, deletion),
analyses (not before availability, names, args with the experiment's variables, dryRun,
measurementRetention, analysisRunMetadata), a failing run failing the experiment and terminating the other
runs, ``requiredForCompletion``, running until terminated, the progress deadline, InvalidSpec, a missing
AnalysisTemplate, ``retry`` (status cleared), conditions, the requeue delays, and the Experiment that a
Rollout's experiment step builds (:func:`experiments.experiment_for_step`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from clusterproc import ClusterProcess
from tugboat.kube import kinds
from tugboat.kube.client import Client, Obj
from tugboat.rollouts import crds, experiments, hashing
from tugboat.rollouts import replicasets as rsutil

HASH = rsutil.HASH_LABEL
T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
_installed: set[str] = set()


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def stamp(seconds: float) -> str:
    return rsutil.stamp(at(seconds))


def template(name: str, image: str = "demo:1", *, ports: list[Obj] | None = None, **extra: Any) -> Obj:
    container: Obj = {"name": "app", "image": image}
    if ports is not None:
        container["ports"] = ports
    return {
        "name": name,
        "selector": {"matchLabels": {"app": "demo", "variant": name}},
        "template": {
            "metadata": {"labels": {"app": "demo", "variant": name}},
            "spec": {"containers": [container]},
        },
        **extra,
    }


def web_template(name: str, *args: str) -> Obj:
    """An AnalysisTemplate (never measured here: the test plays the run controller)."""
    return {
        "metadata": {"name": name},
        "spec": {
            "args": [{"name": a} for a in args],
            "metrics": [{"name": "m", "provider": {"web": {"url": "http://metrics.invalid/x"}}}],
        },
    }


class Harness:
    """One Experiment in one namespace, reconciled by hand."""

    def __init__(self, client: Client, namespace: str, *, name: str = "exp") -> None:
        self.client = client
        self.namespace = namespace
        self.name = name
        self.events: list[tuple[str, str, str, str]] = []  # (kind of object, type, reason, message)
        self.reconciler = experiments.ExperimentReconciler(client, record=self._record)

    def _record(self, obj: Obj, kind: str, reason: str, message: str) -> None:
        self.events.append((str(obj.get("kind")), kind, reason, message))

    def reasons(self) -> list[str]:
        return [reason for _, _, reason, _ in self.events]

    async def create(self, spec: Obj, *, owner: Obj | None = None) -> Obj:
        meta: Obj = {"name": self.name, "namespace": self.namespace}
        if owner is not None:
            meta["ownerReferences"] = [owner]
        return await self.client.create(crds.EXPERIMENT, {"metadata": meta, "spec": spec})

    async def analysis_template(self, body: Obj) -> None:
        meta = {**body["metadata"], "namespace": self.namespace}
        await self.client.create(crds.ANALYSISTEMPLATE, {**body, "metadata": meta})

    async def experiment(self) -> Obj:
        return await self.client.get(crds.EXPERIMENT, self.name, self.namespace)

    async def status(self) -> Obj:
        found: Obj = (await self.experiment()).get("status") or {}
        return found

    async def _owned(self, kind: Any) -> list[Obj]:
        uid = (await self.experiment())["metadata"]["uid"]
        items, _ = await self.client.list(kind, self.namespace)
        return [
            o for o in items if any(r.get("uid") == uid for r in o["metadata"].get("ownerReferences") or [])
        ]

    async def replicasets(self) -> dict[str, Obj]:
        """The experiment's ReplicaSets by template name."""
        return {
            rs["metadata"]["annotations"][experiments.TEMPLATE_ANNOTATION]: rs
            for rs in await self._owned(kinds.REPLICASET)
        }

    async def replicas(self) -> dict[str, int]:
        return {name: rsutil.spec_replicas(rs) for name, rs in (await self.replicasets()).items()}

    async def services(self) -> dict[str, Obj]:
        return {svc["metadata"]["name"]: svc for svc in await self._owned(kinds.SERVICE)}

    async def runs(self) -> dict[str, Obj]:
        return {run["metadata"]["name"]: run for run in await self._owned(crds.ANALYSISRUN)}

    async def step(self, now: datetime) -> float | None:
        """One reconcile with the objects as the API has them now."""
        return await self.reconciler.reconcile(
            await self.experiment(),
            await self._owned(kinds.REPLICASET),
            await self._owned(kinds.SERVICE),
            await self._owned(crds.ANALYSISRUN),
            now=now,
        )

    async def make_available(self, template_name: str, count: int | None = None) -> None:
        """The ReplicaSet controller and kubelets: ``count`` (default spec.replicas) ready pods."""
        rs = (await self.replicasets())[template_name]
        n = rsutil.spec_replicas(rs) if count is None else count
        status = {"replicas": n, "readyReplicas": n, "availableReplicas": n, "fullyLabeledReplicas": n}
        await self.client.patch_status(
            kinds.REPLICASET, rs["metadata"]["name"], status, namespace=self.namespace
        )

    async def make_all_available(self) -> None:
        for name in await self.replicasets():
            await self.make_available(name)

    async def set_run(self, name: str, phase: str, message: str | None = None) -> None:
        """The AnalysisRun controller: the run's phase (AnalysisRuns have no status subresource)."""
        status: Obj = {"phase": phase}
        if message:
            status["message"] = message
        await self.client.patch(crds.ANALYSISRUN, name, {"status": status}, namespace=self.namespace)

    async def patch_spec(self, spec: Obj) -> None:
        await self.client.patch(crds.EXPERIMENT, self.name, {"spec": spec}, namespace=self.namespace)


@pytest.fixture
async def client(cluster: ClusterProcess) -> AsyncIterator[Client]:
    async with Client.from_kubeconfig(cluster.kubeconfig, field_manager="test-experiments") as c:
        if cluster.url not in _installed:
            await crds.install(c)
            _installed.add(cluster.url)
        yield c


@pytest.fixture
def h(client: Client, namespace: str) -> Harness:
    return Harness(client, namespace)


def entry(status: Obj, key: str, name: str) -> Obj:
    return next(e for e in status.get(key) or [] if e["name"] == name)


def condition(status: Obj, kind: str) -> Obj:
    return next(c for c in status.get("conditions") or [] if c["type"] == kind)


async def running(h: Harness, spec: Obj, *, now: float = 0) -> Obj:
    """Create the experiment and bring it to Running at ``now + 1``; returns its status."""
    await h.create(spec)
    await h.step(at(now))
    await h.make_all_available()
    await h.step(at(now + 1))
    status = await h.status()
    assert status["phase"] == "Running", status
    return status


# ------------------------------------------------------------------------------------ lifecycle


async def test_replicasets_per_template_then_running_then_successful_after_duration(h: Harness) -> None:
    spec = {
        "duration": "60s",
        "templates": [template("baseline", replicas=2, minReadySeconds=5), template("canary", "demo:2")],
    }
    await h.create(spec)
    await h.step(at(0))
    rses = await h.replicasets()
    assert set(rses) == {"baseline", "canary"}
    baseline = rses["baseline"]
    pod_hash = baseline["metadata"]["labels"][HASH]
    assert baseline["metadata"]["name"] == "exp-baseline"
    assert baseline["metadata"]["annotations"] == {
        experiments.NAME_ANNOTATION: "exp",
        experiments.TEMPLATE_ANNOTATION: "baseline",
    }
    owner = baseline["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["controller"]) == ("Experiment", "exp", True)
    assert baseline["spec"]["template"]["metadata"]["labels"] == {
        "app": "demo",
        "variant": "baseline",
        HASH: pod_hash,
    }
    assert baseline["spec"]["selector"] == {
        "matchLabels": {"app": "demo", "variant": "baseline", HASH: pod_hash}
    }
    assert baseline["spec"]["minReadySeconds"] == 5
    assert pod_hash == hashing.pod_template_hash(spec["templates"][0]["template"])
    assert pod_hash != rsutil.hash_of(rses["canary"])
    assert await h.replicas() == {"baseline": 2, "canary": 1}  # replicas default to 1
    status = await h.status()
    assert status["phase"] == "Pending"
    assert entry(status, "templateStatuses", "baseline") == {
        "name": "baseline",
        "replicas": 0,
        "updatedReplicas": 0,
        "readyReplicas": 0,
        "availableReplicas": 0,
        "status": "Progressing",
        "lastTransitionTime": stamp(0),
    }
    assert (
        "Experiment",
        "Normal",
        "ScalingReplicaSet",
        "Scaled up ReplicaSet exp-baseline from 0 to 2",
    ) in h.events
    assert (
        "Experiment",
        "Normal",
        "TemplateProgressing",
        "Template 'baseline' transitioned from  -> Progressing",
    ) in (h.events)
    assert (
        "Experiment",
        "Normal",
        "ExperimentPending",
        "Experiment transitioned from  -> Pending",
    ) in h.events

    # One template up is not enough.
    await h.make_available("baseline")
    await h.step(at(3))
    status = await h.status()
    assert status["phase"] == "Pending" and "availableAt" not in status
    assert entry(status, "templateStatuses", "baseline")["status"] == "Running"
    assert condition(status, "Progressing")["reason"] == "ReplicaSetUpdated"
    assert condition(status, "Progressing")["message"] == 'Experiment "exp" is progressing.'

    await h.make_available("canary")
    wake = await h.step(at(5))
    status = await h.status()
    assert (status["phase"], status["availableAt"]) == ("Running", stamp(5))
    assert entry(status, "templateStatuses", "canary") == {
        "name": "canary",
        "replicas": 1,
        "updatedReplicas": 1,
        "readyReplicas": 1,
        "availableReplicas": 1,
        "status": "Running",
        "lastTransitionTime": stamp(5),
    }
    assert wake == pytest.approx(60)  # the end of the duration
    wake = await h.step(at(6))
    assert wake == pytest.approx(59)
    status = await h.status()
    assert condition(status, "Progressing")["reason"] == "NewReplicaSetAvailable"
    assert condition(status, "Progressing")["message"] == 'Experiment "exp" is running.'
    assert (
        "Experiment",
        "Normal",
        "ExperimentRunning",
        "Experiment transitioned from Pending -> Running",
    ) in h.events

    # The duration is not over at exactly availableAt + duration.
    await h.step(at(65))
    assert (await h.status())["phase"] == "Running"
    await h.step(at(65.5))
    status = await h.status()
    assert status["phase"] == "Successful" and "message" not in status
    assert {e["status"] for e in status["templateStatuses"]} == {"Successful"}
    completed = condition(status, "Progressing")
    assert (completed["status"], completed["reason"]) == ("False", "ExperimentCompleted")
    assert completed["message"] == 'Experiment "exp" has successfully ran and completed.'
    assert (
        "Experiment",
        "Normal",
        "ExperimentSuccessful",
        "Experiment transitioned from Running -> Successful",
    ) in (h.events)
    assert await h.replicas() == {"baseline": 2, "canary": 1}

    # Ended: the ReplicaSets keep their pods scaleDownDelaySeconds (30 by default) longer.
    wake = await h.step(at(66))
    rses = await h.replicasets()
    assert {rsutil.deadline_of(rs) for rs in rses.values()} == {at(96)}
    assert await h.replicas() == {"baseline": 2, "canary": 1}
    assert wake == pytest.approx(30)
    await h.step(at(96.5))
    assert await h.replicas() == {"baseline": 0, "canary": 0}
    assert (
        "Experiment",
        "Normal",
        "ScalingReplicaSet",
        "Scaled down ReplicaSet exp-baseline from 2 to 0",
    ) in h.events
    await h.make_available("baseline", 0)
    await h.make_available("canary", 0)
    await h.step(at(97))
    status = await h.status()
    assert status["phase"] == "Successful"
    assert entry(status, "templateStatuses", "baseline")["availableReplicas"] == 0


async def test_zero_scale_down_delay_scales_down_at_once(h: Harness) -> None:
    await running(h, {"duration": "10s", "scaleDownDelaySeconds": 0, "templates": [template("a")]})
    await h.step(at(12))
    assert (await h.status())["phase"] == "Successful"
    await h.step(at(13))
    assert await h.replicas() == {"a": 0}
    assert rsutil.deadline_of((await h.replicasets())["a"]) is None


async def test_without_duration_or_required_analysis_it_runs_until_terminated(h: Harness) -> None:
    await running(h, {"templates": [template("a")]})
    assert await h.step(at(2)) is None  # nothing to wait for
    await h.step(at(100_000))
    assert (await h.status())["phase"] == "Running"
    await h.patch_spec({"terminate": True})
    await h.step(at(100_001))
    status = await h.status()
    assert status["phase"] == "Successful"
    assert entry(status, "templateStatuses", "a")["status"] == "Successful"
    # Terminating from the start of that reconcile: the scale-down delay already runs.
    assert rsutil.deadline_of((await h.replicasets())["a"]) == at(100_031)
    assert await h.replicas() == {"a": 1}


async def test_a_template_that_never_becomes_available_fails_at_the_progress_deadline(h: Harness) -> None:
    await h.create({"progressDeadlineSeconds": 30, "templates": [template("a"), template("b")]})
    await h.step(at(0))
    await h.make_available("b")
    wake = await h.step(at(1))
    assert wake == pytest.approx(29)  # a's deadline, counted from its last change
    await h.step(at(30))
    assert (await h.status())["phase"] == "Pending"
    await h.step(at(31))
    status = await h.status()
    message = "Template 'a' exceeded its progressDeadlineSeconds (30)"
    assert entry(status, "templateStatuses", "a")["status"] == "Failed"
    assert entry(status, "templateStatuses", "a")["message"] == message
    assert (status["phase"], status["message"]) == ("Failed", message)
    assert (
        "Experiment",
        "Warning",
        "TemplateFailed",
        f"Template 'a' transitioned from Progressing -> Failed: {message}",
    ) in (h.events)
    assert (
        "Experiment",
        "Warning",
        "ExperimentFailed",
        "Experiment transitioned from Pending -> Failed",
    ) in h.events
    await h.step(at(32))
    assert rsutil.deadline_of((await h.replicasets())["b"]) == at(62)


@pytest.mark.parametrize(
    ("templates", "message"),
    [
        ([{**template("a"), "selector": None}], "Rollout has missing field '.Spec.Templates[0].Selector'"),
        ([{**template("a"), "selector": {}}], experiments.SELECT_ALL_MESSAGE.format(0)),
        ([template("a"), template("a")], "Experiment exp has repeated template name 'a' in templates"),
        ([template("a", minReadySeconds=700)], experiments.MIN_READY_MESSAGE.format(0)),
    ],
)
async def test_an_invalid_spec_creates_nothing(h: Harness, templates: list[Obj], message: str) -> None:
    await h.create({"templates": templates})
    await h.step(at(0))
    status = await h.status()
    invalid = condition(status, "InvalidSpec")
    assert (invalid["status"], invalid["reason"], invalid["message"]) == ("True", "InvalidSpec", message)
    assert "phase" not in status
    assert await h.replicasets() == {}


# ------------------------------------------------------------------------------------ services


async def test_services_per_template_follow_the_replicaset_and_go_when_it_is_down(h: Harness) -> None:
    ports = [
        {"name": "http", "containerPort": 8080, "protocol": "TCP"},
        {"name": "metrics", "containerPort": 9090, "protocol": "TCP"},
    ]
    spec = {
        "duration": "10s",
        "scaleDownDelaySeconds": 5,
        "templates": [
            template("generated", ports=ports, service={}),
            template("named", ports=[{"containerPort": 8080}], service={"name": "my-svc"}),
            template("portless", service={}),
            template("none", ports=ports),
        ],
    }
    await running(h, spec)
    services = await h.services()
    assert set(services) == {"exp-generated", "my-svc"}
    generated = services["exp-generated"]
    rs = (await h.replicasets())["generated"]
    assert generated["spec"]["selector"] == rs["metadata"]["labels"]
    assert [(p["name"], p["port"], p["targetPort"], p["protocol"]) for p in generated["spec"]["ports"]] == [
        ("http", 8080, 8080, "TCP"),
        ("metrics", 9090, 9090, "TCP"),
    ]
    assert generated["metadata"]["annotations"] == {
        experiments.NAME_ANNOTATION: "exp",
        experiments.TEMPLATE_ANNOTATION: "generated",
    }
    assert generated["metadata"]["ownerReferences"][0]["kind"] == "Experiment"
    assert [(p["port"], p["targetPort"]) for p in services["my-svc"]["spec"]["ports"]] == [(8080, 8080)]
    status = await h.status()
    assert entry(status, "templateStatuses", "generated")["serviceName"] == "exp-generated"
    assert entry(status, "templateStatuses", "generated")["podTemplateHash"] == rsutil.hash_of(rs)
    assert entry(status, "templateStatuses", "named")["serviceName"] == "my-svc"
    assert "serviceName" not in entry(status, "templateStatuses", "portless")

    await h.step(at(12))  # Successful
    await h.step(at(13))  # scale-down deadline set; pods still up, so the Services stay
    assert set(await h.services()) == {"exp-generated", "my-svc"}
    await h.step(at(18.5))
    assert set((await h.replicas()).values()) == {0}
    await h.make_all_available()  # the pods are gone
    await h.step(at(19))
    assert await h.services() == {}
    status = await h.status()
    assert "serviceName" not in entry(status, "templateStatuses", "generated")
    assert "podTemplateHash" not in entry(status, "templateStatuses", "generated")


async def test_a_service_name_taken_by_someone_else_is_an_error(h: Harness) -> None:
    await h.client.create(
        kinds.SERVICE,
        {"metadata": {"name": "taken", "namespace": h.namespace}, "spec": {"ports": [{"port": 80}]}},
    )
    spec = {"templates": [template("a", ports=[{"containerPort": 80}], service={"name": "taken"})]}
    await h.create(spec)
    await h.step(at(0))
    status = await h.status()
    a = entry(status, "templateStatuses", "a")
    assert a["status"] == "Error"
    assert a["message"] == (
        "Failed to create Service taken for template 'a': "
        "service taken already exists and is not owned by experiment template a"
    )
    await h.step(at(1))
    assert (await h.status())["phase"] == "Error"


# ------------------------------------------------------------------------------------ analyses


async def test_analyses_start_once_available_with_the_experiment_variables(h: Harness) -> None:
    await h.analysis_template(web_template("compare", "baseline-hash", "canary-rs", "start", "end", "fixed"))
    spec = {
        "duration": "1h",
        "templates": [template("baseline"), template("canary", "demo:2")],
        "analyses": [
            {
                "name": "compare",
                "templateName": "compare",
                "args": [
                    {"name": "baseline-hash", "value": "{{ templates.baseline.podTemplateHash }}"},
                    {"name": "canary-rs", "value": "{{templates.canary.replicaset.name}}"},
                    {"name": "start", "value": "{{experiment.availableAt}}"},
                    {"name": "end", "value": "{{experiment.finishedAt}}"},
                    {"name": "fixed", "value": "42"},
                ],
            }
        ],
        "dryRun": [{"metricName": "m"}],
        "measurementRetention": [{"metricName": "m", "limit": 3}],
        "analysisRunMetadata": {"labels": {"team": "a"}, "annotations": {"note": "b"}},
    }
    await h.create(spec)
    await h.step(at(0))
    await h.make_all_available()
    await h.step(at(1))  # Running: availableAt is now set, but runs start from the next reconcile
    assert await h.runs() == {}
    status = await h.status()
    assert entry(status, "analysisRuns", "compare") == {"name": "compare", "analysisRun": "", "phase": ""}
    await h.step(at(2))
    runs = await h.runs()
    assert set(runs) == {"exp-compare"}
    run = runs["exp-compare"]
    baseline_hash = rsutil.hash_of((await h.replicasets())["baseline"])
    assert {a["name"]: a["value"] for a in run["spec"]["args"]} == {
        "baseline-hash": baseline_hash,
        "canary-rs": "exp-canary",
        "start": stamp(1),
        "end": stamp(3601),
        "fixed": "42",
    }
    assert run["spec"]["dryRun"] == [{"metricName": "m"}]
    assert run["spec"]["measurementRetention"] == [{"metricName": "m", "limit": 3}]
    assert run["metadata"]["labels"] == {"team": "a"}
    assert run["metadata"]["annotations"] == {"note": "b"}
    owner = run["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["controller"]) == ("Experiment", "exp", True)
    status = await h.status()
    assert entry(status, "analysisRuns", "compare") == {
        "name": "compare",
        "analysisRun": "exp-compare",
        "phase": "Pending",
    }
    assert (
        "Experiment",
        "Normal",
        "AnalysisRunPending",
        "AnalysisRun 'compare' transitioned from  -> Pending",
    ) in (h.events)
    await h.set_run("exp-compare", "Running")
    await h.step(at(3))
    assert entry(await h.status(), "analysisRuns", "compare")["phase"] == "Running"
    assert (await h.status())["phase"] == "Running"


async def test_a_failed_run_fails_the_experiment_and_terminates_the_others(h: Harness) -> None:
    await h.analysis_template(web_template("check"))
    spec = {
        "duration": "1h",
        "templates": [template("a")],
        "analyses": [{"name": "one", "templateName": "check"}, {"name": "two", "templateName": "check"}],
    }
    await running(h, spec)
    await h.step(at(2))
    await h.set_run("exp-one", "Running")
    await h.set_run("exp-two", "Running")
    await h.step(at(3))
    await h.set_run("exp-one", "Failed", 'Metric "m" assessed Failed due to failed (1) > failureLimit (0)')
    await h.step(at(4))
    status = await h.status()
    message = 'Metric "m" assessed Failed due to failed (1) > failureLimit (0)'
    assert (status["phase"], status["message"]) == ("Failed", message)
    assert entry(status, "analysisRuns", "one") == {
        "name": "one",
        "analysisRun": "exp-one",
        "phase": "Failed",
        "message": message,
    }
    assert (
        "Experiment",
        "Warning",
        "AnalysisRunFailed",
        f"AnalysisRun 'one' transitioned from Running -> Failed: {message}",
    ) in h.events
    assert await h.replicas() == {"a": 1}
    await h.step(at(5))  # terminating: the other run is asked to stop, the ReplicaSet to go later
    runs = await h.runs()
    assert runs["exp-two"]["spec"].get("terminate") is True
    assert "terminate" not in runs["exp-one"]["spec"]
    assert ("Experiment", "Normal", "AnalysisRunTerminating", "Terminating two (exp-two)") in h.events
    assert rsutil.deadline_of((await h.replicasets())["a"]) == at(35)
    # A terminated run that ends is still followed; the experiment's phase stays.
    await h.set_run("exp-two", "Successful")
    await h.step(at(6))
    status = await h.status()
    assert entry(status, "analysisRuns", "two")["phase"] == "Successful"
    assert status["phase"] == "Failed"


async def test_required_analysis_decides_completion(h: Harness) -> None:
    await h.analysis_template(web_template("check"))
    spec = {
        "templates": [template("a")],
        "analyses": [
            {"name": "required", "templateName": "check", "requiredForCompletion": True},
            {"name": "background", "templateName": "check"},
        ],
    }
    await running(h, spec)
    await h.step(at(2))
    await h.set_run("exp-required", "Running")
    await h.set_run("exp-background", "Running")
    await h.step(at(3))
    assert (await h.status())["phase"] == "Running"
    await h.set_run("exp-required", "Successful")
    await h.step(at(4))
    status = await h.status()
    assert status["phase"] == "Running"  # the background run is still going
    await h.step(at(5))  # the required run succeeded: the experiment ends, the background run is stopped
    assert (await h.runs())["exp-background"]["spec"].get("terminate") is True
    await h.set_run("exp-background", "Successful")
    await h.step(at(6))
    status = await h.status()
    assert (status["phase"], status["message"]) == ("Successful", experiments.REQUIRED_COMPLETED_MESSAGE)


async def test_a_required_analysis_outlives_the_duration(h: Harness) -> None:
    await h.analysis_template(web_template("check"))
    spec = {
        "duration": "10s",
        "templates": [template("a")],
        "analyses": [{"name": "required", "templateName": "check", "requiredForCompletion": True}],
    }
    await running(h, spec)
    await h.step(at(2))
    await h.set_run("exp-required", "Running")
    await h.step(at(20))
    status = await h.status()
    assert entry(status, "templateStatuses", "a")["status"] == "Successful"
    assert status["phase"] == "Running"
    await h.set_run("exp-required", "Successful")
    await h.step(at(30))
    status = await h.status()
    assert (status["phase"], status["message"]) == ("Successful", experiments.REQUIRED_COMPLETED_MESSAGE)


async def test_a_missing_analysis_template_is_an_error(h: Harness) -> None:
    spec = {"templates": [template("a")], "analyses": [{"name": "x", "templateName": "nope"}]}
    await h.create(spec)
    await h.step(at(0))
    status = await h.status()
    message = (
        "AnalysisTemplate verification failed for analysis 'x': "
        'analysistemplate.argoproj.io "nope" not found'
    )
    assert entry(status, "analysisRuns", "x") == {
        "name": "x",
        "analysisRun": "",
        "phase": "Error",
        "message": message,
    }
    await h.step(at(1))
    status = await h.status()
    assert (status["phase"], status["message"]) == ("Error", message)
    # Scaled up before the error was known; it goes once the scale-down delay is over.
    assert await h.replicas() == {"a": 1}
    assert rsutil.deadline_of((await h.replicasets())["a"]) == at(31)


async def test_an_unresolvable_arg_is_an_error(h: Harness) -> None:
    await h.analysis_template(web_template("check", "x"))
    spec = {
        "templates": [template("a")],
        "analyses": [
            {
                "name": "c",
                "templateName": "check",
                "args": [{"name": "x", "value": "{{templates.b.podTemplateHash}}"}],
            }
        ],
    }
    await running(h, spec)
    await h.step(at(2))
    status = await h.status()
    assert entry(status, "analysisRuns", "c")["message"] == (
        "Failed to create AnalysisRun for analysis 'c': failed to resolve {{templates.b.podTemplateHash}}"
    )
    assert (status["phase"], status["message"]) == ("Error", entry(status, "analysisRuns", "c")["message"])


async def test_retry_clears_the_status_and_runs_again(h: Harness) -> None:
    await h.analysis_template(web_template("check"))
    spec = {
        "duration": "10s",
        "templates": [template("a")],
        "analyses": [{"name": "c", "templateName": "check"}],
    }
    await running(h, spec)
    await h.step(at(2))
    await h.set_run("exp-c", "Failed")
    await h.step(at(3))
    await h.step(at(4))
    await h.step(at(40))
    assert await h.replicas() == {"a": 0}
    # kubectl argo rollouts retry experiment: {"status": null}
    await h.client.patch(crds.EXPERIMENT, h.name, {"status": None}, namespace=h.namespace)
    await h.make_available("a", 0)
    await h.step(at(50))
    rs = (await h.replicasets())["a"]
    assert rsutil.spec_replicas(rs) == 1 and rsutil.deadline_of(rs) is None
    await h.make_all_available()
    await h.step(at(51))
    await h.step(at(52))
    assert set(await h.runs()) == {"exp-c", "exp-c.1"}
    assert entry(await h.status(), "analysisRuns", "c")["analysisRun"] == "exp-c.1"


async def test_events_about_runs_reach_the_owning_rollout(h: Harness) -> None:
    await h.analysis_template(web_template("check"))
    rollout = await h.client.create(
        crds.ROLLOUT,
        {
            "metadata": {"name": "ro", "namespace": h.namespace},
            "spec": {"selector": {"matchLabels": {"app": "x"}}, "template": {"spec": {"containers": []}}},
        },
    )
    owner = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "name": "ro",
        "uid": rollout["metadata"]["uid"],
        "controller": True,
    }
    await h.create(
        {"templates": [template("a")], "analyses": [{"name": "c", "templateName": "check"}]}, owner=owner
    )
    await h.step(at(0))
    await h.make_all_available()
    await h.step(at(1))
    await h.step(at(2))
    assert (
        "Rollout",
        "Warning",
        "AnalysisRunPending",
        "AnalysisRun 'c' transitioned from  -> Pending",
    ) in h.events


# ------------------------------------------------------------------------------------ Rollout step


def _rollout_and_replicasets() -> tuple[Obj, Obj, Obj]:
    def rs(pod_hash: str, image: str) -> Obj:
        labels = {"app": "demo", HASH: pod_hash}
        return {
            "metadata": {"name": f"ro-{pod_hash}", "labels": labels},
            "spec": {
                "replicas": 3,
                "minReadySeconds": 7,
                "selector": {"matchLabels": dict(labels)},
                "template": {
                    "metadata": {"labels": dict(labels)},
                    "spec": {"containers": [{"name": "app", "image": image}]},
                },
            },
        }

    ro = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {
            "name": "ro",
            "namespace": "ns",
            "uid": "ro-uid",
            "labels": {"team": "x"},
            "annotations": {rsutil.REVISION: "2"},
        },
        "spec": {"progressDeadlineSeconds": 120, "selector": {"matchLabels": {"app": "demo"}}},
    }
    return ro, rs("new", "demo:2"), rs("old", "demo:1")


def test_experiment_for_step_builds_upstreams_experiment() -> None:
    ro, new_rs, stable_rs = _rollout_and_replicasets()
    step = {
        "experiment": {
            "duration": "5m",
            "scaleDownDelaySeconds": 10,
            "dryRun": [{"metricName": ".*"}],
            "measurementRetention": [{"metricName": ".*", "limit": 2}],
            "analysisRunMetadata": {"labels": {"a": "b"}},
            "templates": [
                {"name": "baseline", "specRef": "stable", "replicas": 1, "weight": 5},
                {
                    "name": "canary",
                    "specRef": "canary",
                    "service": {"name": "canary-svc"},
                    "selector": {"matchLabels": {"app": "demo", "exp": "yes"}},
                    "metadata": {"labels": {"role": "exp"}, "annotations": {"note": "n"}},
                },
                {"name": "plain", "specRef": "canary"},
            ],
            "analyses": [
                {
                    "name": "compare",
                    "templateName": "mann-whitney",
                    "requiredForCompletion": True,
                    "args": [
                        {"name": "stable-hash", "valueFrom": {"podTemplateHashValue": "Stable"}},
                        {"name": "latest-hash", "valueFrom": {"podTemplateHashValue": "Latest"}},
                        {"name": "canary", "value": "{{templates.canary.podTemplateHash}}"},
                        {"name": "team", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['team']"}}},
                    ],
                },
                {"name": "cluster", "templateName": "t", "clusterScope": True},
            ],
        }
    }
    ex = experiments.experiment_for_step(ro, step, step_index=3, new_rs=new_rs, stable_rs=stable_rs)
    assert ex["metadata"]["name"] == "ro-new-2-3"
    assert ex["metadata"]["namespace"] == "ns"
    assert ex["metadata"]["labels"] == {"team": "x", HASH: "new"}
    assert ex["metadata"]["annotations"] == {rsutil.REVISION: "2"}
    owner = ex["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
        "Rollout",
        "ro",
        "ro-uid",
        True,
    )
    spec = ex["spec"]
    assert spec["duration"] == "5m" and spec["progressDeadlineSeconds"] == 120
    assert spec["scaleDownDelaySeconds"] == 10
    assert spec["dryRun"] == [{"metricName": ".*"}]
    assert spec["measurementRetention"] == [{"metricName": ".*", "limit": 2}]
    assert spec["analysisRunMetadata"] == {"labels": {"a": "b"}}
    baseline, canary, plain = spec["templates"]
    assert baseline["template"] == stable_rs["spec"]["template"]
    assert baseline["selector"] == stable_rs["spec"]["selector"]
    assert (baseline["replicas"], baseline["minReadySeconds"], baseline["service"]) == (1, 7, {})
    assert "weight" not in baseline
    assert canary["service"] == {"name": "canary-svc"}
    assert canary["selector"] == {"matchLabels": {"app": "demo", "exp": "yes", "role": "exp"}}
    assert canary["template"]["metadata"]["labels"] == {"app": "demo", HASH: "new", "role": "exp"}
    assert canary["template"]["metadata"]["annotations"] == {"note": "n"}
    assert "replicas" not in canary
    assert "service" not in plain
    compare, cluster = spec["analyses"]
    assert compare["requiredForCompletion"] is True
    assert compare["args"] == [
        {"name": "stable-hash", "value": "old"},
        {"name": "latest-hash", "value": "new"},
        {"name": "canary", "value": "{{templates.canary.podTemplateHash}}"},
        {"name": "team", "value": "x"},
    ]
    assert cluster == {"name": "cluster", "templateName": "t", "clusterScope": True}
    # The step's own mapping works as well as the step.
    again = experiments.experiment_for_step(
        ro, step["experiment"], step_index=3, new_rs=new_rs, stable_rs=stable_rs
    )
    assert again == ex
    assert new_rs["spec"]["template"]["metadata"]["labels"] == {
        "app": "demo",
        HASH: "new",
    }  # inputs untouched


def test_experiment_for_step_rejects_a_bad_spec_ref() -> None:
    ro, new_rs, stable_rs = _rollout_and_replicasets()
    bad = {"templates": [{"name": "x", "specRef": "preview"}]}
    with pytest.raises(experiments.ExperimentSpecError, match="must be canary or stable"):
        experiments.experiment_for_step(ro, bad, step_index=0, new_rs=new_rs, stable_rs=stable_rs)
    stable = {"templates": [{"name": "x", "specRef": "stable"}]}
    with pytest.raises(experiments.ExperimentSpecError):
        experiments.experiment_for_step(ro, stable, step_index=0, new_rs=new_rs, stable_rs=None)


async def test_a_step_experiment_runs_the_rollouts_pod_specs_under_new_hashes(h: Harness) -> None:
    """Upstream's e2e check: the experiment's pods have the Rollout ReplicaSets' pod specs, but their own
    pod-template hashes (so the Rollout's Services never select them)."""
    ro, new_rs, stable_rs = _rollout_and_replicasets()
    ro = await h.client.create(
        crds.ROLLOUT,
        {
            "metadata": {"name": "ro", "namespace": h.namespace, "annotations": {rsutil.REVISION: "2"}},
            "spec": {"selector": {"matchLabels": {"app": "demo"}}, "template": new_rs["spec"]["template"]},
        },
    )
    stored = []
    for rs in (new_rs, stable_rs):
        rs["metadata"]["namespace"] = h.namespace
        stored.append(await h.client.create(kinds.REPLICASET, rs))  # the API server defaults the pod specs
    step = {"templates": [{"name": "canary", "specRef": "canary"}, {"name": "baseline", "specRef": "stable"}]}
    body = experiments.experiment_for_step(ro, step, step_index=0, new_rs=stored[0], stable_rs=stored[1])
    h.name = body["metadata"]["name"]
    await h.client.create(crds.EXPERIMENT, body)
    await h.step(at(0))
    rses = await h.replicasets()
    assert rses["canary"]["spec"]["template"]["spec"] == stored[0]["spec"]["template"]["spec"]
    assert rses["baseline"]["spec"]["template"]["spec"] == stored[1]["spec"]["template"]["spec"]
    hashes = {rsutil.hash_of(rs) for rs in rses.values()}
    assert len(hashes) == 2 and not hashes & {"new", "old"}
