"""The run directory: one folder per training run, reused to resume it.

Layout of ``<output>/<name>/``::

    config.json      all flags + the recipe's extra config (+ zoo version, creation time)
    checkpoints/     best.keras and last.keras (ModelCheckpoint)
    logs/            TensorBoard event files
    history.csv      one row per epoch (CSVLogger, appended on resume)
    backup/          BackupAndRestore state of an interrupted run (deleted when a run ends);
                     multi-worker non-chiefs use backup-worker-<index>/ beside it

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
import tempfile
from pathlib import Path

__all__ = ["RunDir", "create_run_dir", "default_run_name", "latest_run", "load_run_config"]

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

    run = RunDir(root=root, name=name, path=path, backup=path / "backup", resumed=existed)
    for sub in (run.checkpoints, run.logs):
        sub.mkdir(parents=True, exist_ok=True)
    _write_config(run, dict(config or {}))
    return run


def _jsonable(value):
    return json.loads(json.dumps(value, default=str, sort_keys=True))


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
    run.config_json.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
