"""Errors and clean-up reports for data readers.

``DataError`` is raised for input that cannot be used (bad syntax, unknown class, missing or
undecodable image) and names the file, the field and the value. ``DataReport`` counts what a
reader fixed on the way (boxes clipped to the image, zero-area boxes dropped, crowd boxes skipped)
so that nothing is changed silently.
"""

from __future__ import annotations

import dataclasses
import logging
import os

logger = logging.getLogger("zoo.data")

# Report kinds used by the readers and batching (any other string works too).
CLIPPED = "boxes clipped to the image"
DROPPED_EMPTY = "zero-area boxes dropped"
SKIPPED_CROWD = "crowd boxes skipped"
SKIPPED_DIFFICULT = "difficult boxes skipped"
OVER_MAX_BOXES = "boxes beyond max_boxes dropped"


def _format_value(value):
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_format_value(v) for v in value) + "]"
    return str(value)


class DataError(ValueError):
    """Bad input data, located by file, field and value.

    Args:
        message: What is wrong, e.g. ``"width must be > 0"``.
        file: The file at fault (shown as given).
        field: Where in the file, e.g. ``"annotations[3].bbox"`` or ``"line 7"``.
        value: The offending value (strings are quoted, numbers shown as written).

    Example:
    ```python
    raise DataError("width must be > 0", file="annotations.json",
                    field="annotations[3].bbox", value=[10, 20, -5, 4])
    # DataError: annotations.json: annotations[3].bbox = [10, 20, -5, 4]: width must be > 0
    ```
    """

    _NO_VALUE = object()

    def __init__(self, message, file=None, field=None, value=_NO_VALUE):
        self.message = message
        self.file = os.fspath(file) if file is not None else None
        self.field = field
        self.value = None if value is DataError._NO_VALUE else value
        self._has_value = value is not DataError._NO_VALUE
        super().__init__(self._render())

    def _render(self):
        where = []
        if self.file is not None:
            where.append(self.file)
        if self.field is not None:
            location = str(self.field)
            if self._has_value:
                location += f" = {_format_value(self.value)}"
            where.append(location)
        elif self._has_value:
            where.append(f"value {_format_value(self.value)}")
        return ": ".join([*where, self.message])

    def __reduce__(self):
        value = self.value if self._has_value else DataError._NO_VALUE
        return (_rebuild_error, (self.message, self.file, self.field, value, self._has_value))


def _rebuild_error(message, file, field, value, has_value):
    if has_value:
        return DataError(message, file=file, field=field, value=value)
    return DataError(message, file=file, field=field)


@dataclasses.dataclass
class DataReport:
    """Counts of what a reader changed, with a few example locations per kind.

    Args:
        max_examples: How many example locations to keep per kind.

    Example:
    ```python
    report = DataReport()
    report.add(CLIPPED, "annotations.json: annotations[4].bbox")
    if report:
        print(report.summary())
    ```
    """

    counts: dict = dataclasses.field(default_factory=dict)
    examples: dict = dataclasses.field(default_factory=dict)
    max_examples: int = 3

    def add(self, kind, location=None, count=1):
        """Counts ``count`` occurrences of ``kind``; keeps ``location`` as an example."""
        self.counts[kind] = self.counts.get(kind, 0) + count
        if location is not None:
            kept = self.examples.setdefault(kind, [])
            if len(kept) < self.max_examples:
                kept.append(str(location))

    def merge(self, other):
        """Adds the counts and examples of another report into this one; returns self."""
        for kind, count in other.counts.items():
            self.counts[kind] = self.counts.get(kind, 0) + count
            kept = self.examples.setdefault(kind, [])
            for location in other.examples.get(kind, []):
                if len(kept) < self.max_examples:
                    kept.append(location)
        return self

    def __getitem__(self, kind):
        return self.counts.get(kind, 0)

    def __bool__(self):
        return any(self.counts.values())

    def summary(self, source=None):
        """A readable multi-line summary, e.g. ``"3 boxes clipped to the image (e.g. ...)"``."""
        if not self:
            return f"{source}: nothing changed" if source else "nothing changed"
        lines = [f"{source}: data cleaned on read" if source else "data cleaned on read"]
        for kind, count in self.counts.items():
            if not count:
                continue
            line = f"  {count} {kind}"
            if self.examples.get(kind):
                line += " (e.g. " + "; ".join(self.examples[kind]) + ")"
            lines.append(line)
        return "\n".join(lines)

    def log(self, source=None):
        """Logs the summary as a warning on the ``zoo.data`` logger when something was changed."""
        if self:
            logger.warning(self.summary(source))
