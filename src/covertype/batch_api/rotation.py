"""Batch rotation per group: which batch a group gets now, and which rows it is served.

The course API's behaviour is kept (batches 1..10 per group, the next one after
``min_update_seconds``, a sample of ``batch_size // 10`` rows per call, then "all collected")
and its defects are fixed: the slice follows the group's batch, the last batch ends at the end
of the data, batch 10 is served for its whole window, and the state advances atomically in SQLite
so concurrent requests and restarts never skip or repeat a batch.
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

NOT_STARTED = 0


class CollectionFinished(Exception):
    """The group has been served every batch."""

    def __init__(self, group_number: int, batches: int) -> None:
        super().__init__(
            f"All the data was collected for group {group_number}: batches 1..{batches} were served. "
            f"Call /restart_data_generation?group_number={group_number} to start over."
        )


@dataclass(frozen=True)
class RotationSettings:
    """How the data is cut and served."""

    min_update_seconds: float = 300.0
    batches: int = 10
    groups: int = 10
    #: Rows per call; None serves ``batch_size // 10`` as the course does, 0 serves whole batches.
    rows_per_request: int | None = None
    #: With a seed, the same group, batch and call number always get the same rows.
    seed: int | None = None


@dataclass(frozen=True)
class ServedBatch:
    group_number: int
    batch_number: int
    rows: list[list[str]]


@dataclass(frozen=True)
class GroupState:
    """Where a group that has called ``/data`` stands, as of a moment; reading it advances nothing."""

    group_number: int
    batch_number: int
    #: Until the next ``/data`` call moves the group on (to the next batch, or past the last one).
    seconds_to_next_batch: float
    #: Every batch has been served: ``/data`` answers 400 until the group is restarted.
    finished: bool


class BatchRotation:
    """The rows, the rotation rules and the per-group state persisted in a SQLite file."""

    def __init__(self, rows: Sequence[Sequence[str]], state_path: Path, settings: RotationSettings) -> None:
        if len(rows) < settings.batches:
            raise ValueError(f"need at least {settings.batches} rows to cut {settings.batches} batches")
        self.rows = [list(row) for row in rows]
        self.settings = settings
        self.state_path = state_path
        state_path.parent.mkdir(parents=True, exist_ok=True)
        with self._transaction() as connection:
            connection.execute(
                "CREATE TABLE IF NOT EXISTS group_state ("
                " group_number INTEGER PRIMARY KEY,"
                " batch_number INTEGER NOT NULL,"
                " last_advance REAL NOT NULL,"
                " draws INTEGER NOT NULL)"
            )

    @property
    def batch_size(self) -> int:
        return len(self.rows) // self.settings.batches

    @property
    def rows_per_request(self) -> int | None:
        """Rows sampled per call; None when whole batches are served."""
        configured = self.settings.rows_per_request
        if configured is None:
            return max(1, self.batch_size // 10)
        return configured or None

    def batch_bounds(self, batch_number: int) -> tuple[int, int]:
        """Row range of a batch (1-based); the last batch runs to the end of the data."""
        start = (batch_number - 1) * self.batch_size
        stop = len(self.rows) if batch_number == self.settings.batches else batch_number * self.batch_size
        return start, stop

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        # BEGIN IMMEDIATE takes the write lock up front: two requests at a rotation boundary,
        # from threads or processes, read-and-advance one after the other, never both.
        connection = sqlite3.connect(self.state_path, timeout=30, isolation_level=None)
        try:
            connection.execute("BEGIN IMMEDIATE")
            yield connection
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        finally:
            connection.close()

    def _advance(self, group_number: int, now: float) -> tuple[int, int]:
        """Move the group's state on as the clock says; return its batch and this call's draw number."""
        with self._transaction() as connection:
            found = connection.execute(
                "SELECT batch_number, last_advance, draws FROM group_state WHERE group_number = ?",
                (group_number,),
            ).fetchone()
            batch_number, last_advance, draws = found or (NOT_STARTED, 0.0, 0)
            if batch_number > self.settings.batches:
                raise CollectionFinished(group_number, self.settings.batches)
            if batch_number == NOT_STARTED or now - last_advance >= self.settings.min_update_seconds:
                batch_number, last_advance, draws = batch_number + 1, now, 0
            connection.execute(
                "INSERT OR REPLACE INTO group_state VALUES (?, ?, ?, ?)",
                (group_number, batch_number, last_advance, draws + 1),
            )
        if batch_number > self.settings.batches:
            raise CollectionFinished(group_number, self.settings.batches)
        return batch_number, draws

    def serve(self, group_number: int, now: float) -> ServedBatch:
        """The rows a ``/data`` call gets at time ``now``: a sample of the group's current batch."""
        batch_number, draw = self._advance(group_number, now)
        start, stop = self.batch_bounds(batch_number)
        seed = self.settings.seed
        rng = random.Random(f"{seed}:{group_number}:{batch_number}:{draw}") if seed is not None else random
        size = min(self.rows_per_request or stop - start, stop - start)
        picked = rng.sample(range(start, stop), size)
        return ServedBatch(group_number, batch_number, [self.rows[index] for index in picked])

    def group_states(self, now: float) -> list[GroupState]:
        """The state of every group that has been served, by group number, as of ``now``."""
        with closing(sqlite3.connect(self.state_path, timeout=30)) as connection:
            found = connection.execute(
                "SELECT group_number, batch_number, last_advance FROM group_state ORDER BY group_number"
            ).fetchall()
        states = []
        for group_number, batch_number, last_advance in found:
            finished = batch_number > self.settings.batches
            states.append(
                GroupState(
                    group_number=group_number,
                    batch_number=min(batch_number, self.settings.batches),
                    seconds_to_next_batch=(
                        0.0 if finished else max(0.0, last_advance + self.settings.min_update_seconds - now)
                    ),
                    finished=finished,
                )
            )
        return states

    def restart(self, group_number: int) -> None:
        """Start the group over at batch 1."""
        with self._transaction() as connection:
            connection.execute("DELETE FROM group_state WHERE group_number = ?", (group_number,))
