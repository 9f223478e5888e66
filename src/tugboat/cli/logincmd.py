"""``tugboat login``, ``logout`` and ``account …``: use the API server as a local account, like ``argocd``.

Unlike ``tugboat app …`` (which talks straight to the Kubernetes API with a kubeconfig), these commands
talk to Tugboat's API server over HTTP with a session token or API key, so what they may do is what the
server's RBAC allows that account. ``login`` keeps the server's address and the session token in a small
YAML file (``~/.config/tugboat/config``, or ``$TUGBOAT_CONFIG``) readable only by its owner; later
commands use the current server from it, another logged-in one with ``--server``, or any token given
with ``--auth-token`` (``$TUGBOAT_AUTH_TOKEN``), e.g. an API key made by ``account generate-token``.
"""

from __future__ import annotations

import contextlib
import os
import re
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import httpx2 as httpx
import typer
import yaml

from tugboat.cli import appcmd
from tugboat.cli.appcmd import CliError

CONFIG_ENV = "TUGBOAT_CONFIG"
TOKEN_ENV = "TUGBOAT_AUTH_TOKEN"
_TIMEOUT = 30.0
_DURATION_PART = re.compile(r"(\d+)([smhd])")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

account_cli = typer.Typer(
    cls=appcmd._Group,
    help="Manage local accounts of the API server (like `argocd account`).",
    no_args_is_help=True,
)

ServerOpt = Annotated[
    str | None,
    typer.Option("--server", help="API server to use (one you logged in to; default: the current one)."),
]
TokenOpt = Annotated[
    str | None,
    typer.Option("--auth-token", envvar=TOKEN_ENV, help="Token to use instead of the stored session."),
]


# ---------------------------------------------------------------------------------------------- config


def config_path() -> Path:
    """Where logins are kept: ``$TUGBOAT_CONFIG`` or ``~/.config/tugboat/config``."""
    override = os.environ.get(CONFIG_ENV)
    return Path(override) if override else Path.home() / ".config" / "tugboat" / "config"


def load_config(path: Path | None = None) -> dict[str, Any]:
    path = path or config_path()
    try:
        data = yaml.safe_load(path.read_text()) if path.exists() else None
    except (OSError, yaml.YAMLError) as exc:
        raise CliError(f"cannot read {path}: {exc}") from exc
    if data is None:
        return {"servers": []}
    if not isinstance(data, dict) or not isinstance(data.get("servers", []), list):
        raise CliError(f"{path} is not a tugboat config file")
    data.setdefault("servers", [])
    return data


def save_config(config: dict[str, Any], path: Path | None = None) -> None:
    """Write ``config`` readable by its owner only (it holds session tokens)."""
    path = path or config_path()
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            os.fchmod(handle.fileno(), 0o600)
            yaml.safe_dump(config, handle, sort_keys=False)
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc}") from exc


def _entry(config: dict[str, Any], server: str) -> dict[str, Any] | None:
    return next((e for e in config["servers"] if isinstance(e, dict) and e.get("server") == server), None)


# ------------------------------------------------------------------------------------------------ HTTP


def server_url(server: str, *, plaintext: bool) -> tuple[str, str]:
    """``(name, base URL)`` for ``SERVER`` as typed: ``host[:port]`` (https, or http with
    ``--plaintext``) or a full ``http(s)://`` URL."""
    if "://" in server:
        parsed = urllib.parse.urlsplit(server)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise CliError(f"server must be HOST[:PORT] or an http(s) URL, got '{server}'")
        return parsed.netloc, f"{parsed.scheme}://{parsed.netloc}"
    name = server.strip().rstrip("/")
    if not name or "/" in name:
        raise CliError(f"server must be HOST[:PORT] or an http(s) URL, got '{server}'")
    return name, f"{'http' if plaintext else 'https'}://{name}"


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return response.text.strip()[:300] or response.reason_phrase


@dataclass
class Session:
    """Requests to one API server with one token."""

    name: str
    url: str
    token: str | None = None
    insecure: bool = False

    def request(self, method: str, path: str, *, json: Any = None) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            with httpx.Client(base_url=self.url, timeout=_TIMEOUT, verify=not self.insecure) as client:
                response = client.request(method, path, json=json, headers=headers)
        except httpx.TransportError as exc:
            raise CliError(f"cannot reach the API server at {self.url}: {exc}") from exc
        if response.status_code == 401 and self.token:
            raise CliError(
                f"not authenticated to {self.name}: {_message(response)} (run `tugboat login {self.name}`)"
            )
        if response.status_code >= 400:
            raise CliError(f"{_message(response)} ({response.status_code})")
        try:
            return response.json() if response.content else {}
        except ValueError as exc:
            raise CliError(f"{self.url} did not answer with JSON; is it a Tugboat API server?") from exc

    def login(self, username: str, password: str) -> str:
        token = str(
            self.request("POST", "/api/v1/session", json={"username": username, "password": password})[
                "token"
            ]
        )
        self.token = token
        return token


def session(server: str | None, auth_token: str | None = None) -> Session:
    """The session for ``--server`` (or the current server) from the config."""
    config = load_config()
    name = server_url(server, plaintext=False)[0] if server else config.get("current-server")
    if not name:
        raise CliError("not logged in: run `tugboat login SERVER` first (or give --server)")
    entry = _entry(config, str(name))
    if entry is None:
        if auth_token is None:
            raise CliError(f"not logged in to {name}: run `tugboat login {name}`")
        name, url = server_url(server or str(name), plaintext=False)  # a URL keeps its scheme
        return Session(name, url, auth_token)
    token = auth_token or entry.get("auth-token")
    if not token:
        raise CliError(f"not logged in to {name}: run `tugboat login {name}`")
    return Session(str(name), str(entry["url"]), str(token), insecure=bool(entry.get("insecure")))


def parse_duration(value: str) -> int:
    """Seconds in ``24h``, ``90m``, ``1h30m``, ``7d`` or ``0`` (never)."""
    text = value.strip()
    if text.isdigit():
        return int(text)
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise CliError(f"--expires-in expects a duration such as 24h, 30m, 7d or 0, got '{value}'")
    return sum(int(number) * _SECONDS[unit] for number, unit in parts)


# ---------------------------------------------------------------------------------------- login/logout


def login(
    server: Annotated[str, typer.Argument(help="API server: HOST[:PORT] or an http(s):// URL.")],
    username: Annotated[str, typer.Option("--username", help="Local account to log in as.")] = "admin",
    password: Annotated[
        str | None, typer.Option("--password", help="Password (prompted for, hidden, when not given).")
    ] = None,
    plaintext: Annotated[bool, typer.Option("--plaintext", help="Use plain http instead of https.")] = False,
    insecure: Annotated[
        bool, typer.Option("--insecure", help="Do not verify the server's certificate.")
    ] = False,
) -> None:
    """Log in to an API server and remember it as the current server."""
    with appcmd._reporting():
        name, url = server_url(server, plaintext=plaintext)
        if password is None:
            password = typer.prompt("Password", hide_input=True)
        target = Session(name, url, insecure=insecure)
        token = target.login(username, password)
        config = load_config()
        config["servers"] = [
            e for e in config["servers"] if not (isinstance(e, dict) and e.get("server") == name)
        ]
        config["servers"].append(
            {"server": name, "url": url, "insecure": insecure, "username": username, "auth-token": token}
        )
        config["current-server"] = name
        save_config(config)
    typer.echo(f"'{username}' logged in successfully to {name}")


def logout(
    server: Annotated[
        str | None, typer.Argument(help="Server to log out of (default: the current one).")
    ] = None,
) -> None:
    """Forget the session token of a server."""
    with appcmd._reporting():
        config = load_config()
        name = server or config.get("current-server")
        entry = _entry(config, str(name)) if name else None
        if entry is None or not entry.get("auth-token"):
            raise CliError(f"not logged in to {name}" if name else "not logged in")
        with contextlib.suppress(CliError):  # the server may be gone; forgetting the token is what counts
            Session(
                str(name), str(entry["url"]), str(entry["auth-token"]), bool(entry.get("insecure"))
            ).request("DELETE", "/api/v1/session")
        entry.pop("auth-token", None)
        save_config(config)
    typer.echo(f"logged out from '{name}'")


# ------------------------------------------------------------------------------------------- accounts


def _current_user(target: Session) -> str:
    return str(target.request("GET", "/api/v1/session/userinfo").get("username") or "")


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "   ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )


@account_cli.command("list")
def account_list(server: ServerOpt = None, auth_token: TokenOpt = None) -> None:
    """List the accounts you may see: NAME ENABLED CAPABILITIES."""
    with appcmd._reporting():
        items = session(server, auth_token).request("GET", "/api/v1/account").get("items") or []
    rows = [["NAME", "ENABLED", "CAPABILITIES"]]
    rows += [
        [a["name"], str(a.get("enabled")).lower(), ", ".join(a.get("capabilities") or [])] for a in items
    ]
    typer.echo(_table(rows))


@account_cli.command("generate-token")
def generate_token(
    account: Annotated[
        str | None, typer.Option("--account", "-a", help="Account (default: yourself).")
    ] = None,
    expires_in: Annotated[
        str, typer.Option("--expires-in", "-e", help="Lifetime such as 24h, 30m, 7d; 0 never expires.")
    ] = "0",
    token_id: Annotated[str | None, typer.Option("--id", help="Token id (default: a generated one).")] = None,
    server: ServerOpt = None,
    auth_token: TokenOpt = None,
) -> None:
    """Generate an API key for an account with the apiKey capability and print it."""
    with appcmd._reporting():
        seconds = parse_duration(expires_in)
        target = session(server, auth_token)
        name = account or _current_user(target)
        body: dict[str, Any] = {"expiresIn": seconds}
        if token_id:
            body["id"] = token_id
        token = target.request(
            "POST", f"/api/v1/account/{urllib.parse.quote(name, safe='')}/token", json=body
        )
    typer.echo(token["token"])


@account_cli.command("can-i")
def can_i(
    action: Annotated[str, typer.Argument(help="Action, e.g. get, sync, update, action/*.")],
    resource: Annotated[str, typer.Argument(help="Resource, e.g. applications, projects, rollouts.")],
    obj: Annotated[str, typer.Argument(help="Object, e.g. default/guestbook or '*'.")],
    server: ServerOpt = None,
    auth_token: TokenOpt = None,
) -> None:
    """Print yes or no: may you do ACTION on OBJ of RESOURCE?"""
    with appcmd._reporting():
        path = "/".join(urllib.parse.quote(part, safe="") for part in (resource, action))
        answer = session(server, auth_token).request(
            "GET", f"/api/v1/account/can-i/{path}/{urllib.parse.quote(obj, safe='/*')}"
        )
    typer.echo(answer.get("value", "no"))


@account_cli.command("update-password")
def update_password(
    account: Annotated[
        str | None, typer.Option("--account", "-a", help="Account (default: yourself).")
    ] = None,
    current_password: Annotated[
        str | None, typer.Option("--current-password", help="Your own current password (prompted for).")
    ] = None,
    new_password: Annotated[
        str | None, typer.Option("--new-password", help="The new password (prompted for, twice).")
    ] = None,
    server: ServerOpt = None,
    auth_token: TokenOpt = None,
) -> None:
    """Change your password (or, with --account and RBAC accounts/update, another account's)."""
    with appcmd._reporting():
        target = session(server, auth_token)
        me = _current_user(target)
        name = account or me
        if current_password is None:
            current_password = typer.prompt(
                f"*** Enter password of currently logged in user ({me})", hide_input=True
            )
        if new_password is None:
            new_password = typer.prompt(
                f"*** Enter new password for user {name}", hide_input=True, confirmation_prompt=True
            )
        body = {"currentPassword": current_password, "newPassword": new_password, "name": name}
        target.request("PUT", "/api/v1/account/password", json=body)
        if name == me and auth_token is None:
            _relogin(target, me, new_password)
    typer.echo(f"Password updated for '{name}'")


def _relogin(target: Session, username: str, password: str) -> None:
    """A password change ends the sessions issued before it: log in again and keep the new token."""
    config = load_config()
    entry = _entry(config, target.name)
    if entry is None:
        return
    entry["auth-token"] = target.login(username, password)
    save_config(config)


def register(app: typer.Typer) -> None:
    """Add ``login``, ``logout`` and ``account`` to the ``tugboat`` command."""
    app.command("login")(login)
    app.command("logout")(logout)
    app.add_typer(account_cli, name="account")
