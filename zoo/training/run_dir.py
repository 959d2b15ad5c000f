"""The run directory: one folder per training run, reused to resume it.

Layout of ``<output>/<name>/``::

    config.json      all flags + the recipe's extra config (+ zoo version, creation time)
    checkpoints/     best.keras and last.keras (ModelCheckpoint)
    logs/            TensorBoard event files
    history.csv      one row per epoch (CSVLogger, appended on resume; on resume it is cut
                     back to the epochs the backup holds, so each epoch appears once)
    backup/          state of an interrupted run (``callbacks.RunBackup``: weights, optimizer,
                     epoch, LR-schedule state, time spent; deleted when a run ends);
                     multi-worker non-chiefs use backup-worker-<index>/ beside it
    run.lock         flock'ed while a process trains in the folder (``RunLock``)

Every JSON file the spine writes goes through ``write_json``: NaN and inf become ``null``
(valid JSON) and the file is replaced atomically, so a killed process never leaves half a file.

Example:
    >>> run = create_run_dir("runs", "yolo-voc", config={"flags": {"epochs": 3}})
    >>> run.checkpoints.name, run.resumed
    ('checkpoints', False)
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import math
import os
import tempfile
from pathlib import Path

from zoo.data.errors import DataError

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Windows
    fcntl = None

__all__ = [
    "RunDir",
    "RunLock",
    "create_run_dir",
    "default_run_name",
    "json_safe",
    "latest_run",
    "load_run_config",
    "write_json",
]

LOCK_FILE = "run.lock"
_UMASK = os.umask(0o022)
os.umask(_UMASK)

_log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class RunDir:
    """Paths of one run. ``path`` is ``root/name``; ``resumed`` is True when it existed.

    On a multi-worker non-chief, ``path`` (checkpoints, logs, history) is a throw-away
    temporary folder and ``backup`` is ``<real run>/backup-worker-<index>`` (not inside
    the chief's ``backup/``, which the chief deletes when training ends).
    """

    root: Path
    name: str
    path: Path
    backup: Path
    resumed: bool = False
    chief: bool = True
    lock: RunLock | None = dataclasses.field(default=None, compare=False, repr=False)

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def logs(self) -> Path:
        return self.path / "logs"

    @property
    def history_csv(self) -> Path:
        return self.path / "history.csv"

    @property
    def config_json(self) -> Path:
        return self.path / "config.json"

    @property
    def best_checkpoint(self) -> Path:
        return self.checkpoints / "best.keras"

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoints / "last.keras"

    def release(self) -> None:
        """Release the run folder's lock (if this ``RunDir`` holds one); safe to call twice."""
        if self.lock is not None:
            self.lock.release()


# --- JSON ----------------------------------------------------------------------------------------


def json_safe(value):
    """``value`` made of plain JSON types: NaN and +-inf become ``None``, NumPy/TF scalars and
    arrays become Python numbers and lists, tuples become lists, keys become strings, anything
    else becomes ``str(value)``.

    Example:
        >>> json_safe({"map": float("nan"), "loss": 0.5, "sizes": (2, 3)})
        {'map': None, 'loss': 0.5, 'sizes': [2, 3]}
    """
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [json_safe(item) for item in value]
    if hasattr(value, "numpy") and callable(value.numpy):  # tf.Tensor / Variable
        value = value.numpy()
    if hasattr(value, "tolist") and callable(value.tolist):  # NumPy scalars and arrays
        converted = value.tolist()
        if converted is not value:
            return json_safe(converted)
    return str(value)


def write_json(
    path, value, *, indent: int | None = 2, sort_keys: bool = False, ensure_ascii: bool = True
) -> Path:
    """Write ``value`` as JSON to ``path`` atomically, with NaN/inf written as ``null``.

    The text goes to a temporary file in the same folder, is flushed to disk and then renamed
    over ``path`` (``os.replace``), so readers see the old file or the new one, never a part.
    Strict JSON (``allow_nan=False``): ``json_safe`` converts first.

    Args:
        path: the file to write (its folder must exist).
        value: anything ``json_safe`` accepts.
        indent, sort_keys, ensure_ascii: as for ``json.dumps`` (the file is UTF-8).

    Returns:
        ``path`` as a ``Path``.
    """
    path = Path(path)
    text = json.dumps(
        json_safe(value),
        indent=indent,
        sort_keys=sort_keys,
        ensure_ascii=ensure_ascii,
        allow_nan=False,
    )
    atomic_write_text(path, text + "\n")
    return path


def atomic_write_text(path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file + ``os.replace`` (see ``write_json``)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # as open() would create it (mkstemp makes it 0600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# --- lock ----------------------------------------------------------------------------------------


class RunLock:
    """An exclusive ``fcntl.flock`` on ``<run>/run.lock``, held while a process trains there.

    The operating system drops the lock when the process ends, however it ends (a crash or
    SIGKILL included), so a stale ``run.lock`` never blocks a resume. The file holds the
    holder's process id, for the message of the process that is refused. On platforms
    without ``fcntl`` the lock does nothing.

    Example:
        >>> lock = RunLock.acquire(Path("runs/exp"))      # doctest: +SKIP
        >>> lock.release()                                 # doctest: +SKIP
    """

    def __init__(self, path: Path, file=None):
        self.path = Path(path)
        self._file = file

    @classmethod
    def acquire(cls, run_path, *, name: str | None = None) -> RunLock:
        """Lock ``run_path/run.lock``; ``DataError`` (naming the folder and ``--name``) when
        another process (or another open of the file) holds it."""
        path = Path(run_path) / LOCK_FILE
        if fcntl is None:  # pragma: no cover
            return cls(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        f = open(path, "a+")
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            holder = f.read().strip() or "?"
            f.close()
            raise DataError(
                f"run folder {Path(run_path)} is in use by process {holder}; pick another "
                "--name or wait for that run to end",
                field="--name",
                value=name if name is not None else Path(run_path).name,
            ) from None
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        return cls(path, f)

    @property
    def held(self) -> bool:
        return self._file is not None

    def release(self) -> None:
        """Unlock (the file stays: deleting it would let two processes lock different files)."""
        if self._file is not None:
            try:
                fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            finally:
                self._file.close()
                self._file = None


def default_run_name(prefix: str = "run", now: datetime.datetime | None = None) -> str:
    """``<prefix>-YYYYmmdd-HHMMSS`` (local time).

    Args:
        prefix: usually the recipe name.
        now: the time to use (default: now).
    """
    now = now or datetime.datetime.now()
    return f"{prefix}-{now:%Y%m%d-%H%M%S}"


def latest_run(root) -> str | None:
    """Name of the most recently modified run under ``root`` (one with a config.json), or None."""
    root = Path(root)
    if not root.is_dir():
        return None
    runs = [p for p in root.iterdir() if (p / "config.json").is_file()]
    if not runs:
        return None
    return max(runs, key=lambda p: (p / "config.json").stat().st_mtime).name


def load_run_config(path) -> dict:
    """Read ``config.json`` of a run folder (or the file itself)."""
    path = Path(path)
    if path.is_dir():
        path = path / "config.json"
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from None


def _check_name(name: str) -> str:
    if (
        not isinstance(name, str)
        or not name.strip()
        or name in (".", "..")
        or "/" in name
        or "\\" in name
    ):
        raise ValueError(
            f"Run name must be a non-empty folder name without '/' or '\\'. Received: name={name!r}"
        )
    return name


def create_run_dir(
    root="runs",
    name: str | None = None,
    *,
    config: dict | None = None,
    resume: bool = False,
    prefix: str = "run",
    chief: bool = True,
    worker_index: int = 0,
    lock: bool = False,
) -> RunDir:
    """Create (or reopen) ``root/name/`` with its sub-folders and write ``config.json``.

    Args:
        root: the run-directory root (``--output``).
        name: the run name (``--name``). ``None``: the latest run when ``resume`` is set,
            else a new ``default_run_name(prefix)``.
        config: JSON-able dict written to ``config.json`` (values that JSON can't hold are
            written with ``str``). When the run already exists (resume) the file is rewritten
            with the new config, keeping the original ``created`` time and appending to
            ``resumed_at``; flags that changed are logged.
        resume: insist on resuming: with ``name`` the run must exist; without ``name`` the
            latest run under ``root`` is used (``FileNotFoundError`` when there is none).
            Reusing an existing name resumes even without ``resume``.
        prefix: prefix of generated names (the recipe name).
        chief: False on a multi-worker non-chief: checkpoints/logs go to a temporary folder
            (as the TF multi-worker guide prescribes), the backup to
            ``root/name/backup-worker-<worker_index>``, and no config.json is written.
        lock: take the folder's ``RunLock`` (chief only) before writing anything in it and keep
            it in ``RunDir.lock``; release it with ``RunDir.release()``. ``train`` does this.

    Raises:
        DataError: ``root`` (``--output``) or the run folder cannot be created or written
            (a file in the way, a read-only folder), or, with ``lock``, another process holds
            the run folder. Checked before anything is trained.
        worker_index: this worker's index (only used when ``chief`` is False).

    Returns:
        A ``RunDir``.
    """
    root = Path(root)
    if name is None:
        if resume:
            name = latest_run(root)
            if name is None:
                raise FileNotFoundError(
                    f"--resume without --name: no run with a config.json under {str(root)!r}"
                )
        else:
            name = default_run_name(prefix)
    name = _check_name(name)
    path = root / name
    existed = (path / "config.json").is_file() or (path / "backup").is_dir()
    if resume and not existed:
        raise FileNotFoundError(
            f"--resume: run {name!r} does not exist under {str(root)!r} (no {path / 'config.json'})"
        )

    if not chief:
        scratch = Path(tempfile.mkdtemp(prefix=f"zoo-{name}-worker{worker_index}-")) / name
        for sub in ("checkpoints", "logs"):
            (scratch / sub).mkdir(parents=True, exist_ok=True)
        backup = path / f"backup-worker-{worker_index}"
        return RunDir(
            root=root, name=name, path=scratch, backup=backup, resumed=existed, chief=False
        )

    _make_writable_folder(root, "--output", root, "pick a writable --output")
    _make_writable_folder(path, "--name", name, "pick another --name or --output")
    run_lock = RunLock.acquire(path, name=name) if lock else None
    run = RunDir(
        root=root, name=name, path=path, backup=path / "backup", resumed=existed, lock=run_lock
    )
    try:
        for sub in (run.checkpoints, run.logs):
            _make_writable_folder(sub, "--name", name, "pick another --name", probe=False)
        _write_config(run, dict(config or {}))
    except BaseException:
        run.release()
        raise
    return run


def _make_writable_folder(path: Path, flag: str, value, hint: str, *, probe=True) -> None:
    """``mkdir -p path`` and check that a file can be created in it; otherwise a ``DataError``
    naming ``path`` and ``flag`` (before anything is trained)."""
    try:
        if path.exists() and not path.is_dir():
            raise NotADirectoryError(None, "a file is in the way", str(path))
        path.mkdir(parents=True, exist_ok=True)
        if probe:
            fd, probe_file = tempfile.mkstemp(prefix=".zoo-write-check-", dir=path)
            os.close(fd)
            os.unlink(probe_file)
    except OSError as error:
        reason = error.strerror or str(error)
        if error.filename is not None and Path(error.filename) != path:
            reason = f"{reason}: {error.filename}"
        raise DataError(
            f"cannot create or write the folder {path} ({reason}); {hint}",
            field=flag,
            value=str(value),
        ) from None


def _jsonable(value):
    return json_safe(value)


def _write_config(run: RunDir, config: dict) -> None:
    now = datetime.datetime.now().isoformat(timespec="seconds")
    config = _jsonable(config)
    record = {"name": run.name, "created": now, "resumed_at": [], **config}
    try:
        from zoo import __version__

        record.setdefault("zoo_version", __version__)
    except ImportError:  # pragma: no cover - zoo always importable here
        pass
    if run.config_json.is_file():
        try:
            old = load_run_config(run.config_json)
        except ValueError:
            old = {}
        record["created"] = old.get("created", now)
        record["resumed_at"] = [*old.get("resumed_at", []), now]
        old_flags, new_flags = old.get("flags", {}), config.get("flags", {})
        changed = {
            key: (old_flags.get(key), new_flags.get(key))
            for key in sorted(set(old_flags) | set(new_flags))
            if old_flags.get(key) != new_flags.get(key)
        }
        if changed:
            _log.warning("Resuming run %r with changed flags (old, new): %s", run.name, changed)
    write_json(run.config_json, record, indent=2, sort_keys=True)
