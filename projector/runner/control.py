"""What the shard consumers share with the runner: the stop flag, the batch budget, the report sink."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from projector.runner.reports import BatchReport

logger = logging.getLogger(__name__)


class RunControl:
    """Thread-safe stop flag, ``--max-batches`` budget and per-batch reporting."""

    def __init__(
        self, max_batches: int | None = None, on_batch: Callable[[BatchReport], None] | None = None
    ) -> None:
        self.stop_event = threading.Event()
        self.wake = threading.Event()  # a shard finished: look for its children now
        self.max_batches = max_batches
        self.on_batch = on_batch
        self.stop_reason: str | None = None
        self._lock = threading.Lock()
        self._taken = 0
        self._done = 0

    @property
    def stopping(self) -> bool:
        return self.stop_event.is_set()

    def stop(self, reason: str) -> None:
        with self._lock:
            if self.stop_reason is None:
                self.stop_reason = reason
        self.stop_event.set()
        self.wake.set()

    def take_batch(self) -> bool:
        """Permission to invoke one more batch (False once ``--max-batches`` are under way)."""
        with self._lock:
            if self.stop_event.is_set():
                return False
            if self.max_batches is not None and self._taken >= self.max_batches:
                return False
            self._taken += 1
            return True

    def batch_done(self) -> None:
        """Called after a batch's outcome is checkpointed; the last allowed batch stops the run."""
        with self._lock:
            self._done += 1
            last = self.max_batches is not None and self._done >= self.max_batches
        if last:
            self.stop(f"--max-batches {self.max_batches} reached")

    @property
    def batches(self) -> int:
        return self._done

    def report(self, report: BatchReport) -> None:
        if self.on_batch is None:
            return
        try:
            self.on_batch(report)
        except Exception as error:  # a broken status printer must not stop the stream
            logger.warning("batch report not printed: %s", error)

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds`` unless stopped; True when stopping."""
        return self.stop_event.wait(max(0.0, seconds))
