"""The runner's lease: one runner per pipeline, kept alive by a heartbeat thread."""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid

from cdc_tui.errors import CdcTuiError, OperationError
from cdc_tui.runner.procs import pid_alive
from cdc_tui.store.repositories import LeaseRepository, PipelineRepository

log = logging.getLogger(__name__)


class LeaseHeldError(OperationError):
    """Another live runner owns the pipeline."""

    default_title = "Already running"


class LeaseKeeper:
    """Acquires the lease, renews it every `interval_s` and watches for stop requests.

    `lost` is set when the lease could not be renewed (another runner took it over);
    `stop_requested` is set when `cdc-tui stop` marked the pipeline.
    """

    def __init__(
        self,
        leases: LeaseRepository,
        pipelines: PipelineRepository,
        pipeline: str,
        *,
        interval_s: float,
        ttl_s: float,
    ) -> None:
        self._leases = leases
        self._pipelines = pipelines
        self.pipeline = pipeline
        self.interval_s = interval_s
        self.ttl_s = ttl_s
        self.owner = uuid.uuid4().hex
        self.pid = os.getpid()
        self.host = socket.gethostname()
        self.lost = threading.Event()
        self.stop_requested = threading.Event()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> None:
        """Take the lease or raise LeaseHeldError naming the live holder."""
        lease = self._leases.acquire(
            self.pipeline, owner=self.owner, pid=self.pid, host=self.host, ttl_s=self.ttl_s
        )
        holder = self._leases.get(self.pipeline) if lease is None else None
        if holder is not None and holder.host == self.host and not pid_alive(holder.pid):
            log.info("taking over the lease of %s from dead runner pid %d", self.pipeline,
                     holder.pid)  # fmt: skip
            lease = self._leases.acquire(
                self.pipeline, owner=self.owner, pid=self.pid, host=self.host, ttl_s=self.ttl_s,
                steal_from=holder.owner,
            )  # fmt: skip
        if lease is None:
            where = f"pid {holder.pid} on {holder.host}" if holder else "another runner"
            raise LeaseHeldError(
                f"Pipeline {self.pipeline!r} is already being run by {where}; "
                f"stop it first with `cdc-tui stop {self.pipeline}`."
            )
        self._thread = threading.Thread(target=self._beat, name="lease-heartbeat", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._done.wait(self.interval_s):
            try:
                if not self._leases.heartbeat(self.pipeline, self.owner, self.ttl_s):
                    log.error("lost the lease of %s; stopping", self.pipeline)
                    self.lost.set()
                    return
                if self._pipelines.get(self.pipeline).stop_requested_at is not None:
                    self.stop_requested.set()
            except CdcTuiError as exc:  # the metadata DB blinked: the lease lasts ttl_s anyway
                log.warning("heartbeat of %s failed: %s", self.pipeline, exc.message)

    def release(self) -> None:
        """Stop the heartbeat and give the lease up."""
        self._done.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval_s + 5)
        try:
            self._leases.release(self.pipeline, self.owner)
        except CdcTuiError as exc:
            log.warning("could not release the lease of %s: %s", self.pipeline, exc.message)
