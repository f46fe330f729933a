"""Study storages and the artifact store beside them.

    sqlite:///optuna.db        default: one file in the project, one writer at a time
    journal:PATH (or *.journal) a Journal file: several worker processes on one host
    postgresql://user@host/db  several hosts; heartbeats re-queue the trial of a killed worker
    grpc://HOST:PORT           many hosts through Optuna's gRPC proxy (`aecls study serve`) in
                               front of one database; heartbeats as on PostgreSQL (HeartbeatProxy)
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import optuna
from optuna.artifacts import FileSystemArtifactStore
from optuna.storages import GrpcStorageProxy, RetryHeartbeatStaleTrialCallback
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.storages.journal import JournalFileBackend, JournalStorage
from optuna.trial import TrialState

from aecls.core.errors import AeclsError, mask_secrets
from aecls.core.locking import FileLock
from aecls.core.paths import SERVER_ARTIFACTS, tool_command

HEARTBEAT_S, GRACE_S = 30, 90  # a trial with no heartbeat for 90 s is failed and re-queued
MAX_RETRY = 3
GRPC = "grpc://"
CONNECT_S = 10  # how long a grpc:// storage waits for its proxy to answer


def is_journal(url: str) -> bool:
    return url.startswith("journal:") or url.endswith(".journal")


def journal_path(url: str) -> Path:
    return Path(url.removeprefix("journal:"))


def is_grpc(url: str) -> bool:
    return url.startswith(GRPC)


def grpc_address(url: str) -> tuple[str, int]:
    """(host, port) of a grpc://HOST:PORT storage."""
    host, sep, port = url.removeprefix(GRPC).rstrip("/").rpartition(":")
    if not (sep and host and port.isdigit() and 0 < int(port) < 65536):
        raise AeclsError(f"storage {url!r}: use grpc://HOST:PORT, the address of an `aecls study serve`")
    return host, int(port)


HEARTBEAT_ATTR = "aecls:heartbeat"  # a trial system attr: when its worker last said it is alive


class HeartbeatProxy(GrpcStorageProxy, BaseHeartbeat):
    """Optuna's gRPC storage proxy client, with Optuna's heartbeat protocol.

    Why: the proxy is not a heartbeat storage (RDB heartbeats are a table only RDBStorage writes),
    so behind it the trial of a host killed whole would stay RUNNING for ever, where PostgreSQL
    directly fails and re-queues it. This client implements Optuna's `BaseHeartbeat` over what the
    proxy does carry: Optuna's heartbeat thread stamps each running trial's system attr
    HEARTBEAT_ATTR every `heartbeat_s`; `optuna.storages.fail_stale_trials` (every aecls worker
    calls it before each trial) fails the RUNNING trials whose stamp is older than `grace_s` and
    re-queues their params (RetryHeartbeatStaleTrialCallback), as on PostgreSQL. The server is
    Optuna's, unchanged. The stamps are the workers' clocks: the hosts' clocks must agree to well
    within the grace period (NTP does), where PostgreSQL uses its own clock.
    """

    def __init__(self, host: str, port: int, heartbeat_s: int = HEARTBEAT_S, grace_s: int = GRACE_S) -> None:
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)  # the proxy's
        super().__init__(host=host, port=port)
        self._heartbeat_s, self._grace_s = heartbeat_s, grace_s
        self._stale_callback = RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)

    def record_heartbeat(self, trial_id: int) -> None:
        import grpc

        try:
            self.set_trial_system_attr(trial_id, HEARTBEAT_ATTR, time.time())
        except optuna.exceptions.UpdateFinishedTrialError:
            pass  # another host failed it as stale: this worker's result will be refused anyway
        except grpc.RpcError as e:  # a network blip: the next beat tries again, within the grace
            optuna.logging.get_logger(__name__).warning(f"heartbeat of trial {trial_id} not sent: {e.code()}")

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        now = time.time()
        running = self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,))
        return [t._trial_id for t in running if now - t.system_attrs.get(HEARTBEAT_ATTR, now) > self._grace_s]

    def get_heartbeat_interval(self) -> int:
        return self._heartbeat_s

    def get_heartbeat_stale_trial_callback(self) -> RetryHeartbeatStaleTrialCallback:
        return self._stale_callback


def _proxy(url: str, heartbeat_s: int, grace_s: int) -> HeartbeatProxy:
    """The client of the proxy at `url`, once it has answered as an Optuna storage."""
    import grpc

    host, port = grpc_address(url)
    proxy = HeartbeatProxy(host, port, heartbeat_s, grace_s)
    try:
        proxy.wait_server_ready(timeout=CONNECT_S)
        proxy.get_all_studies()
    except ConnectionError as e:
        raise AeclsError(f"storage {url}: nothing answers at {host}:{port} within {CONNECT_S} s; start "
                         f"the proxy there (`aecls study serve --storage URL --port {port}`)") from e
    except grpc.RpcError as e:
        raise AeclsError(f"storage {url}: {host}:{port} does not answer as an Optuna storage proxy "
                         f"({e.code().name})") from e
    return proxy


def make_storage(url: str, heartbeat_s: int = HEARTBEAT_S, grace_s: int = GRACE_S,
                 create: bool = True) -> optuna.storages.BaseStorage:
    """The storage behind `url`. A file storage's folder must exist (journal and SQLite alike: a
    mistyped path is an error, not a new folder); with `create=False` (commands that only read a
    study) the file must exist too, and a server's tables are not created (a proxy's server has
    made them already)."""
    if is_grpc(url):
        return _proxy(url, heartbeat_s, grace_s)
    if not (is_journal(url) or url.startswith(("sqlite:", "postgresql:", "postgresql+", "mysql"))):
        raise AeclsError(f"storage {safe_url(url)!r}: use sqlite:///FILE, journal:FILE, postgresql://... "
                         "or grpc://HOST:PORT")
    path = storage_file(url)
    if path is not None:
        if not create and not path.is_file():
            raise AeclsError(f"storage {url}: no such file ({path}); `aecls study run` creates it")
        if not path.parent.is_dir():
            raise AeclsError(f"storage {url}: folder {path.parent} does not exist; create it first")
    if is_journal(url):
        return JournalStorage(JournalFileBackend(str(path)))
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    try:
        return retry_races(lambda: optuna.storages.RDBStorage(
            url, heartbeat_interval=heartbeat_s, grace_period=grace_s, skip_table_creation=not create,
            heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY),
        ))
    except Exception as e:  # sqlalchemy raises many kinds for a bad URL or an unreachable server
        first = (str(e).strip().splitlines() or [""])[0]  # sqlalchemy adds a "Background" line
        raise AeclsError(mask_secrets(f"cannot open storage {safe_url(url)}: {type(e).__name__}: "
                                      f"{first}")) from e


# Errors of processes that create a storage's schema or a study at the same moment (hosts started
# by one job script): Optuna creates tables, types and the alembic version row without a lock
# (optuna#1092), so all but one creator fail. Whatever failed exists by then: doing it again loads it.
RACE_MARKERS = ("already exists", "UniqueViolation", "UNIQUE constraint failed", "duplicate key value",
                "database is locked", "DuplicateTable", "DuplicateObject")
RACE_TRIES = 8


def is_race(exc: BaseException) -> bool:
    """Did `exc` come from another process creating the same schema or study just now?"""
    while exc is not None:
        if any(m in f"{type(exc).__name__}: {exc}" for m in RACE_MARKERS):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def retry_races(make, tries: int = RACE_TRIES):
    """`make()`, again after a short random pause while it fails with a creation race (Optuna's
    advice is to create the study once by hand first; a lab starting many hosts at once cannot)."""
    import random
    import time

    for attempt in range(tries):
        try:
            return make()
        except Exception as e:
            if attempt == tries - 1 or not is_race(e):
                raise
            time.sleep(random.uniform(0.05, 0.2) * (attempt + 1))
    raise AssertionError("unreachable")


def storage_file(url: str) -> Path | None:
    """The file behind a journal or SQLite storage; None for a server."""
    if is_journal(url):
        return journal_path(url)
    if url.startswith("sqlite:///"):
        return Path(url.removeprefix("sqlite:///"))
    return None


def safe_url(url: str) -> str:
    """The storage URL as it may be printed: a password in it shows as ***."""
    if "://" not in url or is_journal(url):
        return url
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL sqlalchemy can parse: print no part of what follows the scheme
        return url.split("://", 1)[0] + "://***"


def artifact_dir(url: str, directory: str | Path | None = None) -> Path:
    """Where trial artifacts (reconstruction grids) go: `directory` if given (one that several
    hosts share, for a server storage), else beside a file storage, else SERVER_ARTIFACTS."""
    if directory is not None:
        return Path(directory)
    path = storage_file(url)
    return Path(SERVER_ARTIFACTS) if path is None else path.with_name(path.stem + "_artifacts")


def artifact_store(url: str, directory: str | Path | None = None) -> FileSystemArtifactStore:
    path = artifact_dir(url, directory)
    path.mkdir(parents=True, exist_ok=True)
    return FileSystemArtifactStore(str(path))


class StorageLock(FileLock):
    """The trial lock of a file storage: a file beside it that every worker on this host locks."""

    shared_server = False  # every worker of this storage takes this lock


class NoLock:
    shared_server = True  # a server storage: workers on other hosts take no lock of ours

    def acquire(self) -> None:
        pass

    def release(self) -> None:
        pass


def trial_lock(url: str) -> StorageLock | NoLock:
    """Makes "count the study's trials, then start one" atomic for workers on one host. Server
    storages get none: there, workers on several hosts may overshoot the total by a trial or two."""
    path = storage_file(url)
    # Not PATH.lock: Optuna's journal backend takes that name for its own symlink lock, and a
    # file of ours there would make it wait forever.
    return NoLock() if path is None else StorageLock(path.with_name(path.stem + "_workers.lock"))


def dashboard_command(storage: str, artifacts: str | None = None) -> str:
    """The optuna-dashboard command for this storage, with no password from its URL (for a proxy:
    where to point it instead, as optuna-dashboard reads databases, not the proxy)."""
    if is_grpc(storage):
        return "optuna-dashboard reads the database behind the proxy: give it that URL"
    # absolute paths: the command is pasted in another terminal, often in another folder
    path = storage_file(storage)
    target = safe_url(storage) if path is None else \
        str(path.resolve()) if is_journal(storage) else f"sqlite:///{path.resolve()}"
    return tool_command("optuna-dashboard", target, "--artifact-dir",
                        str(artifact_dir(storage, artifacts).resolve()))


OWNER_FILE = ".aecls_storage"  # in each output folder of a study: the storage it belongs to


def storage_key(url: str) -> str:
    """Which storage `url` names, comparable across working directories: a file's absolute path,
    a server's URL without its password (given or not, the same server)."""
    path = storage_file(url)
    return f"file:{path.resolve()}" if path is not None else safe_url(url).replace(":***@", "@")


def shown_storage(key: str) -> str:
    """A storage_key as printed: a file's absolute path, a server's URL without its password."""
    return key.removeprefix("file:")


def check_outputs(study: str, url: str, *roots: str | Path) -> None:
    """Outputs are kept under ROOT/STUDY (TensorBoard runs, plots, best.json): refuse, before
    anything is opened or created, to mix in a same-named study of another storage."""
    key = storage_key(url)
    for root in roots:
        folder = Path(root) / study
        owner = folder / OWNER_FILE
        had = owner.read_text().strip() if owner.is_file() else key
        if had != key:
            raise AeclsError(f"{folder} holds study {study} of storage {shown_storage(had)}, not of "
                             f"{shown_storage(key)}: give the study another name, or keep its outputs "
                             "in other folders", setting=("out", "log_dir"))


def mark_outputs(study: str, url: str, *roots: str | Path) -> None:
    """Mark each ROOT/STUDY folder with the storage it belongs to (once that storage is open)."""
    key = storage_key(url)
    for root in roots:
        folder = Path(root) / study
        if not (folder / OWNER_FILE).is_file():
            folder.mkdir(parents=True, exist_ok=True)
            (folder / OWNER_FILE).write_text(key + "\n")


def claim_outputs(study: str, url: str, *roots: str | Path) -> None:
    """check_outputs, then mark_outputs: for commands whose storage is already open."""
    check_outputs(study, url, *roots)
    mark_outputs(study, url, *roots)
