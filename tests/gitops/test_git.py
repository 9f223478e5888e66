"""The hardened git wrapper: isolation, protocol allow-list, timeouts, output limits, redaction."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from pathlib import Path

import pytest

from tugboat.gitops.errors import GitOpsError
from tugboat.gitops.git import (
    Git,
    GitError,
    GitOutputTooLarge,
    GitTimeout,
    InvalidRepoURL,
    ProtocolNotAllowed,
    check_transport_url,
    redact,
    url_protocol,
)


@pytest.fixture
def git(tmp_path: Path) -> Git:
    return Git(home=tmp_path / "home", timeout=10)


def make_repo(path: Path) -> str:
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    (path / "a.txt").write_text("hello\n")
    env = {**os.environ, "GIT_AUTHOR_NAME": "T", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "T"}
    env["GIT_COMMITTER_EMAIL"] = "t@e"
    subprocess.run(["git", "-C", str(path), "add", "."], check=True)
    subprocess.run(["git", "-C", str(path), "commit", "-q", "-m", "one"], check=True, env=env)
    return subprocess.run(
        ["git", "-C", str(path), "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()


# --- redaction -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "hidden", "kept"),
    [
        ("fatal: unable to access 'https://bob:hunter22@example.com/r.git/'", "hunter22", "https://bob:***@"),
        (
            "https://ghp_abcdefghijklmnopqrstuvwxyz0123@github.com/o/r",
            "ghp_abcdefghijklmnop",
            "github.com/o/r",
        ),
        ("url https://sometoken1234@host/r", "sometoken1234", "https://***@host/r"),
        ("Authorization: Basic dXNlcjpwYXNz", "dXNlcjpwYXNz", "Authorization: Basic ***"),
        ("header: Bearer abcdefgh.ijkl", "abcdefgh.ijkl", "Bearer ***"),
        ("token glpat-abcdefghijklmnopqrst in url", "glpat-abcdefghijklmnopqrst", "token"),
        ("-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----", "AAAA", "***"),
    ],
)
def test_redact_hides_credentials(text: str, hidden: str, kept: str) -> None:
    out = redact(text)
    assert hidden not in out
    assert kept in out


def test_redact_keeps_ssh_login_and_hides_literal_and_encoded_secrets() -> None:
    assert redact("ssh://git@github.com/o/r") == "ssh://git@github.com/o/r"
    out = redact("password p@ss/word! and p%40ss%2Fword%21", secrets=["p@ss/word!"])
    assert "p@ss" not in out and "p%40ss" not in out
    assert redact("abc", secrets=["abc"]) == "abc"  # too short to hunt for as a literal


# --- URL checks ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "protocol"),
    [
        ("https://github.com/o/r.git", "https"),
        ("HTTPS://GitHub.com/o/r", "https"),
        ("ssh://git@host:2222/o/r", "ssh"),
        ("git@github.com:o/r.git", "ssh"),
        ("host:path/r", "ssh"),
        ("file:///tmp/r", "file"),
        ("/tmp/r", "file"),
        ("relative/dir", "file"),
        ("./weird:name", "file"),
        ("git://host/r", "git"),
    ],
)
def test_url_protocol(url: str, protocol: str) -> None:
    assert url_protocol(url) == protocol


@pytest.mark.parametrize(
    "url",
    ["ext::sh -c touch% /tmp/pwned", "fd::17", "git://host/r", "http://host/r", "foo::bar", "ftp://h/r"],
)
def test_protocols_outside_the_allow_list_are_rejected(url: str) -> None:
    with pytest.raises(ProtocolNotAllowed):
        check_transport_url(url)


@pytest.mark.parametrize(
    "url", ["", "   ", "--upload-pack=touch /tmp/x", "-oProxyCommand=x", "https://h/\nr"]
)
def test_malformed_urls_are_rejected(url: str) -> None:
    with pytest.raises(InvalidRepoURL) as info:
        check_transport_url(url)
    assert isinstance(info.value, GitOpsError)


async def test_git_itself_refuses_ext_transport(git: Git, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    with pytest.raises(GitError) as info:
        await git.run(["ls-remote", "--", f"ext::sh -c touch% {marker}"])
    assert "not allowed" in info.value.stderr
    assert not marker.exists()


async def test_http_is_refused_unless_allowed(git: Git) -> None:
    with pytest.raises(GitError) as info:
        await git.run(["ls-remote", "--", "http://127.0.0.1:1/r.git"])
    assert "not allowed" in info.value.stderr


# --- isolation -------------------------------------------------------------------------------------------


async def test_user_and_system_configuration_is_ignored(
    git: Git, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_home = tmp_path / "user"
    fake_home.mkdir()
    (fake_home / ".gitconfig").write_text("[user]\n\tname = Leaked\n[alias]\n\tls-remote = !touch /tmp/x\n")
    monkeypatch.setenv("HOME", str(fake_home))
    monkeypatch.setenv("GIT_CONFIG_PARAMETERS", "'user.email'='leaked@example.com'")
    monkeypatch.setenv("GIT_DIR", str(tmp_path))
    monkeypatch.setenv("SSH_ASKPASS", "/bin/echo")
    result = await git.run(["config", "--list", "--show-origin"])
    assert "Leaked" not in result.text and "leaked@" not in result.text
    origins = {line.split("\t")[0] for line in result.text.splitlines()}
    assert origins == {"command line:"}
    env = git.environment()
    assert env["HOME"] == str(git.home) and "SSH_ASKPASS" not in env and "GIT_DIR" not in env
    assert env["GIT_TERMINAL_PROMPT"] == "0" and env["GIT_CONFIG_NOSYSTEM"] == "1"
    assert env["GIT_ALLOW_PROTOCOL"] == "https:ssh:file"
    assert (git.home.stat().st_mode & 0o777) == 0o700


async def test_config_travels_in_the_environment_not_argv(git: Git) -> None:
    secret = "Authorization: Bearer s3cr3t-value"
    argv = git.command(["config", "--get", "http.extraHeader"])
    assert not any("s3cr3t" in part for part in argv)
    result = await git.run(["config", "--get", "http.extraHeader"], config={"http.extraHeader": secret})
    assert result.text.strip() == secret


async def test_hooks_and_fsmonitor_are_disabled(git: Git, tmp_path: Path) -> None:
    repo = tmp_path / "r"
    make_repo(repo)
    result = await git.run(["config", "--get", "core.hooksPath"], git_dir=repo / ".git")
    assert result.text.strip() == os.devnull


async def test_does_not_discover_an_enclosing_repository(tmp_path: Path) -> None:
    make_repo(tmp_path)
    git = Git(home=tmp_path / "sub" / "home")
    with pytest.raises(GitError) as info:
        await git.run(["rev-parse", "--git-dir"])
    assert "not a git repository" in info.value.stderr


# --- errors, limits, timeouts ----------------------------------------------------------------------------


async def test_error_carries_redacted_stderr(git: Git, tmp_path: Path) -> None:
    with pytest.raises(GitError) as info:
        await git.run(["ls-remote", "--", str(tmp_path / "missing")], secrets=["missing"])
    err = info.value
    assert err.returncode == 128
    assert "does not appear to be a git repository" in err.stderr
    assert "missing" not in str(err)  # the literal secret is redacted everywhere, command too
    assert all("missing" not in part for part in err.command)
    assert "ls-remote" in str(err)


async def test_check_false_returns_failures(git: Git) -> None:
    result = await git.run(["rev-parse", "--verify", "--quiet", "nope"], check=False)
    assert result.returncode != 0


async def test_output_limit_kills_the_command(git: Git, tmp_path: Path) -> None:
    repo = tmp_path / "r"
    make_repo(repo)
    big = b"x" * 300_000
    blob = (await git.run(["hash-object", "-w", "--stdin"], git_dir=repo / ".git", input=big)).text.strip()
    ok = await git.run(["cat-file", "blob", blob], git_dir=repo / ".git")
    assert ok.stdout == big
    with pytest.raises(GitOutputTooLarge):
        await git.run(["cat-file", "blob", blob], git_dir=repo / ".git", max_output=100_000)


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as handle:
            return any(line.startswith("State:") and "Z" in line for line in handle)
    except FileNotFoundError:
        return True


async def test_timeout_kills_the_whole_process_group(git: Git, tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    # git runs this "ssh" through a shell; it records its pid and then hangs like a dead server would.
    ssh = f"sh -c 'echo $$ > {pidfile}; exec sleep 30'"
    started = time.monotonic()
    with pytest.raises(GitTimeout) as info:
        await git.run(["ls-remote", "--", "ssh://host/r"], env={"GIT_SSH_COMMAND": ssh}, timeout=1.0)
    assert time.monotonic() - started < 5
    assert "timed out" in str(info.value)
    pid = int(pidfile.read_text())
    deadline = time.monotonic() + 2
    while not _gone(pid) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert _gone(pid), "the hanging grandchild survived the timeout"


async def test_cancellation_kills_the_process_group(git: Git, tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    ssh = f"sh -c 'echo $$ > {pidfile}; exec sleep 30'"
    task = asyncio.create_task(git.run(["ls-remote", "--", "ssh://host/r"], env={"GIT_SSH_COMMAND": ssh}))
    deadline = time.monotonic() + 5
    while not pidfile.exists() or not pidfile.read_text().strip():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    pid = int(pidfile.read_text())
    deadline = time.monotonic() + 2
    while not _gone(pid) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert _gone(pid)


async def test_missing_binary_is_a_git_error(tmp_path: Path) -> None:
    git = Git(home=tmp_path / "home", binary=str(tmp_path / "no-such-git"))
    with pytest.raises(GitError, match="cannot run"):
        await git.run(["version"])


def test_bad_options_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        Git(allowed_protocols=["https", "ext; rm"])
    with pytest.raises(ValueError):
        Git(timeout=0)
    with pytest.raises(ValueError):
        Git(home=tmp_path).command([])
