"""Throw-away servers for tests: a PostgreSQL cluster on loopback, a free port."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name) or sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found if isinstance(found, str) else (found[-1] if found else None)


def start_postgres(root: Path) -> tuple[str, callable]:
    """Start a trust-auth cluster in `root` on a free loopback port; (URL, stop function).

    Raises RuntimeError with the reason where no server can be started. As root, the server runs
    as the `postgres` user (initdb refuses root).
    """
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not (initdb and pg_ctl):
        raise RuntimeError("PostgreSQL server binaries not installed (apt-get install postgresql)")
    as_user: list[str] = []
    if os.geteuid() == 0:
        if not shutil.which("runuser"):
            raise RuntimeError("running as root without runuser: cannot start PostgreSQL")
        as_user = ["runuser", "-u", "postgres", "--"]
    root.mkdir(parents=True, exist_ok=True)
    data = root / "pgdata"
    if as_user:
        shutil.chown(root, "postgres")
    port = free_port()
    run = lambda *cmd: subprocess.run([*as_user, *cmd], capture_output=True, text=True, timeout=120)  # noqa: E731
    r = run(initdb, "-D", str(data), "-A", "trust", "-U", "postgres")
    if r.returncode:
        raise RuntimeError(f"initdb failed: {r.stderr.strip()[-300:]}")
    opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1"
    r = run(pg_ctl, "-D", str(data), "-o", opts, "-l", str(root / "log"), "-w", "start")
    if r.returncode:
        raise RuntimeError(f"pg_ctl start failed: {r.stderr.strip()[-300:]}")

    def stop() -> None:
        run(pg_ctl, "-D", str(data), "-m", "immediate", "stop")

    return f"postgresql://postgres@127.0.0.1:{port}/postgres", stop


def start_proxy(url: str) -> tuple[str, callable]:
    """`aecls study serve --storage URL` on a free loopback port; (its grpc:// URL, stop function),
    returned once it answers."""
    import sys

    from aecls.hpo.storage import HeartbeatProxy

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "aecls.cli", "study", "serve", "--storage", url,
                             "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    said = ""
    while "gRPC storage proxy" not in said and proc.poll() is None:  # said once the storage is open
        said += proc.stderr.readline()
    if "gRPC storage proxy" not in said:
        raise RuntimeError(f"aecls study serve did not start: {(said + proc.stderr.read())[-500:]}")
    HeartbeatProxy("127.0.0.1", port).wait_server_ready(timeout=30)

    def stop() -> None:
        proc.terminate()
        proc.wait(timeout=30)

    return f"grpc://127.0.0.1:{port}", stop
