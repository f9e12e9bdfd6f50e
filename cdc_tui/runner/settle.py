"""Bringing a pipeline's statuses to rest: the one place "the runner is no longer working" is
written, whether it stopped cleanly, was found dead, or is about to be replaced."""

from __future__ import annotations

from cdc_tui.domain.status import CdcStatus, PipelineStatus, StatusField
from cdc_tui.store.records import PipelineRecord
from cdc_tui.store.repositories import PipelineRepository

WORKING = (PipelineStatus.STARTING, PipelineStatus.RUNNING)
WORKING_CDC = (CdcStatus.STARTING, CdcStatus.RUNNING, CdcStatus.RECONNECTING)


def settle_stopped(
    repo: PipelineRepository, name: str, *, reason: str, actor: str
) -> PipelineRecord:
    """CDC that claims to work becomes STOPPED, and status goes via STOPPING to STOPPED."""
    pipeline = repo.get(name)
    if pipeline.cdc_status in WORKING_CDC:
        pipeline = repo.transition(name, StatusField.CDC_STATUS, CdcStatus.STOPPED,
                                   reason=reason, actor=actor)  # fmt: skip
    if pipeline.status in WORKING:
        pipeline = repo.transition(name, StatusField.STATUS, PipelineStatus.STOPPING,
                                   reason=reason, actor=actor)  # fmt: skip
    if pipeline.status == PipelineStatus.STOPPING:
        pipeline = repo.transition(name, StatusField.STATUS, PipelineStatus.STOPPED,
                                   reason=reason, actor=actor)  # fmt: skip
    return pipeline
