"""``TrainingError``: a run that started but cannot go on (NaN loss, a checkpoint that can't be
written). ``zoo.training.cli.run_cli`` prints it as one ``error: ...`` line with exit status 1.

A ``zoo.data.errors.DataError`` is the user's input (exit status 2); a ``TrainingError`` is
training that failed on the way: the run folder keeps the last good checkpoint and backup, so
running again with the same ``--name`` resumes from the last completed epoch.
"""

from __future__ import annotations

__all__ = ["TrainingError"]


class TrainingError(RuntimeError):
    """Training stopped on a failure the user can act on, with a one-line message.

    Example:
        >>> raise TrainingError("loss is nan at epoch 3, step 17 (loss=nan box=0.3)")
        Traceback (most recent call last):
        ...
        zoo.training.errors.TrainingError: loss is nan at epoch 3, step 17 (loss=nan box=0.3)
    """
