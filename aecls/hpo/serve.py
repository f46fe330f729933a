"""`aecls study serve`: Optuna's gRPC storage proxy in front of one database, for many hosts.

Hosts then run studies with `--storage grpc://HOST:PORT` (aecls.hpo.storage.HeartbeatProxy): one
server holds the database connections and a cache of the finished trials, instead of every worker
of every host opening its own connections. The server is Optuna's (`run_grpc_proxy_server` over
the cached `get_storage` wrapper, as its documentation asks); aecls only checks what it is given
first, so a bad storage or a busy port is one line, not a half-started server.
"""

from __future__ import annotations

import socket
import sys

import optuna

from aecls.core.constants import SERVE_HOST, SERVE_PORT
from aecls.core.errors import AeclsError
from aecls.hpo.storage import is_grpc, is_journal, make_storage, safe_url


def check_port_free(host: str, port: int) -> None:
    """Refuse a port something already listens on. gRPC binds with SO_REUSEPORT, so a second
    server on a busy port would start without complaint and share the port with the first."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise AeclsError(f"study serve: cannot resolve host {host!r} ({e.strerror})", setting="host") from e
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as s:
        try:
            s.bind(address)
        except OSError as e:
            raise AeclsError(f"study serve: port {port} on {host} is in use or not ours to take "
                             f"({e.strerror}); choose another port", setting="port") from e


def open_for_proxy(url: str) -> optuna.storages.BaseStorage:
    """The storage the proxy serves: an RDB storage (created if new), in Optuna's cached wrapper."""
    if is_journal(url):
        raise AeclsError(f"study serve: {url} is a Journal file; Optuna's gRPC proxy serves only RDB "
                         "storages (optuna#6084): use postgresql://... (or run the hosts on the "
                         "Journal file directly, one host)")
    if is_grpc(url):
        raise AeclsError(f"study serve: {url} is a proxy already; serve the database behind it")
    return optuna.storages.get_storage(make_storage(url))  # RDBStorage -> _CachedStorage


def serve(url: str, host: str = SERVE_HOST, port: int = SERVE_PORT) -> None:
    """Serve storage `url` on host:port until Ctrl-C."""
    check_port_free(host, port)  # before the storage: a busy port creates nothing
    storage = open_for_proxy(url)
    reach = socket.getfqdn() if host in ("0.0.0.0", "::", "") else host  # all interfaces: by name
    print(f"aecls study serve: Optuna's gRPC storage proxy for {safe_url(url)} on {host}:{port} "
          f"(Ctrl-C stops it); hosts run studies with --storage grpc://{reach}:{port}",
          file=sys.stderr, flush=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # Optuna logs every served request's trial
    try:
        optuna.storages.run_grpc_proxy_server(storage, host=host, port=port)
    except KeyboardInterrupt:
        print("aecls study serve: stopped", file=sys.stderr)
