"""RBAC (``tugboat.server.rbac``): Argo CD's policy CSV, glob and regex matching, deny rules, roles and
groups, the default role, the built-in roles, overlays, and the policy read live from ``argocd-rbac-cm``."""

from __future__ import annotations

import logging

import pytest
import server_support

from tugboat.kube.client import Client
from tugboat.server import rbac

ROLLOUT_ACTIONS = ("get", "promote", "abort", "retry", "pause", "undo", "restart", "update")


def _decider(policy: str = "", **extra: str) -> rbac.Decider:
    return rbac.from_configmap({"policy.csv": policy, **extra})


# -------------------------------------------------------------------------------------------- parsing


def test_parse_csv_skips_comments_and_defaults_effect_to_allow() -> None:
    rules = rbac.parse_csv(
        """
        # a comment
        p, role:dev, applications, get, dev/*, allow

        p,role:dev,applications,sync,dev/*
        p, "role:x", logs, get, "*", deny
        g, alice, role:dev
        """
    )
    assert rules.policies == (
        ("role:dev", "applications", "get", "dev/*", "allow"),
        ("role:dev", "applications", "sync", "dev/*", "allow"),
        ("role:x", "logs", "get", "*", "deny"),
    )
    assert rules.bindings == (("alice", "role:dev"),)


@pytest.mark.parametrize(
    "line",
    [
        "p, role:dev, applications, get",  # too few fields
        "p, role:dev, applications, get, */*, maybe",  # unknown effect
        "g, alice",  # binding without a role
        "x, alice, role:dev",  # unknown line type
        "p, role:dev, , get, */*, allow",  # empty field
    ],
)
def test_parse_csv_rejects_malformed_lines(line: str) -> None:
    with pytest.raises(rbac.PolicyError, match=r"policy\.csv line 2"):
        rbac.parse_csv(f"g, bob, role:readonly\n{line}")


# ------------------------------------------------------------------------------------------- matching


@pytest.mark.parametrize(
    ("value", "pattern", "expected"),
    [
        ("default/guestbook", "*", True),
        ("default/guestbook", "default/*", True),
        ("default/ns/guestbook", "default/*", True),  # '*' crosses '/' as in Argo CD
        ("prod/guestbook", "default/*", False),
        ("action/apps/Deployment/restart", "action/*", True),
        ("sync", "action/*", False),
        ("dev1/app", "dev?/app", True),
        ("dev12/app", "dev?/app", False),
        ("staging/app", "{dev,staging}/*", True),
        ("prod/app", "{dev,staging}/*", False),
        ("b/app", "[abc]/*", True),
        ("d/app", "[!abc]/*", True),
        ("a.b", "a.b", True),
        ("axb", "a.b", False),  # '.' is literal in a glob
    ],
)
def test_glob_matching(value: str, pattern: str, expected: bool) -> None:
    assert rbac.matches(value, pattern) is expected


def test_regex_match_mode() -> None:
    decider = _decider(
        "p, role:dev, applications, get, ^dev-[0-9]+/.*$, allow\ng, alice, role:dev",
        **{"policy.matchMode": "regex"},
    )
    assert decider.enforce("alice", [], "applications", "get", "dev-1/app")
    assert not decider.enforce("alice", [], "applications", "get", "dev-x/app")
    assert decider.enforce("admin", [], "applications", "delete", "any/app")  # built-ins still work


# ------------------------------------------------------------------------------------------ decisions


def test_builtin_admin_may_do_everything_and_others_nothing() -> None:
    decider = _decider()
    for action in ("get", "create", "update", "delete", "sync", "override", "action/apps/Deployment/x"):
        assert decider.enforce("admin", [], "applications", action, "default/app")
    for action in ROLLOUT_ACTIONS:
        assert decider.enforce("admin", [], "rollouts", action, "ns/demo")
    assert decider.enforce("admin", [], "accounts", "update", "alice")
    assert not decider.enforce("alice", [], "applications", "get", "default/app")
    assert not decider.enforce("", [], "applications", "get", "default/app")


def test_readonly_role_gets_but_changes_nothing() -> None:
    decider = _decider("g, viewer, role:readonly")
    for resource in (
        "applications",
        "applicationsets",
        "certificates",
        "clusters",
        "repositories",
        "projects",
        "accounts",
        "gpgkeys",
        "logs",
        "rollouts",
    ):
        assert decider.enforce("viewer", [], resource, "get", "default/app"), resource
    assert not decider.enforce("viewer", [], "applications", "sync", "default/app")
    for action in ROLLOUT_ACTIONS[1:]:
        assert not decider.enforce("viewer", [], "rollouts", action, "ns/demo")


def test_deny_wins_over_allow_for_one_subject() -> None:
    decider = _decider(
        """
        p, role:ops, applications, *, *, allow
        p, role:ops, applications, delete, prod/*, deny
        g, carol, role:ops
        """
    )
    assert decider.enforce("carol", [], "applications", "delete", "dev/app")
    assert decider.enforce("carol", [], "applications", "sync", "prod/app")
    assert not decider.enforce("carol", [], "applications", "delete", "prod/app")


def test_groups_and_nested_roles() -> None:
    decider = _decider(
        """
        p, role:deployer, applications, sync, default/*, allow
        g, role:lead, role:deployer
        g, my-org:team-a, role:lead
        p, bob, logs, get, default/*, allow
        """
    )
    assert decider.enforce("dave", ["other", "my-org:team-a"], "applications", "sync", "default/app")
    assert not decider.enforce("dave", ["other"], "applications", "sync", "default/app")
    assert not decider.enforce("dave", ["my-org:team-a"], "applications", "sync", "prod/app")
    assert decider.enforce("bob", [], "logs", "get", "default/app")  # a policy on a user directly


def test_subjects_are_decided_one_by_one_like_argocd() -> None:
    # Argo CD allows when any one subject (default role, user, a group) is allowed on its own, so a
    # deny on the user does not cancel what one of its groups allows.
    decider = _decider(
        """
        p, erin, applications, sync, default/*, deny
        p, team, applications, sync, default/*, allow
        """
    )
    assert not decider.enforce("erin", [], "applications", "sync", "default/app")
    assert decider.enforce("erin", ["team"], "applications", "sync", "default/app")


def test_default_role_applies_to_every_user() -> None:
    decider = _decider("", **{"policy.default": "role:readonly"})
    assert decider.enforce("anyone", [], "applications", "get", "default/app")
    assert not decider.enforce("anyone", [], "applications", "sync", "default/app")
    assert not rbac.from_configmap(None).enforce("anyone", [], "applications", "get", "default/app")


def test_overlays_are_concatenated_in_key_order() -> None:
    data = {
        "policy.csv": "p, role:dev, applications, *, dev/*, allow\ng, alice, role:dev",
        "policy.b-deny.csv": "p, role:dev, applications, delete, dev/*, deny",
        "policy.a-more.csv": "p, role:dev, logs, get, dev/*, allow",
        "policy.default": "",
    }
    rules = rbac.configured_rules(data)
    assert [p[1:3] for p in rules.policies] == [
        ("applications", "*"),
        ("logs", "get"),
        ("applications", "delete"),
    ]
    decider = rbac.from_configmap(data)
    assert decider.enforce("alice", [], "logs", "get", "dev/app")
    assert decider.enforce("alice", [], "applications", "sync", "dev/app")
    assert not decider.enforce("alice", [], "applications", "delete", "dev/app")


def test_unusable_policies_raise() -> None:
    with pytest.raises(rbac.PolicyError, match=r"policy\.extra\.csv line 1"):
        rbac.from_configmap({"policy.extra.csv": "p, nonsense"})
    with pytest.raises(rbac.PolicyError, match="matchMode"):
        rbac.from_configmap({"policy.matchMode": "fuzzy"})
    with pytest.raises(rbac.PolicyError, match="regex pattern"):
        rbac.from_configmap(
            {"policy.csv": "p, a, applications, get, (unclosed, allow", "policy.matchMode": "regex"}
        )


# ------------------------------------------------------------------------------- live from the cluster


client = server_support.client_fixture("test-rbac")
namespace = server_support.namespace_fixture("rbac")


async def test_policy_follows_the_configmap_without_restart(client: Client, namespace: str) -> None:
    policy = rbac.Policy(client, namespace=namespace)
    # No ConfigMap: built-in policy, no default role.
    assert await policy.enforce("admin", [], "applications", "sync", "default/app")
    assert not await policy.enforce("alice", [], "applications", "get", "default/app")

    await server_support.set_rbac(client, namespace, {"policy.default": "role:readonly"})
    assert await policy.enforce("alice", [], "applications", "get", "default/app")
    assert not await policy.enforce("alice", [], "applications", "sync", "default/app")

    await server_support.set_rbac(
        client,
        namespace,
        {"policy.default": "role:readonly", "policy.csv": "g, alice, role:admin"},
    )
    assert await policy.enforce("alice", [], "applications", "sync", "default/app")


async def test_malformed_policy_leaves_only_admin(
    client: Client, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    policy = rbac.Policy(client, namespace=namespace)
    await server_support.set_rbac(
        client, namespace, {"policy.default": "role:readonly", "policy.csv": "g, alice, role:admin"}
    )
    assert await policy.enforce("alice", [], "applications", "sync", "default/app")

    with caplog.at_level(logging.ERROR, logger="tugboat.server.rbac"):
        await server_support.set_rbac(
            client, namespace, {"policy.default": "role:readonly", "policy.csv": "p, broken"}
        )
        assert not await policy.enforce("alice", [], "applications", "get", "default/app")
        assert await policy.enforce("admin", [], "applications", "sync", "default/app")
    assert "invalid" in caplog.text and "policy.csv line 1" in caplog.text

    await server_support.set_rbac(client, namespace, {"policy.default": "role:readonly"})
    assert await policy.enforce("alice", [], "applications", "get", "default/app")
