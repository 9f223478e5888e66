"""Sync order: phases, waves, Helm's kind order, names, and dependency moves."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tugboat.gitops import hooks, ordering


@dataclass(frozen=True)
class Task:
    """A stand-in for a sync task: what the ordering needs to know about one resource."""

    kind: str
    name: str
    namespace: str = ""
    group: str = ""
    phase: str = "Sync"
    wave: int = 0
    defines: tuple[str, str] | None = None  # for CRDs: the (group, kind) they define
    target: bool = True

    def key(self) -> ordering.ItemKey:
        return (self.phase, self.wave, self.group, self.kind, self.namespace, self.name)


def key(task: Task) -> ordering.ItemKey:
    return task.key()


def crd_target(task: Task) -> tuple[str, str] | None:
    return task.defines


def is_target(task: Task) -> bool:
    return task.target


def names(tasks: list[Task]) -> list[str]:
    return [f"{t.kind}/{t.name}" for t in tasks]


def test_kind_order_table() -> None:
    assert ordering.KIND_ORDER[0] == "Namespace"
    assert ordering.KIND_ORDER[-1] == "APIService"
    assert len(ordering.KIND_ORDER) == 35
    assert ordering.KIND_ORDER.index("IngressClass") + 1 == ordering.KIND_ORDER.index("Ingress")
    assert ordering.kind_rank("Namespace") == 0
    assert ordering.kind_rank("CustomResourceDefinition") < ordering.kind_rank("Service")
    assert ordering.kind_rank("Rollout") == ordering.kind_rank("Certificate") == len(ordering.KIND_ORDER)


def test_phase_order() -> None:
    assert ordering.PHASE_ORDER == {"PreSync": -1, "Sync": 0, "PostSync": 1, "SyncFail": 2}
    assert ordering.phase_rank("PreDelete") == 0


def test_sort_key_compares_phase_then_wave_then_kind_then_name() -> None:
    def k(**kw: Any) -> tuple[Any, ...]:
        base = {"phase": "Sync", "wave": 0, "group": "", "kind": "ConfigMap", "namespace": "", "name": "a"}
        return ordering.sort_key(**{**base, **kw})

    assert k(phase="PreSync", wave=10) < k(phase="Sync", wave=-10)
    assert k(wave=-1, kind="Deployment") < k(wave=0, kind="Namespace")
    assert k(kind="Namespace", name="z") < k(kind="ConfigMap", name="a")
    assert k(name="a") < k(name="b")
    assert k(kind="APIService", name="z") < k(kind="Rollout", name="a")


def test_known_kinds_follow_helm_order_and_unknown_kinds_come_last() -> None:
    tasks = [
        Task("Rollout", "web", "ns", "argoproj.io"),
        Task("Deployment", "web", "ns", "apps"),
        Task("Service", "web", "ns"),
        Task("ConfigMap", "web", "ns"),
        Task("Namespace", "ns"),
        Task("Ingress", "web", "ns", "networking.k8s.io"),
        Task("ServiceAccount", "web", "ns"),
    ]
    assert names(ordering.order(tasks, key)) == [
        "Namespace/ns",
        "ServiceAccount/web",
        "ConfigMap/web",
        "Service/web",
        "Deployment/web",
        "Ingress/web",
        "Rollout/web",
    ]


def test_unknown_kinds_interleave_by_name() -> None:
    # gitops-engine gives every unknown kind the same rank, so names decide (kinds are not grouped).
    tasks = [
        Task("Rollout", "b", "ns", "argoproj.io"),
        Task("AnalysisTemplate", "c", "ns", "argoproj.io"),
        Task("Certificate", "a", "ns", "cert-manager.io"),
    ]
    assert names(ordering.order(tasks, key)) == ["Certificate/a", "Rollout/b", "AnalysisTemplate/c"]


def test_kind_rank_ignores_the_group() -> None:
    tasks = [Task("Service", "b", "ns", "serving.knative.dev"), Task("ConfigMap", "z", "ns")]
    assert names(ordering.order(tasks, key)) == ["ConfigMap/z", "Service/b"]


def test_ties_are_broken_deterministically_then_stable() -> None:
    a = Task("Widget", "same", "ns", "b.example.com")
    b = Task("Gadget", "same", "ns", "a.example.com")
    c = Task("Widget", "same", "ns", "a.example.com")
    assert ordering.order([a, b, c], key) == [b, c, a]
    assert ordering.order([c, b, a], key) == [b, c, a]
    # Identical keys keep their input order.
    first, second = Task("ConfigMap", "x", "ns"), Task("ConfigMap", "x", "ns", target=False)
    assert ordering.order([second, first], key) == [second, first]
    assert ordering.order([first, second], key) == [first, second]


def test_phases_and_waves_come_first() -> None:
    tasks = [
        Task("Job", "fail", "ns", "batch", phase="SyncFail", wave=-5),
        Task("Job", "post", "ns", "batch", phase="PostSync", wave=-5),
        Task("Deployment", "late", "ns", "apps", wave=2),
        Task("Deployment", "early", "ns", "apps", wave=-1),
        Task("Namespace", "ns", wave=1),
        Task("ConfigMap", "cm", "ns"),
        Task("Job", "pre", "ns", "batch", phase="PreSync", wave=7),
    ]
    assert names(ordering.order(tasks, key)) == [
        "Job/pre",
        "Deployment/early",
        "ConfigMap/cm",
        "Namespace/ns",  # order() never moves an item out of its wave
        "Deployment/late",
        "Job/post",
        "Job/fail",
    ]


def test_schedule_moves_a_namespace_into_the_wave_of_its_first_resource() -> None:
    tasks = [
        Task("Namespace", "ns", wave=1),
        Task("ConfigMap", "cm", "ns"),
        Task("Deployment", "web", "ns", "apps", wave=2),
    ]
    placed = ordering.schedule(tasks, key)
    assert [(names([p.item])[0], p.phase, p.wave) for p in placed] == [
        ("Namespace/ns", "Sync", 0),
        ("ConfigMap/cm", "Sync", 0),
        ("Deployment/web", "Sync", 2),
    ]


def test_schedule_moves_a_namespace_into_an_earlier_phase() -> None:
    tasks = [Task("Namespace", "ns"), Task("Job", "migrate", "ns", "batch", phase="PreSync", wave=3)]
    placed = ordering.schedule(tasks, key)
    assert [(p.item.name, p.phase, p.wave) for p in placed] == [
        ("ns", "PreSync", 3),
        ("migrate", "PreSync", 3),
    ]


def test_schedule_keeps_namespaces_that_already_come_first() -> None:
    tasks = [Task("ConfigMap", "cm", "ns", wave=3), Task("Namespace", "ns")]
    placed = ordering.schedule(tasks, key)
    assert [(p.item.kind, p.wave) for p in placed] == [("Namespace", 0), ("ConfigMap", 3)]


def test_schedule_several_namespaces() -> None:
    tasks = [
        Task("ConfigMap", "a", "one"),
        Task("ConfigMap", "b", "two"),
        Task("Namespace", "one", wave=1),
        Task("Namespace", "two", wave=1),
        Task("Namespace", "unused", wave=1),
    ]
    placed = ordering.schedule(tasks, key)
    assert [(names([p.item])[0], p.wave) for p in placed] == [
        ("Namespace/one", 0),
        ("ConfigMap/a", 0),
        ("Namespace/two", 0),
        ("ConfigMap/b", 0),
        ("Namespace/unused", 1),
    ]


def test_schedule_moves_a_crd_before_its_custom_resources() -> None:
    crd = Task(
        "CustomResourceDefinition",
        "widgets.example.com",
        group="apiextensions.k8s.io",
        wave=5,
        defines=("example.com", "Widget"),
    )
    tasks = [crd, Task("Widget", "w1", "ns", "example.com"), Task("Gadget", "g", "ns", "example.com")]
    placed = ordering.schedule(tasks, key, crd_target=crd_target)
    assert [(p.item.name, p.wave) for p in placed] == [("g", 0), ("widgets.example.com", 0), ("w1", 0)]
    # Without crd_target nothing is known about what the CRD defines.
    assert [p.item.name for p in ordering.schedule(tasks, key)] == ["g", "w1", "widgets.example.com"]


def test_order_moves_a_crd_within_its_wave() -> None:
    # A custom kind named like a built-in one sorts before CRDs by kind rank; the CRD must still go first.
    crd = Task(
        "CustomResourceDefinition",
        "configmaps.example.com",
        group="apiextensions.k8s.io",
        defines=("example.com", "ConfigMap"),
    )
    custom = Task("ConfigMap", "mine", "ns", "example.com")
    core = Task("ConfigMap", "core", "ns")
    assert ordering.order([custom, core, crd], key, crd_target=crd_target) == [core, crd, custom]
    # Another wave: left alone by order(), moved by schedule().
    later = Task(
        "CustomResourceDefinition",
        "configmaps.example.com",
        group="apiextensions.k8s.io",
        wave=1,
        defines=("example.com", "ConfigMap"),
    )
    assert ordering.order([later, custom], key, crd_target=crd_target) == [custom, later]
    assert [p.item for p in ordering.schedule([later, custom], key, crd_target=crd_target)] == [later, custom]


def test_items_without_target_take_no_part_in_moves() -> None:
    pruned_namespace = Task("Namespace", "ns", wave=1, target=False)
    cm = Task("ConfigMap", "cm", "ns")
    placed = ordering.schedule([pruned_namespace, cm], key, is_target=is_target)
    assert [(p.item, p.wave) for p in placed] == [(cm, 0), (pruned_namespace, 1)]
    # A pruned resource does not pull a Namespace forward either.
    pruned_cm = Task("ConfigMap", "cm", "ns", target=False)
    namespace = Task("Namespace", "ns", wave=1)
    placed = ordering.schedule([namespace, pruned_cm], key, is_target=is_target)
    assert [(p.item, p.wave) for p in placed] == [(pruned_cm, 0), (namespace, 1)]


def test_only_core_namespaces_count() -> None:
    fake = Task("Namespace", "ns", group="example.com", wave=1)
    cm = Task("ConfigMap", "cm", "ns")
    assert [p.item for p in ordering.schedule([fake, cm], key)] == [cm, fake]


def test_crd_target_of() -> None:
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "rollouts.argoproj.io"},
        "spec": {"group": "argoproj.io", "names": {"kind": "Rollout", "plural": "rollouts"}},
    }
    assert ordering.crd_target_of(crd) == ("argoproj.io", "Rollout")
    assert ordering.crd_target_of({**crd, "spec": {"group": "argoproj.io"}}) is None
    assert ordering.crd_target_of({**crd, "spec": None}) is None
    assert ordering.crd_target_of({**crd, "apiVersion": "example.com/v1"}) is None
    assert ordering.crd_target_of({"apiVersion": "v1", "kind": "ConfigMap"}) is None
    assert ordering.crd_target_of(None) is None


def test_empty_input() -> None:
    assert ordering.order([], key) == []
    assert ordering.schedule([], key) == []


def manifest(api_version: str, kind: str, name: str, **annotations: str) -> dict[str, Any]:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": name, "namespace": "demo", "annotations": annotations},
    }


@pytest.mark.parametrize("reverse", [False, True])
def test_sync_waves_example_shape(reverse: bool) -> None:
    """argocd-example-apps' sync-waves folder, as (phase, manifest) tasks."""
    objs = [
        manifest("batch/v1", "Job", "upgrade-sql-schema", **{hooks.HOOK_ANNOTATION: "PreSync"}),
        manifest("apps/v1", "ReplicaSet", "backend"),
        manifest("v1", "Service", "backend"),
        manifest(
            "batch/v1",
            "Job",
            "maint-page-up",
            **{hooks.HOOK_ANNOTATION: "Sync", hooks.SYNC_WAVE_ANNOTATION: "1"},
        ),
        manifest("apps/v1", "ReplicaSet", "frontend", **{hooks.SYNC_WAVE_ANNOTATION: "2"}),
        manifest("v1", "Service", "frontend", **{hooks.SYNC_WAVE_ANNOTATION: "2"}),
        manifest(
            "batch/v1",
            "Job",
            "maint-page-down",
            **{hooks.HOOK_ANNOTATION: "Sync", hooks.SYNC_WAVE_ANNOTATION: "3"},
        ),
    ]
    tasks = [(phase, obj) for obj in objs for phase in hooks.sync_phases(obj)]
    if reverse:
        tasks.reverse()

    def task_key(task: tuple[str, dict[str, Any]]) -> ordering.ItemKey:
        phase, obj = task
        group = obj["apiVersion"].rpartition("/")[0]
        meta = obj["metadata"]
        return (phase, hooks.wave(obj), group, obj["kind"], meta["namespace"], meta["name"])

    ordered = ordering.order(tasks, task_key)
    assert [(phase, obj["kind"], obj["metadata"]["name"]) for phase, obj in ordered] == [
        ("PreSync", "Job", "upgrade-sql-schema"),
        ("Sync", "Service", "backend"),
        ("Sync", "ReplicaSet", "backend"),
        ("Sync", "Job", "maint-page-up"),
        ("Sync", "Service", "frontend"),
        ("Sync", "ReplicaSet", "frontend"),
        ("Sync", "Job", "maint-page-down"),
    ]
