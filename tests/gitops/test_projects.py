"""AppProject enforcement matches Argo CD: repositories, destinations, resource kinds, source namespaces,
malformed projects and the exact condition messages."""

from __future__ import annotations

from typing import Any

import pytest

from tugboat.gitops import crds, errors, projects

IN_CLUSTER = "https://kubernetes.default.svc"


def project(**spec: Any) -> projects.Project:
    return projects.Project.from_object({"metadata": {"name": "team"}, "spec": spec})


def repos_permit(patterns: list[str], url: str) -> bool:
    return project(sourceRepos=patterns).source_permitted(url)


def dests_permit(entries: list[dict[str, str]], *, server: str = "", name: str = "", namespace: str) -> bool:
    return project(destinations=entries).destination_permitted(server=server, name=name, namespace=namespace)


# --- the default project --------------------------------------------------------------------------------


def test_default_project_permits_everything() -> None:
    default = projects.Project.from_object(crds.default_project("argocd"))
    assert default.name == "default"
    assert default.source_permitted("https://github.com/argoproj/argocd-example-apps.git")
    assert default.source_permitted("git@gitlab.com:group/sub/repo.git")
    assert default.source_permitted("/srv/git/local-repo")
    assert default.destination_permitted(server=IN_CLUSTER, name="in-cluster", namespace="guestbook")
    assert default.destination_permitted(server=IN_CLUSTER, name="in-cluster", namespace="")
    assert default.resource_permitted(group="", kind="Namespace", namespaced=False, name="team-a")
    assert default.resource_permitted(
        group="apiextensions.k8s.io", kind="CustomResourceDefinition", namespaced=False
    )
    assert default.resource_permitted(group="apps", kind="Deployment", namespaced=True)
    assert default.resource_permitted(group="argoproj.io", kind="Rollout", namespaced=True)
    message = projects.violations(
        default,
        repo_url="https://example.com/repo",
        destination_server=IN_CLUSTER,
        destination_name="in-cluster",
        destination_namespace="default",
    )
    assert message == []


def test_empty_project_permits_nothing() -> None:
    empty = projects.Project.from_object({"metadata": {"name": "empty"}})
    assert not empty.source_permitted("https://github.com/a/b")
    assert not empty.destination_permitted(server=IN_CLUSTER, name="in-cluster", namespace="default")
    assert not empty.resource_permitted(group="", kind="Namespace", namespaced=False)
    assert empty.resource_permitted(group="", kind="ConfigMap", namespaced=True)


# --- source repositories --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("patterns", "url", "permitted"),
    [
        (["*"], "https://github.com/argoproj/test.git", True),
        (["https://github.com/argoproj/test.git"], "https://github.com/argoproj/test.git", True),
        (["https://github.com/argoproj/test"], "https://github.com/argoproj/test.git", True),
        (["https://github.com/argoproj/test.git"], "https://github.com/argoproj/test/", True),
        (["https://GitHub.com/ArgoProj/Test"], "https://github.com/argoproj/test", True),
        (["ssh://git@GITHUB.com:argoproj/test"], "ssh://git@github.com:argoproj/test", True),
        (["git@github.com:argoproj/*"], "ssh://git@github.com/argoproj/test.git", True),
        (["https://github.com/argoproj/*"], "https://github.com/argoproj/argoproj.git", True),
        (
            ["https://github.com/test1/test.git", "https://github.com/test2/test.git"],
            "https://github.com/test2/test",
            True,
        ),
        (["https://github.com/argoproj/test1.git"], "https://github.com/argoproj/test2.git", False),
        (["https://github.com/argoproj/*.git"], "https://github.com/argoproj1/test2.git", False),
        (["https://github.com/argoproj/foo"], "https://github.com/argoproj/foo1", False),
        # ``*`` stays inside one path segment, ``**`` crosses them; a lone ``*`` matches everything
        (["https://gitlab.com/group/*"], "https://gitlab.com/group/repo/owner", False),
        (["https://gitlab.com/group/*/*"], "https://gitlab.com/group/repo/owner", True),
        (["https://gitlab.com/group/**"], "https://gitlab.com/group/sub-group/repo/owner", True),
        (["https://github.com/{team-a,team-b}/*"], "https://github.com/team-b/app", True),
        (["https://github.com/team-[ab]/*"], "https://github.com/team-c/app", False),
        (["https://github.com/app-?"], "https://github.com/app-1", True),
        # credentials in the URL are not part of its identity
        (["https://github.com/a/*"], "https://user:s3cret@github.com/a/b.git", True),
        # local repositories keep the case of their path
        (["/srv/git/*"], "file:///srv/git/app", True),
        (["file:///srv/Git/*"], "/srv/git/app", False),
    ],
)
def test_source_repo_globs(patterns: list[str], url: str, permitted: bool) -> None:
    assert repos_permit(patterns, url) is permitted


@pytest.mark.parametrize(
    ("patterns", "url", "permitted"),
    [
        (["!https://github.com/argoproj/test.git"], "https://github.com/argoproj/test.git", False),
        (["!https://github.com/argoproj/*"], "https://github.com/argoproj/argoproj.git", False),
        (
            ["https://github.com/test1/test.git", "!https://github.com/test2/test.git"],
            "https://github.com/test2/test",
            False,
        ),
        (["!https://gitlab.com/group/**", "*"], "https://gitlab.com/group/sub-group/repo/owner", False),
        (["*", "!https://gitlab.com/group/**"], "https://gitlab.com/group/repo", False),
        (["!https://github.com/argoproj/*.git", "*"], "https://github.com/argoproj1/test2.git", True),
        # upstream: a deny entry that does not reject the repository counts as a match for it
        (["!https://github.com/evil/*"], "https://github.com/good/app", True),
    ],
)
def test_source_repo_deny_entries(patterns: list[str], url: str, permitted: bool) -> None:
    assert repos_permit(patterns, url) is permitted


def test_normalize_repo_url() -> None:
    assert projects.normalize_repo_url(" https://GitHub.com/Org/Repo.git/ ") == "https://github.com/org/repo"
    assert projects.normalize_repo_url("git@github.com:org/repo.git") == "git@github.com/org/repo"
    assert projects.normalize_repo_url("ssh://git@github.com/org/repo") == "git@github.com/org/repo"
    assert projects.normalize_repo_url("ssh://git@github.com:2222/org/repo") == "git@github.com:2222/org/repo"
    assert projects.normalize_repo_url("https://tok@github.com/org/repo") == "https://github.com/org/repo"
    assert projects.normalize_repo_url("/srv/Git/app.git") == "file:///srv/Git/app"


# --- destinations ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entries", "server", "name", "namespace", "permitted"),
    [
        ([{"server": IN_CLUSTER, "namespace": "default"}], IN_CLUSTER, "", "default", True),
        ([{"server": IN_CLUSTER, "namespace": "default"}], IN_CLUSTER, "", "kube-system", False),
        ([{"server": "https://my-cluster", "namespace": "default"}], IN_CLUSTER, "", "default", False),
        ([{"server": "https://*.default.svc", "namespace": "default"}], IN_CLUSTER, "", "default", True),
        ([{"server": IN_CLUSTER, "namespace": "test-*"}], IN_CLUSTER, "", "test-foo", True),
        ([{"server": IN_CLUSTER, "namespace": "test-*"}], IN_CLUSTER, "", "test", False),
        ([{"server": "*", "namespace": "*"}], "https://a/b/c", "", "x", True),
        ([{"name": "test", "namespace": "*"}], "", "test", "test", True),
        ([{"name": "test2", "namespace": "*"}], "", "test", "test", False),
        # Tugboat passes both the server and the name of the cluster; either may match
        ([{"name": "in-cluster", "namespace": "*"}], IN_CLUSTER, "in-cluster", "default", True),
        ([{"server": IN_CLUSTER, "namespace": "*"}], IN_CLUSTER, "in-cluster", "default", True),
        ([{"name": "other", "namespace": "*"}], IN_CLUSTER, "in-cluster", "default", False),
        # cluster-scoped Applications (namespace ""): ``*`` matches it, a named namespace does not
        ([{"server": "*", "namespace": "*"}], IN_CLUSTER, "in-cluster", "", True),
        ([{"server": "*", "namespace": "default"}], IN_CLUSTER, "in-cluster", "", False),
        ([{"server": "*", "namespace": "{dev,prod}-*"}], IN_CLUSTER, "", "prod-eu", True),
    ],
)
def test_destination_globs(
    entries: list[dict[str, str]], server: str, name: str, namespace: str, permitted: bool
) -> None:
    assert dests_permit(entries, server=server, name=name, namespace=namespace) is permitted


@pytest.mark.parametrize(
    ("entries", "server", "name", "namespace", "permitted"),
    [
        ([{"server": f"!{IN_CLUSTER}", "namespace": "default"}], IN_CLUSTER, "", "default", False),
        ([{"server": IN_CLUSTER, "namespace": "!default"}], IN_CLUSTER, "", "kube-system", True),
        ([{"server": "!https://my-cluster", "namespace": "default"}], IN_CLUSTER, "", "default", True),
        ([{"server": IN_CLUSTER, "namespace": "!test-*"}], IN_CLUSTER, "", "test-foo", False),
        ([{"name": "!test", "namespace": "*"}], "", "test", "test", False),
        ([{"name": "!test2", "namespace": "*"}], "", "test", "test", True),
        (
            [{"server": "*", "namespace": "*"}, {"server": "*", "namespace": "!kube-system"}],
            IN_CLUSTER,
            "",
            "kube-system",
            False,
        ),
        (
            [{"server": "*", "namespace": "*"}, {"server": f"!{IN_CLUSTER}", "namespace": "kube-system"}],
            IN_CLUSTER,
            "",
            "kube-system",
            False,
        ),
        (
            [
                {"server": "*", "namespace": "*"},
                {"server": f"!{IN_CLUSTER}", "namespace": "kube-system"},
                {"server": "*", "namespace": "!kube-system"},
            ],
            IN_CLUSTER,
            "",
            "default",
            True,
        ),
        (
            [{"server": "*", "namespace": "test"}, {"server": "!https://test-server", "namespace": "other"}],
            "https://test-server",
            "",
            "test",
            True,
        ),
        (
            [
                {"name": "host", "server": IN_CLUSTER, "namespace": "!{kube-system,argocd}"},
                {"name": "eks", "server": "https://eks.example.com", "namespace": "*"},
            ],
            "https://eks.example.com",
            "",
            "kube-system",
            True,
        ),
        (
            [{"server": IN_CLUSTER, "namespace": "!{kube-system,argocd}"}],
            IN_CLUSTER,
            "in-cluster",
            "argocd",
            False,
        ),
    ],
)
def test_destination_deny_entries(
    entries: list[dict[str, str]], server: str, name: str, namespace: str, permitted: bool
) -> None:
    assert dests_permit(entries, server=server, name=name, namespace=namespace) is permitted


# --- resources ------------------------------------------------------------------------------------------


def test_cluster_resources_are_denied_unless_whitelisted() -> None:
    plain = project()
    assert not plain.resource_permitted(group="", kind="Namespace", namespaced=False)
    assert not project(clusterResourceWhitelist=[]).resource_permitted(
        group="", kind="Namespace", namespaced=False
    )
    rbac = project(clusterResourceWhitelist=[{"group": "rbac.authorization.k8s.io", "kind": "Cluster*"}])
    assert rbac.resource_permitted(group="rbac.authorization.k8s.io", kind="ClusterRole", namespaced=False)
    assert rbac.resource_permitted(
        group="rbac.authorization.k8s.io", kind="ClusterRoleBinding", namespaced=False
    )
    assert not rbac.resource_permitted(group="", kind="Namespace", namespaced=False)
    # the core group is the empty string: "*" matches it, a named group does not
    assert project(clusterResourceWhitelist=[{"group": "*", "kind": "Namespace"}]).resource_permitted(
        group="", kind="Namespace", namespaced=False
    )


def test_cluster_blacklist_beats_whitelist_and_names_are_globs() -> None:
    proj = project(
        clusterResourceWhitelist=[
            {"group": "*", "kind": "*"},
            {"group": "", "kind": "Namespace", "name": "team1-*"},
        ],
        clusterResourceBlacklist=[{"group": "", "kind": "Namespace", "name": "kube-*"}],
    )
    assert proj.resource_permitted(group="", kind="Namespace", namespaced=False, name="team1-dev")
    assert not proj.resource_permitted(group="", kind="Namespace", namespaced=False, name="kube-system")
    only_team = project(clusterResourceWhitelist=[{"group": "", "kind": "Namespace", "name": "team1-*"}])
    assert only_team.resource_permitted(group="", kind="Namespace", namespaced=False, name="team1-a")
    assert not only_team.resource_permitted(group="", kind="Namespace", namespaced=False, name="team2-a")
    assert not only_team.resource_permitted(group="", kind="Namespace", namespaced=False)


def test_namespaced_blacklist_and_whitelist() -> None:
    blacklist = project(
        namespaceResourceBlacklist=[{"group": "", "kind": "ResourceQuota"}, {"group": "*", "kind": "*Policy"}]
    )
    assert blacklist.resource_permitted(group="apps", kind="Deployment", namespaced=True)
    assert not blacklist.resource_permitted(group="", kind="ResourceQuota", namespaced=True)
    assert not blacklist.resource_permitted(group="networking.k8s.io", kind="NetworkPolicy", namespaced=True)
    # a blacklisted kind is namespaced; the same group/kind cluster-scoped is governed by the cluster lists
    assert not blacklist.resource_permitted(group="", kind="ResourceQuota", namespaced=False)

    whitelist = project(
        namespaceResourceWhitelist=[{"group": "apps", "kind": "*"}, {"group": "", "kind": "Service"}],
        namespaceResourceBlacklist=[{"group": "apps", "kind": "DaemonSet"}],
    )
    assert whitelist.resource_permitted(group="apps", kind="Deployment", namespaced=True)
    assert whitelist.resource_permitted(group="", kind="Service", namespaced=True)
    assert not whitelist.resource_permitted(group="apps", kind="DaemonSet", namespaced=True)
    assert not whitelist.resource_permitted(group="", kind="ConfigMap", namespaced=True)


def test_explicitly_empty_namespace_whitelist_denies_all_namespaced_kinds() -> None:
    # upstream: an absent (or null) whitelist allows everything, an empty list allows nothing
    assert project(namespaceResourceWhitelist=None).resource_permitted(group="", kind="Pod", namespaced=True)
    assert not project(namespaceResourceWhitelist=[]).resource_permitted(
        group="", kind="Pod", namespaced=True
    )


def test_namespace_lists_have_no_name_globs() -> None:
    proj = project(namespaceResourceBlacklist=[{"group": "", "kind": "Secret", "name": "only-this"}])
    assert not proj.resource_permitted(group="", kind="Secret", namespaced=True, name="another")


def test_resource_kind_globs_use_classes_and_question_marks() -> None:
    proj = project(clusterResourceWhitelist=[{"group": "*.k8s.io", "kind": "[CS]torage?lass"}])
    assert proj.resource_permitted(group="storage.k8s.io", kind="StorageClass", namespaced=False)
    negated = project(clusterResourceWhitelist=[{"group": "", "kind": "[^N]*"}])
    assert negated.resource_permitted(group="", kind="PersistentVolume", namespaced=False)
    assert not negated.resource_permitted(group="", kind="Namespace", namespaced=False)


# --- source namespaces ----------------------------------------------------------------------------------


def test_source_namespaces() -> None:
    proj = project(sourceNamespaces=["team-*", "/^ops-(?!secret).*$/"])
    assert proj.source_namespace_permitted("argocd", control_namespace="argocd")
    assert proj.source_namespace_permitted("", control_namespace="argocd")
    assert proj.source_namespace_permitted("team-a", control_namespace="argocd")
    assert proj.source_namespace_permitted("ops-eu", control_namespace="argocd")
    assert not proj.source_namespace_permitted("ops-secret", control_namespace="argocd")
    assert not proj.source_namespace_permitted("other", control_namespace="argocd")
    assert not project().source_namespace_permitted("team-a", control_namespace="argocd")
    assert project().source_namespace_permitted("tugboat", control_namespace="tugboat")


# --- malformed projects ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("obj", "field"),
    [
        ({"metadata": {"name": "p"}, "spec": {"sourceRepos": ["!*"]}}, "spec.sourceRepos[0]"),
        ({"metadata": {"name": "p"}, "spec": {"sourceRepos": "*"}}, "spec.sourceRepos"),
        ({"metadata": {"name": "p"}, "spec": {"sourceRepos": ["*", 3]}}, "spec.sourceRepos[1]"),
        (
            {"metadata": {"name": "p"}, "spec": {"sourceRepos": ["https://github.com/[a"]}},
            "spec.sourceRepos[0]",
        ),
        ({"metadata": {"name": "p"}, "spec": {"destinations": {"server": "*"}}}, "spec.destinations"),
        ({"metadata": {"name": "p"}, "spec": {"destinations": ["*"]}}, "spec.destinations[0]"),
        (
            {"metadata": {"name": "p"}, "spec": {"destinations": [{"server": "!*", "namespace": "*"}]}},
            "spec.destinations[0].server",
        ),
        (
            {"metadata": {"name": "p"}, "spec": {"destinations": [{"server": "*", "namespace": "!*"}]}},
            "spec.destinations[0].namespace",
        ),
        (
            {"metadata": {"name": "p"}, "spec": {"destinations": [{"name": "!*", "namespace": "*"}]}},
            "spec.destinations[0].name",
        ),
        (
            {"metadata": {"name": "p"}, "spec": {"destinations": [{"server": 1}]}},
            "spec.destinations[0].server",
        ),
        (
            {
                "metadata": {"name": "p"},
                "spec": {"clusterResourceWhitelist": [{"group": "*", "kind": ["x"]}]},
            },
            "spec.clusterResourceWhitelist[0].kind",
        ),
        (
            {
                "metadata": {"name": "p"},
                "spec": {"clusterResourceBlacklist": [{"group": "[z-a]", "kind": "*"}]},
            },
            "spec.clusterResourceBlacklist[0].group",
        ),
        (
            {"metadata": {"name": "p"}, "spec": {"namespaceResourceWhitelist": "apps"}},
            "spec.namespaceResourceWhitelist",
        ),
        (
            {"metadata": {"name": "p"}, "spec": {"namespaceResourceBlacklist": [None]}},
            "spec.namespaceResourceBlacklist[0]",
        ),
        ({"metadata": {"name": "p"}, "spec": {"sourceNamespaces": "team-*"}}, "spec.sourceNamespaces"),
        ({"metadata": {"name": "p"}, "spec": ["sourceRepos"]}, "spec"),
        ({"metadata": {}, "spec": {}}, "metadata.name"),
        ({"spec": {}}, "metadata"),
    ],
)
def test_malformed_projects_raise_project_error_naming_the_field(obj: dict[str, Any], field: str) -> None:
    with pytest.raises(projects.ProjectError) as info:
        projects.Project.from_object(obj)
    assert field in str(info.value)
    assert isinstance(info.value, errors.GitOpsError)


def test_wellformed_spec_parses_into_rules() -> None:
    proj = project(
        sourceRepos=["https://github.com/org/*"],
        destinations=[{"server": IN_CLUSTER, "namespace": "team-*"}],
        clusterResourceWhitelist=[{"group": "", "kind": "Namespace", "name": "team-*"}],
        namespaceResourceBlacklist=[{"group": "", "kind": "ResourceQuota"}],
        sourceNamespaces=["team-*"],
    )
    assert proj.destinations == (projects.Destination(server=IN_CLUSTER, namespace="team-*"),)
    assert proj.cluster_resource_whitelist == (projects.ResourceRule("", "Namespace", "team-*"),)
    assert proj.namespace_resource_whitelist is None
    assert proj.namespace_resource_blacklist == (projects.ResourceRule("", "ResourceQuota"),)


# --- messages -------------------------------------------------------------------------------------------


def test_violation_messages_are_argo_cds() -> None:
    proj = project(
        sourceRepos=["https://github.com/org/*"], destinations=[{"server": "https://prod", "namespace": "*"}]
    )
    messages = projects.violations(
        proj,
        repo_url="https://github.com/other/repo.git",
        destination_server=IN_CLUSTER,
        destination_name="in-cluster",
        destination_namespace="guestbook",
    )
    assert messages == [
        "application repo https://github.com/other/repo.git is not permitted in project 'team'",
        "application destination server 'https://kubernetes.default.svc' and namespace 'guestbook'"
        " do not match any of the allowed destinations in project 'team'",
    ]
    by_name = projects.violations(
        proj,
        repo_url="https://github.com/org/repo",
        destination_server=IN_CLUSTER,
        destination_name="in-cluster",
        destination_namespace="guestbook",
        destination_by_name=True,
    )
    assert by_name == [
        "application destination server 'in-cluster' and namespace 'guestbook' do not match"
        " any of the allowed destinations in project 'team'"
    ]


def test_violation_messages_never_show_repository_passwords() -> None:
    messages = projects.violations(
        project(destinations=[{"server": "*", "namespace": "*"}]),
        repo_url="https://user:hunter2-secret@example.com/repo.git",
        destination_server=IN_CLUSTER,
        destination_name="in-cluster",
        destination_namespace="default",
    )
    assert len(messages) == 1
    assert "hunter2-secret" not in messages[0]
    assert "is not permitted in project 'team'" in messages[0]


def test_resource_violation_messages() -> None:
    proj = project(
        destinations=[{"server": IN_CLUSTER, "namespace": "team-*"}],
        namespaceResourceBlacklist=[{"group": "", "kind": "ResourceQuota"}],
    )
    common = {"namespace": "team-a", "name": "x"}
    assert (
        projects.resource_violation(
            proj, group="", kind="Namespace", namespaced=False, namespace="", name="team-a"
        )
        == "resource :Namespace is not permitted in project team"
    )
    assert (
        projects.resource_violation(proj, group="", kind="ResourceQuota", namespaced=True, **common)
        == "resource :ResourceQuota is not permitted in project team"
    )
    assert (
        projects.resource_violation(proj, group="apps", kind="Deployment", namespaced=True, **common) is None
    )
    # with the destination cluster given, the resource's own namespace must be an allowed destination
    assert (
        projects.resource_violation(
            proj,
            group="apps",
            kind="Deployment",
            namespaced=True,
            namespace="kube-system",
            name="x",
            destination_server=IN_CLUSTER,
            destination_name="in-cluster",
        )
        == "namespace kube-system is not permitted in project 'team'"
    )
    assert (
        projects.resource_violation(
            proj,
            group="apps",
            kind="Deployment",
            namespaced=True,
            destination_server=IN_CLUSTER,
            destination_name="in-cluster",
            **common,
        )
        is None
    )


def test_missing_project_and_source_namespace_messages() -> None:
    assert (
        projects.missing_project_message("nope")
        == "Application referencing project nope which does not exist"
    )
    assert (
        projects.source_namespace_message(app_name="guestbook", app_namespace="team-a", project="team")
        == "application 'guestbook' in namespace 'team-a' is not permitted to use project 'team'"
    )
