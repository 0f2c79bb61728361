"""The job state machine, exhaustively: every (from, to) pair is either legal or refused."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest

from studio9.jobs.domain import TERMINAL, TRANSITIONS, IllegalTransition, Job, JobStatus, transition
from studio9.jobs.service import JobPolicy

AT = datetime(2026, 5, 1, tzinfo=UTC)
LEGAL = {
    (JobStatus.SUBMITTED, JobStatus.QUEUED),
    (JobStatus.SUBMITTED, JobStatus.CANCELLED),
    (JobStatus.SUBMITTED, JobStatus.FAILED),
    (JobStatus.QUEUED, JobStatus.RUNNING),
    (JobStatus.QUEUED, JobStatus.CANCELLED),
    (JobStatus.QUEUED, JobStatus.FAILED),
    (JobStatus.RUNNING, JobStatus.COMPLETED),
    (JobStatus.RUNNING, JobStatus.FAILED),
    (JobStatus.RUNNING, JobStatus.CANCELLED),
    (JobStatus.RUNNING, JobStatus.QUEUED),
}


def _job(status: JobStatus) -> Job:
    return Job(
        id="j1",
        owner_id="u1",
        type="system.noop",
        params={},
        status=status,
        submitted_at=AT,
        lease_owner="w1",
        lease_expires_at=AT,
    )


def test_the_table_is_exactly_the_documented_machine() -> None:
    table = {(source, target) for source, targets in TRANSITIONS.items() for target in targets}
    assert table == LEGAL


@pytest.mark.parametrize(("source", "target"), list(itertools.product(JobStatus, JobStatus)))
def test_every_pair_is_allowed_or_refused(source: JobStatus, target: JobStatus) -> None:
    job = _job(source)
    if (source, target) in LEGAL:
        moved, event = transition(job, target, at=AT, reason="test", actor="t")
        assert moved.status is target
        assert (event.from_status, event.to_status, event.job_id) == (source, target, job.id)
    else:
        with pytest.raises(IllegalTransition):
            transition(job, target, at=AT, reason="test", actor="t")


def test_terminal_states_have_no_way_out() -> None:
    assert all(not TRANSITIONS[status] for status in TERMINAL)


def test_transitions_stamp_times_and_release_the_lease() -> None:
    running, _ = transition(_job(JobStatus.QUEUED), JobStatus.RUNNING, at=AT, reason="claimed", actor="w")
    assert running.started_at == AT
    done, _ = transition(running, JobStatus.COMPLETED, at=AT, reason="completed", actor="w")
    assert (done.completed_at, done.progress, done.lease_owner, done.lease_expires_at) == (
        AT,
        1.0,
        None,
        None,
    )
    requeued, _ = transition(running, JobStatus.QUEUED, at=AT, reason="retry", actor="w")
    assert (requeued.queued_at, requeued.lease_owner) == (AT, None)


def test_backoff_doubles_and_is_capped() -> None:
    policy = JobPolicy(retry_backoff=2.0, retry_backoff_cap=10.0)
    assert [policy.backoff(a) for a in (1, 2, 3, 4, 5)] == [2.0, 4.0, 8.0, 10.0, 10.0]
