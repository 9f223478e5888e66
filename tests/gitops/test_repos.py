"""Repositories: URL normalisation, credentials from Secrets, the mirror cache, and local change watching.

Every repository here is real (made with the git CLI in a temp dir). SSH is exercised through a fake
``ssh`` on PATH that runs ``git-upload-pack`` locally, HTTPS through a small smart-HTTP server (``git
http-backend`` behind Basic auth, TLS with a self-signed certificate).
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import ipaddress
import os
import ssl
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tugboat.gitops import repos as repos_module
from tugboat.gitops.errors import GitOpsError
from tugboat.gitops.git import InvalidRepoURL, ProtocolNotAllowed
from tugboat.gitops.repos import (
    Credentials,
    RemoteRefs,
    RepoCache,
    RepoUnreachable,
    RevisionNotFound,
    credentials_for,
    git_auth,
    normalize_url,
    parse_repo_url,
    ref_signature,
)
from tugboat.gitops.repowatch import LocalRepoWatcher, poll_interval_with_jitter

_ENV = {
    "GIT_AUTHOR_NAME": "Ada Lovelace",
    "GIT_AUTHOR_EMAIL": "ada@example.com",
    "GIT_COMMITTER_NAME": "Ada Lovelace",
    "GIT_COMMITTER_EMAIL": "ada@example.com",
    "GIT_AUTHOR_DATE": "2024-01-02T03:04:05+00:00",
    "GIT_COMMITTER_DATE": "2024-01-02T03:04:05+00:00",
    "GIT_CONFIG_NOSYSTEM": "1",
}


class Origin:
    """A real repository that tests commit to; ``c1``..``c3`` are the commits the fixture makes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.c1 = self.c2 = self.c3 = ""
        subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)

    def git(self, *args: str) -> str:
        env = {**os.environ, **_ENV}
        out = subprocess.run(["git", "-C", str(self.path), *args], check=True, capture_output=True, env=env)
        return out.stdout.decode().strip()

    def commit(self, files: dict[str, str], message: str) -> str:
        for name, content in files.items():
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        return self.git("rev-parse", "HEAD")


@pytest.fixture
def origin(tmp_path: Path) -> Origin:
    repo = Origin(tmp_path / "origin")
    repo.c1 = repo.commit({"a.txt": "one\n"}, "first")
    repo.git("tag", "light")
    repo.c2 = repo.commit({"a.txt": "two\n", "app/cm.yaml": "kind: ConfigMap\n"}, "second\n\nbody")
    repo.git("tag", "-a", "v1.0", "-m", "release")
    repo.git("checkout", "-q", "-b", "feature")
    repo.c3 = repo.commit({"a.txt": "three\n"}, "third")
    repo.git("checkout", "-q", "main")
    return repo


@pytest.fixture
def cache(tmp_path: Path) -> RepoCache:
    return RepoCache(tmp_path / "cache")


class GitCalls:
    """Records the argv of every process the wrapper starts."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.argv: list[list[str]] = []
        self.envs: list[dict[str, str]] = []
        original = asyncio.create_subprocess_exec

        async def recording(*args: Any, **kwargs: Any) -> Any:
            self.argv.append([str(a) for a in args])
            self.envs.append(dict(kwargs.get("env") or {}))
            return await original(*args, **kwargs)

        monkeypatch.setattr(asyncio, "create_subprocess_exec", recording)

    def count(self, subcommand: str) -> int:
        return sum(1 for argv in self.argv if subcommand in argv)


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> GitCalls:
    return GitCalls(monkeypatch)


# --- URLs ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "normalized"),
    [
        ("https://GitHub.com/ArgoProj/Apps.git", "https://github.com/ArgoProj/Apps"),
        ("https://github.com/argoproj/apps/", "https://github.com/argoproj/apps"),
        ("https://github.com/argoproj/apps.git/", "https://github.com/argoproj/apps"),
        ("https://user:pw@github.com:8443/o/r", "https://github.com:8443/o/r"),
        ("git@github.com:argoproj/apps.git", "ssh://git@github.com/argoproj/apps"),
        ("ssh://git@GitHub.com/argoproj/apps.git", "ssh://git@github.com/argoproj/apps"),
        ("ssh://git:pw@host:2222/o/r", "ssh://git@host:2222/o/r"),
        ("file:///srv/repos/app.git/", "file:///srv/repos/app.git"),
        ("/srv/repos/app/.git", "file:///srv/repos/app"),
    ],
)
def test_normalize_url(url: str, normalized: str) -> None:
    assert normalize_url(url) == normalized


def test_relative_local_paths_resolve_against_base_dir(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    loc = parse_repo_url("link/", base_dir=tmp_path)
    assert loc.local_path == (tmp_path / "real").resolve()
    assert loc.normalized == f"file://{(tmp_path / 'real').resolve()}"
    assert normalize_url(f"file://{tmp_path}/real") == loc.normalized


def test_url_credentials_are_split_off() -> None:
    loc = parse_repo_url("https://bob:p%40ss@Example.com/o/r.git")
    assert loc.fetch_url == "https://example.com/o/r.git"
    assert loc.url_credentials is not None
    assert (loc.url_credentials.username, loc.url_credentials.password) == ("bob", "p@ss")
    assert "p%40ss" not in loc.url and "p@ss" not in repr(loc)


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("ext::sh -c touch% /tmp/x", ProtocolNotAllowed),
        ("-u/tmp/x", InvalidRepoURL),
        ("file://otherhost/srv/r", InvalidRepoURL),
        ("https:///no-host", InvalidRepoURL),
        ("https://host:notaport/r", InvalidRepoURL),
        ("user:pw@host:o/r", InvalidRepoURL),
    ],
)
def test_bad_urls(url: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_repo_url(url)


# --- credentials from Secrets ----------------------------------------------------------------------------


def secret(name: str, kind: str, **fields: str) -> dict[str, Any]:
    data = {k: base64.b64encode(v.encode()).decode() for k, v in fields.items()}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": "argocd", "labels": {"argocd.argoproj.io/secret-type": kind}},
        "data": data,
    }


def password_for(url: str, secrets: list[dict[str, Any]], **options: Any) -> str | None:
    creds = credentials_for(url, secrets, **options)
    assert creds is not None
    return creds.password


def test_repository_secret_beats_repo_creds() -> None:
    secrets = [
        secret("tmpl", "repo-creds", url="https://github.com/argoproj", username="t", password="tp"),
        secret("repo", "repository", url="https://github.com/argoproj/apps.git", username="r", password="rp"),
    ]
    creds = credentials_for("https://github.com/argoproj/apps", secrets)
    assert creds is not None and (creds.username, creds.password) == ("r", "rp")
    assert creds.source == "repository argocd/repo"


def test_longest_repo_creds_prefix_wins() -> None:
    secrets = [
        secret("host", "repo-creds", url="https://github.com", password="host"),
        secret("org", "repo-creds", url="https://github.com/argoproj", password="org"),
        secret("other", "repo-creds", url="https://gitlab.com/argoproj", password="other"),
    ]
    assert password_for("https://github.com/argoproj/apps.git", secrets) == "org"
    assert password_for("https://github.com/kubernetes/x", secrets) == "host"
    assert credentials_for("https://bitbucket.org/a/b", secrets) is None


def test_matching_ignores_case_url_forms_and_scp_syntax() -> None:
    secrets = [
        secret("ssh", "repo-creds", url="git@GitHub.com:argoproj", sshPrivateKey="KEY"),
        secret("repo", "repository", url="HTTPS://GITHUB.COM/ArgoProj/Apps/"),
    ]
    ssh = credentials_for("ssh://git@github.com/argoproj/apps.git", secrets)
    assert ssh is not None and ssh.ssh_private_key == "KEY"
    repo = credentials_for("https://github.com/argoproj/apps", secrets)
    assert repo is not None and repo.source == "repository argocd/repo" and not repo.has_credentials


def test_repository_without_credentials_takes_them_from_the_template() -> None:
    secrets = [
        secret("tmpl", "repo-creds", url="https://git.example.com/", username="u", password="p"),
        secret("repo", "repository", url="https://git.example.com/team/app", insecure="true"),
    ]
    creds = credentials_for("https://git.example.com/team/app.git", secrets)
    assert creds is not None
    assert (creds.username, creds.password, creds.insecure) == ("u", "p", True)


def test_type_project_and_malformed_secrets() -> None:
    broken = secret("broken", "repository", url="https://h/o/r", password="x")
    broken["data"]["password"] = "not base64!!"
    secrets = [
        broken,
        secret("helm", "repository", url="https://h/o/r", type="helm", password="helm"),
        secret("scoped", "repository", url="https://h/o/r", project="team-a", password="scoped"),
        secret("global", "repository", url="https://h/o/r", password="global"),
        secret("unlabelled", "cluster", url="https://h/o/r", password="cluster"),
        secret("badurl", "repo-creds", url="ext::sh", password="bad"),
    ]
    assert password_for("https://h/o/r", secrets) == "global"
    assert password_for("https://h/o/r", secrets, project="team-a") == "scoped"
    assert password_for("https://h/o/r", secrets, type="helm") == "helm"
    with pytest.raises(InvalidRepoURL):
        credentials_for("ext::sh -c x", secrets)


def test_credentials_repr_hides_secrets() -> None:
    creds = Credentials(
        username="u", password="hunter22", bearer_token="tok-123456", ssh_private_key="KEYDATA"
    )
    text = repr(creds)
    assert "hunter22" not in text and "tok-123456" not in text and "KEYDATA" not in text
    assert base64.b64encode(b"u:hunter22").decode() in creds.secret_values()


# --- credentials as git environment ----------------------------------------------------------------------


def test_https_password_goes_through_an_askpass_helper(tmp_path: Path) -> None:
    creds = Credentials(username="u", password="hunter22", insecure=True)
    with git_auth(creds, protocol="https", home=tmp_path) as auth:
        helper = Path(auth.env["GIT_ASKPASS"])
        assert stat.S_IMODE(helper.stat().st_mode) == 0o700
        assert "hunter22" not in helper.read_text()
        assert auth.env["TUGBOAT_GIT_PASSWORD"] == "hunter22"
        assert auth.config["http.sslVerify"] == "false"
        assert "hunter22" in auth.secrets
        user = subprocess.run([helper, "Username for 'https://h': "], env=auth.env, capture_output=True)
        password = subprocess.run([helper, "Password for 'https://u@h': "], env=auth.env, capture_output=True)
        assert (user.stdout, password.stdout) == (b"u\n", b"hunter22\n")
    assert not helper.exists()


def test_bearer_token_and_basic_header_go_in_environment_config(tmp_path: Path) -> None:
    with git_auth(Credentials(bearer_token="tok-abcdef"), protocol="https", home=tmp_path) as auth:
        assert auth.config == {"http.extraHeader": "Authorization: Bearer tok-abcdef"}
        assert "GIT_ASKPASS" not in auth.env
    creds = Credentials(username="u", password="p4ss", force_http_basic_auth=True)
    with git_auth(creds, protocol="https", home=tmp_path) as auth:
        expected = base64.b64encode(b"u:p4ss").decode()
        assert auth.config["http.extraHeader"] == f"Authorization: Basic {expected}"
        assert expected in auth.secrets


def test_tls_client_certificate_files_are_private_and_temporary(tmp_path: Path) -> None:
    creds = Credentials(tls_client_cert_data="CERT", tls_client_cert_key="PRIVATE")
    with git_auth(creds, protocol="https", home=tmp_path) as auth:
        key = Path(auth.config["http.sslKey"])
        assert key.read_text() == "PRIVATE" and stat.S_IMODE(key.stat().st_mode) == 0o600
        assert Path(auth.config["http.sslCert"]).read_text() == "CERT"
    assert not key.exists()


def test_ssh_key_file_and_host_key_checking(tmp_path: Path) -> None:
    with git_auth(Credentials(ssh_private_key="KEY"), protocol="ssh", home=tmp_path) as auth:
        command = auth.env["GIT_SSH_COMMAND"]
        key = Path(command.split(" -i ")[1].split()[0])
        assert key.read_text() == "KEY\n" and stat.S_IMODE(key.stat().st_mode) == 0o600
        assert "StrictHostKeyChecking=accept-new" in command and "IdentitiesOnly=yes" in command
        assert "KEY" not in command.replace(str(key), "")
    assert not key.exists()
    with git_auth(Credentials(ssh_private_key="KEY", insecure=True), protocol="ssh", home=tmp_path) as auth:
        assert "StrictHostKeyChecking=no" in auth.env["GIT_SSH_COMMAND"]
    with git_auth(Credentials(password="x"), protocol="file", home=tmp_path) as auth:
        assert auth.env == {} and auth.config == {}
    assert list(tmp_path.iterdir()) == []


# --- resolving -------------------------------------------------------------------------------------------


async def test_resolve_every_revision_form(origin: Origin, cache: RepoCache) -> None:
    url = str(origin.path)
    c1, c2, c3 = origin.c1, origin.c2, origin.c3
    tag_object = origin.git("rev-parse", "v1.0")
    assert tag_object != c2
    cases = {
        "HEAD": c2,
        "": c2,
        "main": c2,
        "feature": c3,
        "refs/heads/feature": c3,
        "light": c1,
        "v1.0": c2,
        "refs/tags/v1.0": c2,
        c1: c1,
        c3.upper(): c3,
        c1[:7]: c1,
        tag_object: c2,
    }
    for revision, expected in cases.items():
        assert await cache.resolve(url, revision) == expected, revision
    assert await cache.resolve(f"file://{origin.path}", "feature") == c3
    assert len(list((cache.root / "mirrors").iterdir())) == 1


@pytest.mark.parametrize("revision", ["nope", "0" * 40, "abcdef1", "-x", "main~1", "a b"])
async def test_unknown_revisions(origin: Origin, cache: RepoCache, revision: str) -> None:
    with pytest.raises(RevisionNotFound) as info:
        await cache.resolve(str(origin.path), revision)
    assert isinstance(info.value, GitOpsError)


async def test_new_commits_are_seen_and_unchanged_refs_cost_no_git(
    origin: Origin, cache: RepoCache, calls: GitCalls
) -> None:
    url = str(origin.path)
    assert await cache.resolve(url, "main") == origin.c2
    before = len(calls.argv)
    assert await cache.resolve(url, "main") == origin.c2
    assert len(calls.argv) == before  # refs unchanged (stat only) and the commit known: no process at all
    c4 = origin.commit({"a.txt": "four\n"}, "fourth")
    assert await cache.resolve(url, "main") == c4
    origin.git("tag", "v2")
    assert await cache.resolve(url, "v2") == c4
    origin.git("branch", "-D", "feature")
    with pytest.raises(RevisionNotFound):
        await cache.resolve(url, "feature")


async def test_empty_repository_has_no_head(tmp_path: Path, cache: RepoCache) -> None:
    empty = Origin(tmp_path / "empty")
    with pytest.raises(RevisionNotFound, match="no HEAD"):
        await cache.resolve(str(empty.path), "HEAD")


async def test_ls_remote_and_commit_info(origin: Origin, cache: RepoCache) -> None:
    refs = await cache.ls_remote(str(origin.path))
    assert isinstance(refs, RemoteRefs)
    assert refs.head == origin.c2 and refs.head_ref == "refs/heads/main"
    assert refs.branches() == {"main": origin.c2, "feature": origin.c3}
    assert refs.tags() == {"light": origin.c1, "v1.0": origin.c2}
    info = await cache.commit_info(str(origin.path), origin.c2)
    author, date, message = info
    assert author == "Ada Lovelace <ada@example.com>"
    assert date == datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    assert message == "second\n\nbody"


async def test_unreachable_repositories_do_not_leak_passwords(tmp_path: Path, cache: RepoCache) -> None:
    with pytest.raises(RepoUnreachable, match="does not exist"):
        await cache.resolve(str(tmp_path / "missing"), "main")
    (tmp_path / "plain").mkdir()
    with pytest.raises(RepoUnreachable, match="not a git repository"):
        await cache.resolve(str(tmp_path / "plain"), "main")
    with pytest.raises(RepoUnreachable) as info:
        await cache.resolve("https://alice:s3cretpw@127.0.0.1:1/org/repo.git", "main")
    err = info.value
    shown = " ".join([str(err), repr(err), err.stderr, *err.command, str(err.__cause__)])
    assert "s3cretpw" not in shown
    assert "127.0.0.1" in str(err)
    with pytest.raises(ProtocolNotAllowed):
        await cache.resolve("ext::sh -c touch% /tmp/pwned", "main")
    with pytest.raises(ProtocolNotAllowed):
        await cache.resolve("http://127.0.0.1:1/r.git", "main")


# --- checkouts -------------------------------------------------------------------------------------------


async def test_checkout_content_at_two_commits(origin: Origin, cache: RepoCache, calls: GitCalls) -> None:
    url = str(origin.path)
    (origin.path / "link").symlink_to("app/cm.yaml")
    c4 = origin.commit({}, "with a symlink")
    first = await cache.checkout(url, origin.c1)
    second = await cache.checkout(url, c4)
    assert (first / "a.txt").read_text() == "one\n" and not (first / "app").exists()
    assert (second / "a.txt").read_text() == "two\n"
    assert (second / "app" / "cm.yaml").read_text() == "kind: ConfigMap\n"
    assert os.readlink(second / "link") == "app/cm.yaml"
    assert not (second / ".git").exists()
    assert not os.stat(second / "a.txt").st_mode & 0o222
    assert not os.stat(second / "app").st_mode & 0o222
    before = len(calls.argv)
    assert await cache.checkout(url, c4) == second
    assert len(calls.argv) == before
    with pytest.raises(RevisionNotFound):
        await cache.checkout(url, "main")


async def test_checkout_of_a_commit_not_yet_fetched(origin: Origin, cache: RepoCache) -> None:
    path = await cache.checkout(str(origin.path), origin.c3)
    assert (path / "a.txt").read_text() == "three\n"


async def test_checkouts_are_evicted_least_recently_used_but_not_while_pinned(
    origin: Origin, tmp_path: Path
) -> None:
    cache = RepoCache(tmp_path / "cache", max_checkouts=2)
    url = str(origin.path)
    c1, c2, c3 = origin.c1, origin.c2, origin.c3
    async with cache.checked_out(url, c1) as p1:
        p2 = await cache.checkout(url, c2)
        p3 = await cache.checkout(url, c3)
        assert p1.is_dir() and not p2.exists() and p3.is_dir()
        assert (p1 / "a.txt").read_text() == "one\n"
    p2 = await cache.checkout(url, c2)
    assert p2.is_dir() and not p1.exists() and p3.is_dir()
    assert sorted(p.name for p in (cache.root / "checkouts").iterdir()) == sorted([c2, c3])


async def test_checkouts_survive_a_restart(
    origin: Origin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = RepoCache(tmp_path / "cache")
    path = await first.checkout(str(origin.path), origin.c2)
    (tmp_path / "cache" / "checkouts" / ".tmp-half-made").mkdir()
    calls = GitCalls(monkeypatch)
    second = RepoCache(tmp_path / "cache")
    assert await second.checkout(str(origin.path), origin.c2) == path
    assert calls.argv == []
    assert not (tmp_path / "cache" / "checkouts" / ".tmp-half-made").exists()


async def test_concurrent_users_share_one_mirror(origin: Origin, cache: RepoCache, calls: GitCalls) -> None:
    url = str(origin.path)
    spellings = [url, f"file://{origin.path}", f"{url}/", f"{url}/.git"]
    revisions = ["main", "feature", "v1.0", origin.c1[:8], "HEAD"]
    expected = [origin.c2, origin.c3, origin.c2, origin.c1, origin.c2]
    commits = [origin.c1, origin.c2, origin.c3]
    results = await asyncio.gather(
        *(cache.resolve(spellings[i % 4], revisions[i % 5]) for i in range(10)),
        *(cache.checkout(spellings[i % 4], commits[i % 3]) for i in range(10)),
    )
    assert results[:10] == [expected[i % 5] for i in range(10)]
    paths = results[10:]
    assert [Path(p).name for p in paths] == [commits[i % 3] for i in range(10)]
    assert all((Path(p) / "a.txt").is_file() for p in paths)
    assert len(list((cache.root / "mirrors").iterdir())) == 1
    assert calls.count("fetch") == 1
    assert calls.count("read-tree") == 3


# --- SSH through a fake ssh ------------------------------------------------------------------------------


@pytest.fixture
def fake_ssh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An ``ssh`` on PATH that logs its arguments and key-file mode, then runs the remote command here."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "ssh.log"
    script = bin_dir / "ssh"
    script.write_text(
        f"""#!/bin/sh
log={log}
for a in "$@"; do printf 'arg:%s\\n' "$a" >> "$log"; done
while [ $# -gt 1 ]; do
  if [ "$1" = "-i" ]; then printf 'keymode:%s\\n' "$(stat -c %a "$2")" >> "$log"; fi
  shift
done
exec sh -c "$1"
"""
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return log


async def test_ssh_with_a_private_key(origin: Origin, cache: RepoCache, fake_ssh: Path) -> None:
    url = f"ssh://git@fakehost{origin.path}"
    creds = Credentials(ssh_private_key="-----BEGIN OPENSSH PRIVATE KEY-----\nSECRETKEY\n-----END")
    assert await cache.resolve(url, "feature", creds=creds) == origin.c3
    path = await cache.checkout(url, origin.c1, creds=creds)
    assert (path / "a.txt").read_text() == "one\n"
    log = fake_ssh.read_text()
    assert "arg:git@fakehost" in log and "keymode:600" in log
    assert "arg:StrictHostKeyChecking=accept-new" in log and "arg:BatchMode=yes" in log
    assert "SECRETKEY" not in log
    assert [p.name for p in cache.git.home.iterdir() if p.name.startswith("auth-")] == []
    assert await cache.resolve(f"git@fakehost:{origin.path}", "main", creds=creds) == origin.c2


# --- HTTPS through a smart-HTTP server -------------------------------------------------------------------


def _self_signed(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file


class _Server(ThreadingHTTPServer):
    project_root: str
    accepted: set[str]
    seen: list[str | None]


class _GitHandler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        auth = self.headers.get("Authorization")
        self.server.seen.append(auth)
        if auth not in self.server.accepted:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        path, _, query = self.path.partition("?")
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        env = {
            "PATH": os.environ["PATH"],
            "GIT_PROJECT_ROOT": self.server.project_root,
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "REQUEST_METHOD": self.command,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "REMOTE_USER": "tester",
            "REMOTE_ADDR": "127.0.0.1",
            "GIT_CONFIG_NOSYSTEM": "1",
        }
        if self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
        if self.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
        out = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True).stdout
        head, _, payload = out.partition(b"\r\n\r\n")
        status, headers = 200, []
        for line in head.split(b"\r\n"):
            key, _, value = line.decode().partition(":")
            if key.lower() == "status":
                status = int(value.split()[0])
            elif key:
                headers.append((key, value.strip()))
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture
def https_server(origin: Origin, tmp_path: Path) -> Iterator[_Server]:
    cert, key = _self_signed(tmp_path)
    server = _Server(("127.0.0.1", 0), _GitHandler)
    server.project_root = str(origin.path.parent)
    server.accepted = {"Basic " + base64.b64encode(b"alice:s3cretpw").decode(), "Bearer tok-0123456789"}
    server.seen = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _url(server: _Server, origin: Origin) -> str:
    return f"https://127.0.0.1:{server.server_address[1]}/{origin.path.name}/.git"


async def test_https_basic_auth_keeps_the_password_off_the_command_line(
    origin: Origin, cache: RepoCache, https_server: _Server, calls: GitCalls
) -> None:
    url = _url(https_server, origin)
    creds = Credentials(username="alice", password="s3cretpw", insecure=True)
    assert await cache.resolve(url, "feature", creds=creds) == origin.c3
    path = await cache.checkout(url, origin.c1, creds=creds)
    assert (path / "a.txt").read_text() == "one\n"
    assert any(seen and seen.startswith("Basic ") for seen in https_server.seen)
    assert calls.argv and not any("s3cretpw" in part for argv in calls.argv for part in argv)
    assert [p.name for p in cache.git.home.iterdir() if p.name.startswith("auth-")] == []

    bearer = Credentials(bearer_token="tok-0123456789", insecure=True)
    assert await cache.ls_remote(url, creds=bearer)
    assert not any("tok-0123456789" in part for argv in calls.argv for part in argv)


async def test_https_failures_are_unreachable_without_secrets(
    origin: Origin, cache: RepoCache, https_server: _Server
) -> None:
    url = _url(https_server, origin)
    with pytest.raises(RepoUnreachable) as info:
        await cache.resolve(
            url, "main", creds=Credentials(username="alice", password="wrongpass1", insecure=True)
        )
    assert "wrongpass1" not in f"{info.value} {info.value.stderr}"
    with pytest.raises(RepoUnreachable, match="certificate"):
        await cache.resolve(url, "main", creds=Credentials(username="alice", password="s3cretpw"))
    userinfo_url = url.replace("https://", "https://alice:s3cretpw@")
    with pytest.raises(
        RepoUnreachable
    ) as info:  # right password in the URL, but the certificate is untrusted
        await cache.resolve(userinfo_url, "main")
    assert "s3cretpw" not in f"{info.value} {info.value.stderr} {info.value.command}"


async def test_remote_refs_are_reused_within_min_fetch_interval(
    origin: Origin, tmp_path: Path, https_server: _Server
) -> None:
    cache = RepoCache(tmp_path / "cache", min_fetch_interval=60)
    url = _url(https_server, origin)
    creds = Credentials(username="alice", password="s3cretpw", insecure=True)
    assert await cache.resolve(url, "main", creds=creds) == origin.c2
    c4 = origin.commit({"a.txt": "four\n"}, "fourth")
    assert await cache.resolve(url, "main", creds=creds) == origin.c2
    assert await cache.resolve(url, "main", creds=creds, force=True) == c4
    assert await cache.resolve(url, origin.c3, creds=creds) == origin.c3


# --- local change detection ------------------------------------------------------------------------------


async def test_watcher_fires_within_a_second_of_a_commit(origin: Origin) -> None:
    seen: asyncio.Queue[tuple[str, float]] = asyncio.Queue()

    async def changed(url: str) -> None:
        seen.put_nowait((url, time.monotonic()))

    async with LocalRepoWatcher() as watcher:
        watcher.watch(str(origin.path), changed)
        watcher.watch(str(origin.path), changed)  # registering twice is one subscription
        await asyncio.sleep(0.6)
        assert seen.empty()
        committed_at = time.monotonic()
        origin.commit({"a.txt": "four\n"}, "fourth")
        url, at = await asyncio.wait_for(seen.get(), 2)
        assert url == str(origin.path) and at - committed_at < 1.0
        await asyncio.sleep(0.6)
        assert seen.empty()
        watcher.unwatch(str(origin.path))
        assert watcher.watched() == []
        origin.commit({"a.txt": "five\n"}, "fifth")
        await asyncio.sleep(0.6)
        assert seen.empty()


async def test_watcher_sees_branches_tags_packing_and_worktrees(origin: Origin, tmp_path: Path) -> None:
    hits: list[str] = []

    async def changed(url: str) -> None:
        hits.append(url)

    worktree = tmp_path / "wt"
    origin.git("worktree", "add", "-q", str(worktree), "feature")
    watcher = LocalRepoWatcher()
    watcher.watch(f"file://{origin.path}", changed)
    watcher.watch(str(worktree), changed)

    async def check() -> list[str]:
        changed = await watcher.check_now()
        await asyncio.sleep(0.01)  # let the callbacks run
        return changed

    assert await check() == []
    origin.git("branch", "topic")
    assert len(await check()) == 2  # refs are shared with the linked worktree
    origin.git("tag", "v9")
    assert await check()
    origin.git("pack-refs", "--all")
    assert await check()
    origin.git("checkout", "-q", "topic")
    assert await check() == [normalize_url(str(origin.path))]  # only the main worktree's HEAD
    assert hits.count(f"file://{origin.path}") == 4 and hits.count(str(worktree)) == 3
    await watcher.stop()


async def test_watcher_survives_failing_and_slow_callbacks(origin: Origin) -> None:
    calls: list[str] = []
    release = asyncio.Event()

    async def broken(url: str) -> None:
        raise RuntimeError("boom")

    async def slow(url: str) -> None:
        calls.append(url)
        await release.wait()

    watcher = LocalRepoWatcher()
    watcher.watch(str(origin.path), broken)
    watcher.watch(str(origin.path), slow)
    origin.git("tag", "t1")
    await watcher.check_now()
    await asyncio.sleep(0.01)
    origin.git("tag", "t2")
    await watcher.check_now()  # slow is still running: it runs once more afterwards, not twice at once
    origin.git("tag", "t3")
    await watcher.check_now()
    await asyncio.sleep(0.01)
    assert len(calls) == 1
    release.set()
    await asyncio.sleep(0.05)
    assert len(calls) == 2
    await watcher.stop()


async def _noop(url: str) -> None:
    return None


def test_watcher_rejects_remote_urls_and_handles_missing_repos(tmp_path: Path) -> None:
    watcher = LocalRepoWatcher()
    with pytest.raises(InvalidRepoURL):
        watcher.watch("https://github.com/o/r", _noop)
    assert ref_signature(tmp_path / "nothing") is None
    with pytest.raises(ValueError):
        LocalRepoWatcher(interval=0)


def test_poll_interval_with_jitter() -> None:
    values = [poll_interval_with_jitter() for _ in range(200)]
    assert all(120 <= v <= 180 for v in values) and max(values) - min(values) > 30
    assert poll_interval_with_jitter(10, jitter=0) == 10
    assert poll_interval_with_jitter(0) == 0
    with pytest.raises(ValueError):
        poll_interval_with_jitter(-1)
    with pytest.raises(ValueError):
        poll_interval_with_jitter(10, jitter=2)


def test_module_exports() -> None:
    assert repos_module.RepoUnreachable.__mro__[1].__name__ == "GitError"
