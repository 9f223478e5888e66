"""The Job and CronJob controllers: pure scheduling/counting logic, then against real clusters.

Three layers: pure functions (cron parsing and firing times with an injected clock, job names, index
sets); a cluster running only the job and cronjob controllers, where the test plays the kubelet through
``/status`` so every step is deterministic; and the full simulation with kubectl (kubeapi.md §5 check 38).
A CronJob is made due without waiting for the clock by moving its ``status.lastScheduleTime`` back.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sim_support import controllers_cluster, stamp, wait_for
from workload_support import Api, condition, live, names

from clusterproc import ClusterProcess
from tugboat.localcluster.controllers import cron
from tugboat.localcluster.controllers.cronjob import (
    SCHEDULED_TIMESTAMP,
    job_for,
    job_name,
    most_recent_schedule,
    next_sync_in,
    schedule_of,
)
from tugboat.localcluster.controllers.job import (
    COMPLETION_INDEX,
    TRACKING_FINALIZER,
    backoff_delay,
    format_indexes,
    parse_indexes,
    pod_from_template,
)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# ------------------------------------------------------------------------------------- cron (pure)


def test_cron_fields_ranges_steps_lists_and_names() -> None:
    schedule = cron.parse("*/15 9-17/4 1,15 jan-mar,dec mon-fri")
    assert schedule.minutes == frozenset({0, 15, 30, 45})
    assert schedule.hours == frozenset({9, 13, 17})
    assert schedule.days == frozenset({1, 15})
    assert schedule.months == frozenset({1, 2, 3, 12})
    assert schedule.weekdays == frozenset({1, 2, 3, 4, 5})
    assert cron.parse("5/20 * * * *").minutes == frozenset({5, 25, 45})
    assert cron.parse("@hourly").minutes == frozenset({0})
    assert cron.parse("@weekly").weekdays == frozenset({0})
    assert cron.parse("0 0 ? * SUN").weekdays == frozenset({0})


@pytest.mark.parametrize(
    "bad",
    [
        "* * * *",
        "60 * * * *",
        "* 24 * * *",
        "* * 0 * *",
        "* * * 13 *",
        "* * * * 7",
        "*/0 * * * *",
        "5-1 * * * *",
        "@fortnightly",
        "a * * * *",
        "1,,2 * * * *",
    ],
)
def test_cron_rejects_malformed_schedules(bad: str) -> None:
    with pytest.raises(cron.CronError):
        cron.parse(bad)


def test_cron_next_and_previous_firing() -> None:
    every_minute = cron.parse("* * * * *")
    assert every_minute.next_after(utc(2024, 5, 1, 10, 0, 30)) == utc(2024, 5, 1, 10, 1)
    assert every_minute.next_after(utc(2024, 5, 1, 10, 1)) == utc(2024, 5, 1, 10, 2)
    assert every_minute.last_at_or_before(utc(2024, 5, 1, 10, 1)) == utc(2024, 5, 1, 10, 1)
    monthly = cron.parse("30 6 31 * *")
    assert monthly.next_after(utc(2024, 4, 1)) == utc(2024, 5, 31, 6, 30)  # April has no 31st
    assert monthly.last_at_or_before(utc(2024, 5, 30)) == utc(2024, 3, 31, 6, 30)
    leap = cron.parse("0 0 29 2 *")
    assert leap.next_after(utc(2024, 3, 1)) == utc(2028, 2, 29)


def test_cron_day_of_month_or_day_of_week() -> None:
    # Both restricted: either matches (the 13th, or any Friday).
    either = cron.parse("0 0 13 * 5")
    assert either.next_after(utc(2024, 9, 1)) == utc(2024, 9, 6)  # a Friday before the 13th
    # Day of month '*': the weekday must match.
    fridays = cron.parse("0 0 * * 5")
    assert fridays.next_after(utc(2024, 9, 7)) == utc(2024, 9, 13)
    assert cron.parse("0 0 */2 * 5").next_after(utc(2024, 9, 1)) == utc(2024, 9, 3)  # */2 is no star


def test_cron_time_zone_and_daylight_saving() -> None:
    nine_am = cron.parse("0 9 * * *", time_zone="America/New_York")
    assert nine_am.next_after(utc(2024, 3, 9, 15)) == utc(2024, 3, 10, 13)  # EDT from March 10
    assert nine_am.next_after(utc(2024, 3, 8, 15)) == utc(2024, 3, 9, 14)  # EST before
    assert cron.parse("TZ=Europe/Paris 0 12 * * *").tz == ZoneInfo("Europe/Paris")
    gap = cron.parse("30 2 * * *", time_zone="America/New_York")  # 02:30 does not exist on March 10
    assert gap.next_after(utc(2024, 3, 9, 8)) == utc(2024, 3, 11, 6, 30)
    with pytest.raises(cron.CronError):
        cron.parse("* * * * *", time_zone="Mars/Olympus_Mons")


# --------------------------------------------------------------------------------- cronjob (pure)


def cronjob(schedule: str = "* * * * *", **spec: object) -> dict[str, object]:
    return {
        "metadata": {
            "name": "nightly",
            "namespace": "ns",
            "uid": "u1",
            "creationTimestamp": "2024-05-01T10:00:30Z",
        },
        "spec": {
            "schedule": schedule,
            "jobTemplate": {"metadata": {"labels": {"a": "b"}}, "spec": {}},
            **spec,
        },
        "status": {},
    }


def test_most_recent_schedule_and_next_sync() -> None:
    cj = cronjob()
    schedule = schedule_of(cj)
    assert most_recent_schedule(cj, schedule, utc(2024, 5, 1, 10, 0, 50)).time is None  # created after 10:00
    due = most_recent_schedule(cj, schedule, utc(2024, 5, 1, 10, 3, 5))
    assert due.time == utc(2024, 5, 1, 10, 3) and due.missed == 3
    cj["status"] = {"lastScheduleTime": "2024-05-01T10:03:00Z"}
    assert most_recent_schedule(cj, schedule, utc(2024, 5, 1, 10, 3, 40)).time is None
    assert next_sync_in(cj, schedule, utc(2024, 5, 1, 10, 3, 40)) == pytest.approx(20.1)


def test_starting_deadline_limits_the_missed_window() -> None:
    cj = cronjob(startingDeadlineSeconds=30)
    schedule = schedule_of(cj)
    due = most_recent_schedule(cj, schedule, utc(2024, 5, 2, 10, 0, 10))
    assert due.time == utc(2024, 5, 2, 10) and due.missed == 1  # only the window's times count
    assert most_recent_schedule(cj, schedule, utc(2024, 5, 2, 10, 0, 40)).time is None


def test_job_for_a_schedule_time() -> None:
    cj = cronjob(timeZone="Europe/Paris")
    scheduled = utc(2024, 5, 1, 10, 3)
    job = job_for(cj, scheduled)
    assert job_name(cj, scheduled) == f"nightly-{int(scheduled.timestamp()) // 60}" == job["metadata"]["name"]
    assert job["metadata"]["labels"] == {"a": "b"}
    assert job["metadata"]["annotations"][SCHEDULED_TIMESTAMP] == "2024-05-01T12:03:00+02:00"
    owner = job["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["uid"], owner["controller"]) == ("CronJob", "u1", True)


# ------------------------------------------------------------------------------------- job (pure)


def test_index_sets_and_backoff() -> None:
    assert parse_indexes("0-2,5,7-8") == {0, 1, 2, 5, 7, 8}
    assert format_indexes({0, 1, 2, 5, 7, 8}) == "0-2,5,7-8"
    assert format_indexes(set()) == ""
    assert [backoff_delay(n) for n in range(5)] == [0, 10, 20, 40, 80]
    assert backoff_delay(20) == 360


def test_indexed_pod_template() -> None:
    job = {
        "metadata": {"name": "j", "namespace": "ns", "uid": "u"},
        "spec": {"template": {"metadata": {"labels": {"x": "y"}}, "spec": {"containers": [{"name": "c"}]}}},
    }
    pod = pod_from_template(job, 2)
    assert pod["metadata"]["generateName"] == "j-2-"
    assert pod["metadata"]["annotations"][COMPLETION_INDEX] == "2"
    assert pod["metadata"]["labels"] == {"x": "y", COMPLETION_INDEX: "2"}
    assert pod["metadata"]["finalizers"] == [TRACKING_FINALIZER]
    assert pod["spec"]["hostname"] == "j-2"
    assert pod["spec"]["containers"][0]["env"][0]["name"] == "JOB_COMPLETION_INDEX"


# ---------------------------------------------------------------------- controllers-only cluster


@pytest.fixture(scope="module")
def jobs_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterProcess]:
    yield from controllers_cluster(tmp_path_factory, "jobs", "job,cronjob")


_namespaces = itertools.count()


@pytest.fixture
def api(jobs_cluster: ClusterProcess) -> Api:
    namespace = f"jobs-{next(_namespaces)}"
    with jobs_cluster.client() as client:
        assert client.post("/api/v1/namespaces", json={"metadata": {"name": namespace}}).status_code == 201
    return Api(jobs_cluster, namespace)


def job_manifest(name: str, **spec: object) -> dict[str, object]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "template": {
                "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}
            },
            **spec,
        },
    }


def active_pods(api: Api, job: str, count: int) -> list[dict[str, object]]:
    def check() -> list[dict[str, object]] | None:
        pods = [p for p in live(api.pods(**{"job-name": job})) if p["status"].get("phase") == "Pending"]
        return pods if len(pods) == count else None

    return wait_for(check, what=f"{count} active pods of {job}")


def test_job_runs_pods_to_completion(api: Api) -> None:
    api.create("jobs", job_manifest("j", completions=3, parallelism=2))
    first = active_pods(api, "j", 2)
    assert all(TRACKING_FINALIZER in p["metadata"]["finalizers"] for p in first)
    assert all(p["metadata"]["ownerReferences"][0]["kind"] == "Job" for p in first)
    job = wait_for(lambda: (j := api.get("jobs", "j")) and j["status"].get("active") == 2 and j)
    assert job["status"]["startTime"] and job["status"]["ready"] == 0
    api.ready(first[0]["metadata"]["name"])
    wait_for(lambda: api.get("jobs", "j")["status"].get("ready") == 1, what="ready 1")
    for pod in first:
        api.set_pod(pod["metadata"]["name"], "Succeeded")
    last = active_pods(api, "j", 1)
    job = wait_for(lambda: (j := api.get("jobs", "j")) and j["status"].get("succeeded") == 2 and j)
    assert not job["status"].get("uncountedTerminatedPods")
    done = api.get("pods", first[0]["metadata"]["name"])
    assert TRACKING_FINALIZER not in (done["metadata"].get("finalizers") or [])
    api.set_pod(last[0]["metadata"]["name"], "Succeeded")
    job = wait_for(lambda: (j := api.get("jobs", "j")) and condition(j, "Complete") and j, what="Complete")
    kinds = [c["type"] for c in job["status"]["conditions"]]
    assert kinds == ["SuccessCriteriaMet", "Complete"]
    complete = condition(job, "Complete")
    assert complete["reason"] == "CompletionsReached"
    assert complete["message"] == "Reached expected number of succeeded pods"
    assert job["status"]["succeeded"] == 3 and job["status"]["completionTime"]
    assert "active" not in job["status"] and job["status"]["terminating"] == 0
    wait_for(lambda: ("Completed", "Job completed") in api.events("j"), what="Completed event")
    created = [m for r, m in api.events("j") if r == "SuccessfulCreate"]
    assert len(created) == 3 and all(m.startswith("Created pod: j-") for m in created)
    table = api.cluster.kubectl("get", "jobs", "-n", api.namespace).stdout
    assert "Complete" in table and "3/3" in table


def test_job_fails_after_backoff_limit(api: Api) -> None:
    api.create("jobs", job_manifest("f", backoffLimit=0))
    pod = active_pods(api, "f", 1)[0]
    api.set_pod(pod["metadata"]["name"], "Failed", exit_code=1)
    job = wait_for(lambda: (j := api.get("jobs", "f")) and condition(j, "Failed") and j, what="Failed")
    assert [c["type"] for c in job["status"]["conditions"]] == ["FailureTarget", "Failed"]
    failed = condition(job, "Failed")
    assert (failed["reason"], failed["message"]) == (
        "BackoffLimitExceeded",
        "Job has reached the specified backoff limit",
    )
    assert job["status"]["failed"] == 1 and "completionTime" not in job["status"]
    wait_for(
        lambda: ("BackoffLimitExceeded", "Job has reached the specified backoff limit") in api.events("f"),
        what="BackoffLimitExceeded event",
    )
    assert "Failed" in api.cluster.kubectl("get", "job", "f", "-n", api.namespace).stdout


def test_job_active_deadline(api: Api) -> None:
    # The deadline runs from the job's start, so the test does not wait to see the pods in between (a
    # slow machine could miss them); two failed pods prove both were started and then killed.
    api.create("jobs", job_manifest("d", activeDeadlineSeconds=2, parallelism=2, completions=4))
    job = wait_for(
        lambda: (j := api.get("jobs", "d")) and condition(j, "Failed") and j, what="Failed", timeout=20
    )
    assert condition(job, "FailureTarget")["reason"] == "DeadlineExceeded"
    assert condition(job, "Failed")["message"] == "Job was active longer than specified deadline"
    assert job["status"]["failed"] == 2 and job["status"]["terminating"] == 0
    wait_for(lambda: not api.pods(**{"job-name": "d"}), what="pods deleted")


def test_job_suspend_and_resume(api: Api) -> None:
    api.create("jobs", job_manifest("s", suspend=True))
    job = wait_for(lambda: (j := api.get("jobs", "s")) and condition(j, "Suspended") and j, what="Suspended")
    assert condition(job, "Suspended")["reason"] == "JobSuspended"
    assert not api.pods(**{"job-name": "s"}) and "startTime" not in job["status"]
    api.patch("jobs", "s", {"spec": {"suspend": False}})
    pod = active_pods(api, "s", 1)[0]
    job = wait_for(
        lambda: (j := api.get("jobs", "s")) and condition(j, "Suspended")["status"] == "False" and j
    )
    assert condition(job, "Suspended")["reason"] == "JobResumed" and job["status"]["startTime"]
    api.patch("jobs", "s", {"spec": {"suspend": True}})
    wait_for(lambda: not api.pods(**{"job-name": "s"}), what="pods deleted on suspend")
    job = wait_for(
        lambda: (j := api.get("jobs", "s")) and condition(j, "Suspended")["status"] == "True" and j
    )
    assert not job["status"].get("failed")  # pods removed by suspension are not failures
    assert pod["metadata"]["name"] not in names(api.pods())


def test_indexed_job_and_ttl(api: Api) -> None:
    api.create(
        "jobs",
        job_manifest("ix", completions=3, parallelism=3, completionMode="Indexed", ttlSecondsAfterFinished=1),
    )
    pods = active_pods(api, "ix", 3)
    indexes = sorted(p["metadata"]["annotations"][COMPLETION_INDEX] for p in pods)
    assert indexes == ["0", "1", "2"]
    assert sorted(p["spec"]["hostname"] for p in pods) == ["ix-0", "ix-1", "ix-2"]
    for pod in pods:
        api.set_pod(pod["metadata"]["name"], "Succeeded")
    job = wait_for(lambda: (j := api.get("jobs", "ix")) and condition(j, "Complete") and j, what="Complete")
    assert job["status"]["completedIndexes"] == "0-2" and job["status"]["succeeded"] == 3
    wait_for(lambda: api.get("jobs", "ix") is None, timeout=20, what="job deleted by its TTL")


def test_deleting_a_job_releases_its_pods(api: Api) -> None:
    api.create("jobs", job_manifest("del", parallelism=2, completions=2))
    active_pods(api, "del", 2)
    api.delete("jobs", "del", propagationPolicy="Background")
    # The garbage collector deletes the pods; the job controller must drop its finalizer so they go.
    wait_for(lambda: not api.pods(**{"job-name": "del"}), what="pods gone after the job was deleted")


# ------------------------------------------------------------------------------------ cronjobs


def cronjob_manifest(name: str, **spec: object) -> dict[str, object]:
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name},
        "spec": {
            "schedule": "* * * * *",
            "suspend": True,
            "jobTemplate": {
                "metadata": {"labels": {"from": name}},
                "spec": {
                    "template": {
                        "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}
                    }
                },
            },
            **spec,
        },
    }


def minute(moment: datetime) -> int:
    return int(moment.timestamp()) // 60


def make_due(api: Api, name: str, *, minutes_ago: int = 3) -> None:
    """Pretend the CronJob last ran a few minutes ago, so the latest minute is due now."""
    last = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=minutes_ago)
    api.patch("cronjobs", name, {"status": {"lastScheduleTime": stamp(last)}}, sub="status")


def test_cronjob_creates_a_job_when_due(api: Api) -> None:
    cj = api.create("cronjobs", cronjob_manifest("tick"))
    make_due(api, "tick")
    before = minute(datetime.now(UTC))
    api.patch("cronjobs", "tick", {"spec": {"suspend": False}})
    job = wait_for(lambda: (jobs := api.list("jobs")) and jobs[0], what="a job")
    assert job["metadata"]["name"] in (f"tick-{before}", f"tick-{before + 1}")
    assert job["metadata"]["labels"]["from"] == "tick"
    assert job["metadata"]["ownerReferences"][0]["uid"] == cj["metadata"]["uid"]
    assert job["metadata"]["annotations"][SCHEDULED_TIMESTAMP].endswith("Z")
    status = wait_for(
        lambda: (c := api.get("cronjobs", "tick")) and c["status"].get("active") and c["status"]
    )
    assert status["active"][0]["name"] == job["metadata"]["name"]
    assert status["lastScheduleTime"] == stamp(
        datetime.fromtimestamp(int(job["metadata"]["name"][5:]) * 60, UTC)
    )
    assert ("SuccessfulCreate", f"Created job {job['metadata']['name']}") in api.events("tick")
    pod = active_pods(api, job["metadata"]["name"], 1)[0]
    api.set_pod(pod["metadata"]["name"], "Succeeded")
    status = wait_for(
        lambda: (c := api.get("cronjobs", "tick")) and c["status"].get("lastSuccessfulTime") and c["status"]
    )
    assert "active" not in status
    assert any(r == "SawCompletedJob" for r, _ in api.events("tick"))
    assert not any(r == "UnexpectedJob" for r, _ in api.events("tick"))
    assert "tick" in api.cluster.kubectl("get", "cronjobs", "-n", api.namespace).stdout


@pytest.mark.parametrize("policy", ["Forbid", "Replace"])
def test_cronjob_concurrency_policy(api: Api, policy: str) -> None:
    cj = api.create("cronjobs", cronjob_manifest("cc", concurrencyPolicy=policy))
    old_minute = minute(datetime.now(UTC)) - 5
    old = job_manifest(f"cc-{old_minute}")
    old["metadata"]["ownerReferences"] = [
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "name": "cc",
            "uid": cj["metadata"]["uid"],
            "controller": True,
        }
    ]
    created = api.create("jobs", old)
    ref = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "name": created["metadata"]["name"],
        "namespace": api.namespace,
        "uid": created["metadata"]["uid"],
    }
    api.patch(
        "cronjobs",
        "cc",
        {
            "status": {
                "active": [ref],
                "lastScheduleTime": stamp(datetime.fromtimestamp(old_minute * 60, UTC)),
            }
        },
        sub="status",
    )
    api.patch("cronjobs", "cc", {"spec": {"suspend": False}})
    if policy == "Forbid":
        wait_for(lambda: any(r == "JobAlreadyActive" for r, _ in api.events("cc")), what="JobAlreadyActive")
        assert names(api.list("jobs")) == [f"cc-{old_minute}"]
    else:
        wait_for(lambda: api.get("jobs", f"cc-{old_minute}") is None, what="old job replaced")
        jobs = wait_for(lambda: api.list("jobs"), what="new job")
        assert jobs[0]["metadata"]["name"] != f"cc-{old_minute}"
        assert ("SuccessfulDelete", f"Deleted job cc-{old_minute}") in api.events("cc")


def test_cronjob_history_limit(api: Api) -> None:
    cj = api.create("cronjobs", cronjob_manifest("hist", successfulJobsHistoryLimit=1))
    made = []
    for offset in (10, 9):
        job = job_manifest(f"hist-{minute(datetime.now(UTC)) - offset}")
        job["metadata"]["ownerReferences"] = [
            {
                "apiVersion": "batch/v1",
                "kind": "CronJob",
                "name": "hist",
                "uid": cj["metadata"]["uid"],
                "controller": True,
            }
        ]
        made.append(api.create("jobs", job)["metadata"]["name"])
        pod = active_pods(api, made[-1], 1)[0]
        api.set_pod(pod["metadata"]["name"], "Succeeded")
        wait_for(lambda n=made[-1]: condition(api.get("jobs", n), "Complete"), what="complete")
    wait_for(lambda: names(live(api.list("jobs"))) == [made[1]], what="oldest finished job deleted")


# ----------------------------------------------------------------------------- full simulation


@pytest.mark.kubectl
def test_kubectl_wait_for_job_complete_and_failed(sim_cluster: ClusterProcess, sim_namespace: str) -> None:
    """kubeapi.md §5 check 38, with the real kubectl against the whole simulation."""
    ns = sim_namespace
    good = """
apiVersion: batch/v1
kind: Job
metadata: {name: j}
spec:
  completions: 3
  parallelism: 2
  template:
    spec:
      restartPolicy: Never
      containers: [{name: c, image: busybox}]
"""
    bad = """
apiVersion: batch/v1
kind: Job
metadata: {name: bad}
spec:
  backoffLimit: 1
  template:
    metadata:
      annotations: {sim.tugboat.dev/exit-code: "1", sim.tugboat.dev/run-for: "200ms"}
    spec:
      restartPolicy: Never
      containers: [{name: c, image: busybox}]
"""
    sim_cluster.kubectl("apply", "-n", ns, "-f", "-", input=good)
    sim_cluster.kubectl("apply", "-n", ns, "-f", "-", input=bad)
    result = sim_cluster.kubectl("wait", "-n", ns, "--for=condition=Complete", "job/j", "--timeout=60s")
    assert "condition met" in result.stdout
    succeeded = sim_cluster.kubectl("get", "job", "j", "-n", ns, "-o", "jsonpath={.status.succeeded}").stdout
    assert succeeded == "3"
    table = sim_cluster.kubectl("get", "jobs", "-n", ns).stdout
    assert "3/3" in table
    pods = sim_cluster.kubectl("get", "pods", "-n", ns, "-l", "job-name=j").stdout
    assert pods.count("Completed") == 3
    sim_cluster.kubectl("wait", "-n", ns, "--for=condition=Failed", "job/bad", "--timeout=60s")
    reason = sim_cluster.kubectl(
        "get", "job", "bad", "-n", ns, "-o", 'jsonpath={.status.conditions[?(@.type=="Failed")].reason}'
    ).stdout
    assert reason == "BackoffLimitExceeded"
    assert sim_cluster.kubectl("get", "job", "bad", "-n", ns, "-o", "jsonpath={.status.failed}").stdout == "2"
