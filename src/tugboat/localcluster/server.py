"""Running the local cluster as a process: state directory, lock, kubeconfig, TLS, uvicorn.

``tugboat cluster serve`` and ``tugboat up`` call :func:`serve`. The state directory holds the SQLite
database, the kubeconfig that points at the server (with the real port, also when port 0 was asked for),
and, with TLS, the generated CA, server certificate and admin token. A lock file keeps a second server
off the same state directory.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import datetime
import fcntl
import functools
import ipaddress
import logging
import os
import secrets
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import uvicorn
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tugboat.localcluster import companions as companions_mod
from tugboat.localcluster.auth import Authenticator
from tugboat.localcluster.cluster import LocalCluster
from tugboat.localcluster.controllers.base import SimulationOptions
from tugboat.localcluster.controllers.process import ControllersProcess, ProcessConfig

log = logging.getLogger(__name__)

CONTEXT = "tugboat"


class ServerError(Exception):
    """The local cluster cannot start (state directory locked, port taken, bad certificates...)."""


def default_state_dir() -> Path:
    env = os.environ.get("TUGBOAT_HOME")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".local" / "state" / "tugboat"


@dataclass
class ServeOptions:
    state_dir: Path
    host: str = "127.0.0.1"
    port: int = 6443
    tls: bool = False
    bookmark_interval: float = 60.0
    retain_revisions: int = 1000
    retain_seconds: float = 300.0
    compact_interval: float = 30.0
    simulation: SimulationOptions | None = field(default_factory=SimulationOptions)  # None: no simulation
    controllers: list[str] | None = None  # which simulated controllers run (None: all)
    # Programs to run beside the cluster once it serves (``{kubeconfig}`` in an argument is replaced).
    companions: list[companions_mod.Spec | list[str]] = field(default_factory=list)
    companion_logs: Path | None = None  # a directory for their output (None: this terminal)


@contextlib.contextmanager
def state_lock(state_dir: Path) -> Iterator[IO[str]]:
    """Hold the state directory's lock for the life of the server."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / "apiserver.lock"
    handle = path.open("a+")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise ServerError(
            f"the state directory {state_dir} is in use by another Tugboat local cluster ({holder}); "
            "stop it first, or pass another --state-dir"
        ) from exc
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}")
    handle.flush()
    try:
        yield handle
    finally:
        with contextlib.suppress(OSError):
            handle.seek(0)
            handle.truncate()
        handle.close()


def _secret_file(path: Path, make: Callable[[], bytes]) -> bytes:
    if path.exists():
        return path.read_bytes()
    data = make()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    return data


@dataclass
class Pki:
    ca_pem: bytes
    cert_path: Path
    key_path: Path


def ensure_pki(state_dir: Path, host: str) -> Pki:
    """A CA and a server certificate for ``host``, ``127.0.0.1`` and ``localhost``, made once."""
    pki = state_dir / "pki"
    pki.mkdir(parents=True, exist_ok=True)
    ca_path, cert_path, key_path = pki / "ca.crt", pki / "server.crt", pki / "server.key"
    if ca_path.exists() and cert_path.exists() and key_path.exists():
        return Pki(ca_path.read_bytes(), cert_path, key_path)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tugboat-local-ca")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    ]
    with contextlib.suppress(ValueError):
        address = ipaddress.ip_address(host)
        if str(address) != "127.0.0.1":
            names.append(x509.IPAddress(address))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tugboat-apiserver")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write_private(key_path, key_pem)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    ca_path.write_bytes(ca_pem)
    return Pki(ca_pem, cert_path, key_path)


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def write_kubeconfig(state_dir: Path, server: str, *, ca_pem: bytes | None, token: str | None) -> Path:
    """Write ``state_dir/kubeconfig`` with one context, ``tugboat``, pointing at ``server``."""
    cluster: dict[str, object] = {"server": server}
    if ca_pem is not None:
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    user: dict[str, object] = {"token": token} if token else {}
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CONTEXT, "cluster": cluster}],
        "users": [{"name": CONTEXT, "user": user}],
        "contexts": [
            {"name": CONTEXT, "context": {"cluster": CONTEXT, "user": CONTEXT, "namespace": "default"}}
        ],
        "current-context": CONTEXT,
        "preferences": {},
    }
    path = state_dir / "kubeconfig"
    tmp = path.with_suffix(".tmp")
    _write_private(tmp, yaml.safe_dump(config, sort_keys=False).encode())
    tmp.replace(path)
    return path


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on accepted sockets whose proto says TCP,
    # and without it every keep-alive response waits ~40 ms for a delayed ACK (Nagle).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ServerError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    sock.listen(1024)
    sock.setblocking(False)
    return sock


class _Server(uvicorn.Server):
    """uvicorn's server minus its signal handling, which :func:`serve` does instead.

    uvicorn re-raises a captured SIGTERM once its own shutdown is done, which kills the process before the
    cluster (its store, its controllers) is closed and makes the exit status -15.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.contextmanager
def _stop_on_signals(stop: asyncio.Event) -> Iterator[None]:
    """Set ``stop`` on SIGINT/SIGTERM (``serve`` then shuts everything down in order)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    try:
        yield
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)


def _controllers_process(
    options: ServeOptions, url: str, port: int, token: str | None, pki: Pki | None
) -> ControllersProcess:
    """The simulated controllers: a child process, an API client of this very server (over loopback)."""
    assert options.simulation is not None
    scheme = "https" if pki else "http"
    wildcard = options.host in ("0.0.0.0", "::")
    return ControllersProcess(
        ProcessConfig(
            url=f"{scheme}://127.0.0.1:{port}" if wildcard else url,
            token=token,
            ca_file=str(pki.cert_path.parent / "ca.crt") if pki else None,
            # Published in every namespace's kube-root-ca.crt.
            ca_pem=pki.ca_pem.decode() if pki else None,
            controllers=options.controllers,
            simulation=dataclasses.asdict(options.simulation),
        )
    )


async def serve(options: ServeOptions, *, on_ready: Callable[[str, Path], None] | None = None) -> None:
    """Run the local cluster until SIGINT/SIGTERM."""
    state_dir = options.state_dir
    with state_lock(state_dir):
        signing_key = _secret_file(state_dir / "sa-signing.key", lambda: secrets.token_bytes(32))
        admin_token: str | None = None
        pki: Pki | None = None
        if options.tls:
            admin_token = (
                _secret_file(state_dir / "token", lambda: secrets.token_urlsafe(32).encode()).decode().strip()
            )
            pki = ensure_pki(state_dir, options.host)
        authenticator = Authenticator(admin_token=admin_token, signing_key=signing_key)
        sock = bind(options.host, options.port)
        port = sock.getsockname()[1]
        scheme = "https" if options.tls else "http"
        display_host = f"[{options.host}]" if ":" in options.host else options.host
        url = f"{scheme}://{display_host}:{port}"
        cluster = LocalCluster(
            state_dir / "cluster.db",
            authenticator=authenticator,
            bookmark_interval=options.bookmark_interval,
            retain_revisions=options.retain_revisions,
            retain_seconds=options.retain_seconds,
            compact_interval=options.compact_interval,
        )
        await cluster.start()
        try:
            config = uvicorn.Config(
                cluster.asgi(),
                log_level="warning",
                access_log=False,
                lifespan="off",
                ssl_certfile=str(pki.cert_path) if pki else None,
                ssl_keyfile=str(pki.key_path) if pki else None,
                timeout_graceful_shutdown=1,
                timeout_keep_alive=120,
            )
            server = _Server(config)
            stop = asyncio.Event()
            with _stop_on_signals(stop):
                serving = asyncio.create_task(server.serve(sockets=[sock]))
                while not server.started and not serving.done():
                    await asyncio.sleep(0.01)
                manager = None
                running: list[companions_mod.Companion] = []
                try:
                    if server.started and options.simulation is not None:
                        manager = _controllers_process(options, url, port, admin_token, pki)
                        await manager.start()
                        cluster.http.metric_providers["simulated"] = functools.partial(
                            manager.metrics, "simulated"
                        )
                    # The kubeconfig appears when everything is up, simulation included, so that whoever
                    # waits for it (tests, `tugboat up`) finds a working cluster.
                    kubeconfig = write_kubeconfig(
                        state_dir, url, ca_pem=pki.ca_pem if pki else None, token=admin_token
                    )
                    if server.started:
                        for spec in options.companions:
                            if isinstance(spec, companions_mod.Spec):
                                companion = companions_mod.Companion(
                                    spec.argv, name=spec.name, log_dir=options.companion_logs
                                )
                            else:
                                companion = companions_mod.Companion(spec, log_dir=options.companion_logs)
                            await companion.start(kubeconfig)
                            running.append(companion)
                    if server.started and on_ready is not None:
                        on_ready(url, kubeconfig)
                    stopping = asyncio.create_task(stop.wait())
                    await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
                    stopping.cancel()
                finally:
                    # The controllers first (their watches would hold the server's graceful shutdown).
                    await asyncio.gather(*(c.stop() for c in running))
                    if manager is not None:
                        await manager.stop()
                    await cluster.lifecycle.stop()
                    cluster.store.end_subscriptions()  # open watches end now, not at the shutdown timeout
                    server.should_exit = True
                    await serving
        finally:
            await cluster.stop()
            sock.close()
