"""JobStore / JobHistory / ChangeFeed contract, run against every system-of-record adapter."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest

from studio9 import bootstrap
from studio9.backends import AdapterOptions
from studio9.config import Settings
from studio9.ids import new_id
from studio9.jobs.domain import (
    Claim,
    Heartbeat,
    Job,
    JobError,
    JobEvent,
    JobExists,
    JobNotFound,
    JobStatus,
    transition,
)
from studio9.jobs.ports import DueCriteria, JobQuery

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["memory", "sqlite", "sqlite-uri", "postgresql"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    if request.param == "memory":
        url = "memory://"
    elif request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path}/contract.db"
    elif request.param == "sqlite-uri":  # a URI file name: the SQLAlchemy Core store, not the fast path
        url = f"sqlite+aiosqlite:///file:{tmp_path}/contract.db?uri=true"
    else:
        url = request.getfixturevalue("postgres_url")
    bootstrap.migrate(Settings(database_url=url, data_dir=tmp_path))
    async with bootstrap.open_adapter(
        bootstrap.DATABASES, url, setting="STUDIO9_DATABASE_URL", options=AdapterOptions(data_dir=tmp_path)
    ) as adapter:
        yield adapter


def _job(**changes: Any) -> Job:
    values: dict[str, Any] = {
        "id": new_id(),
        "owner_id": "owner-1",
        "type": "system.noop",
        "params": {"a": [1, "x"]},
        "status": JobStatus.QUEUED,
        "submitted_at": NOW,
        "queued_at": NOW,
        "dispatched_at": NOW,
    }
    values.update(changes)
    return Job(**values)


def _event(job: Job, reason: str = "submitted") -> JobEvent:
    return JobEvent(
        job_id=job.id, at=NOW, from_status=None, to_status=job.status, reason=reason, actor="test"
    )


async def test_added_job_reads_back_equal(database: Any) -> None:
    job = _job(
        error=JobError(code="x", message="y", details={"k": 1}),
        result={"r": 1.5},
        outputs=("a.json",),
        eta_seconds=3.0,
        lease_owner="w",
        lease_expires_at=NOW,
        cancel_requested=True,
        cancel_requested_at=NOW,
    )
    await database.jobs.add(job, [_event(job)])
    assert await database.jobs.get(job.id) == job
    with pytest.raises(JobNotFound):
        await database.jobs.get("missing")


async def test_a_second_job_of_one_id_is_refused_and_writes_nothing(database: Any) -> None:
    job = _job()
    await database.jobs.add(job, [_event(job)])
    with pytest.raises(JobExists):
        await database.jobs.add(attrs.evolve(job, type="other"), [_event(job, "again")])
    assert await database.jobs.get(job.id) == job
    assert [e.reason for e in await database.jobs.events(job.id)] == ["submitted"]


async def test_save_is_compare_and_set(database: Any) -> None:
    job = _job()
    await database.jobs.add(job, [_event(job)])
    running, event = transition(job, JobStatus.RUNNING, at=NOW, reason="claimed", actor="w1")
    stored = await database.jobs.save(running, expected_version=0, events=[event])
    assert stored is not None and stored.version == 1
    assert await database.jobs.save(running, expected_version=0, events=[event]) is None  # lost race
    assert (await database.jobs.get(job.id)).status is JobStatus.RUNNING
    assert [e.reason for e in await database.jobs.events(job.id)] == ["submitted", "claimed"]


async def test_concurrent_savers_exactly_one_wins(database: Any) -> None:
    job = _job()
    await database.jobs.add(job, [_event(job)])
    attempts = [attrs.evolve(job, lease_owner=f"w{i}") for i in range(8)]
    results = await asyncio.gather(*(database.jobs.save(a, expected_version=0) for a in attempts))
    assert sum(r is not None for r in results) == 1


async def test_heartbeats_are_kept_newest_first(database: Any) -> None:
    job = _job(status=JobStatus.RUNNING)
    await database.jobs.add(job, [_event(job)])
    version = 0
    for i in range(3):
        beat = Heartbeat(
            job_id=job.id, at=NOW + timedelta(seconds=i), attempt=1, progress=i / 3, message=f"m{i}"
        )
        stored = await database.jobs.save(
            attrs.evolve(job, progress=i / 3), expected_version=version, heartbeat=beat
        )
        assert stored is not None
        version = stored.version
    beats = await database.jobs.heartbeats(job.id, limit=2)
    assert [b.message for b in beats] == ["m2", "m1"]


async def test_list_filters_and_pages_newest_first(database: Any) -> None:
    jobs = [
        _job(id=new_id(1_000 + i), owner_id="a" if i % 2 else "b", type="t1" if i < 5 else "t2")
        for i in range(10)
    ]
    for job in jobs:
        await database.jobs.add(job, [_event(job)])
    page = await database.jobs.list(JobQuery(limit=4))
    assert [j.id for j in page] == [j.id for j in reversed(jobs)][:4]
    rest = await database.jobs.list(JobQuery(limit=100, before=page[-1].id))
    assert len(page) + len(rest) == 10
    assert {j.owner_id for j in await database.jobs.list(JobQuery(owner_id="a"))} == {"a"}
    assert len(await database.jobs.list(JobQuery(type="t2", owner_id="b"))) == 2
    assert len(await database.jobs.list(JobQuery(status=JobStatus.RUNNING))) == 0
    assert len(await database.jobs.list(JobQuery(ids=[jobs[0].id, jobs[1].id]))) == 2


async def test_due_finds_exactly_the_jobs_needing_attention(database: Any) -> None:
    old, fresh = NOW - timedelta(minutes=5), NOW
    due = {
        "stale_queued": _job(dispatched_at=old),
        "never_dispatched": _job(dispatched_at=None),
        "lease_expired": _job(
            status=JobStatus.RUNNING, lease_expires_at=old, deadline_at=NOW + timedelta(hours=1)
        ),
        "past_deadline": _job(
            status=JobStatus.RUNNING, lease_expires_at=NOW + timedelta(hours=1), deadline_at=old
        ),
        "cancel_overdue": _job(
            status=JobStatus.RUNNING,
            lease_expires_at=NOW + timedelta(hours=1),
            cancel_requested=True,
            cancel_requested_at=old,
        ),
        "unclean": _job(status=JobStatus.COMPLETED, completed_at=old),
    }
    not_due = {
        "fresh_queued": _job(dispatched_at=fresh),
        "backing_off": _job(dispatched_at=old, not_before=NOW + timedelta(minutes=1)),
        "healthy": _job(
            status=JobStatus.RUNNING,
            lease_expires_at=NOW + timedelta(seconds=30),
            deadline_at=NOW + timedelta(hours=1),
        ),
        "cancel_recent": _job(
            status=JobStatus.RUNNING,
            lease_expires_at=NOW + timedelta(seconds=30),
            cancel_requested=True,
            cancel_requested_at=fresh,
        ),
        "clean": _job(status=JobStatus.FAILED, cleaned_at=old),
    }
    for job in [*due.values(), *not_due.values()]:
        await database.jobs.add(job, [_event(job)])
    criteria = DueCriteria(
        now=NOW, redeliver_before=NOW - timedelta(seconds=30), cancel_before=NOW - timedelta(seconds=30)
    )
    found = {j.id for j in await database.jobs.due(criteria)}
    assert found == {j.id for j in due.values()}


async def test_counts_cover_every_status(database: Any) -> None:
    for status in (JobStatus.QUEUED, JobStatus.QUEUED, JobStatus.FAILED):
        job = _job(status=status)
        await database.jobs.add(job, [_event(job)])
    counts = await database.jobs.counts()
    assert counts[JobStatus.QUEUED] == 2 and counts[JobStatus.FAILED] == 1 and counts[JobStatus.RUNNING] == 0
    assert set(counts) == set(JobStatus)


async def test_every_change_reaches_the_outbox_until_acknowledged(database: Any) -> None:
    job = _job()
    await database.jobs.add(job, [_event(job)])
    stored = await database.jobs.save(attrs.evolve(job, progress=0.5), expected_version=0)
    assert stored is not None
    running, event = transition(stored, JobStatus.RUNNING, at=NOW, reason="claimed", actor="w")
    assert await database.jobs.save(running, expected_version=1, events=[event]) is not None
    pending = await database.jobs.pending(limit=10)
    assert [(c.topic, c.ref_id) for c in pending] == [
        ("job.queued", job.id),  # created: index it, and announce its status
        ("job", job.id),  # progress only: index it
        ("job.running", job.id),
    ]
    await database.jobs.acknowledge([pending[0].id])
    assert [c.id for c in await database.jobs.pending(limit=10)] == [c.id for c in pending[1:]]
    await database.jobs.acknowledge([c.id for c in pending])
    assert await database.jobs.pending(limit=10) == []


def _claim(worker: str = "w1", at: datetime = NOW, types: tuple[str, ...] = ("system.noop", "t2")) -> Claim:
    return Claim(
        worker=worker,
        at=at,
        lease_expires_at=at + timedelta(seconds=30),
        deadlines={t: at + timedelta(seconds=60 * (i + 1)) for i, t in enumerate(types)},
    )


async def test_claim_writes_what_claim_apply_says_in_one_step(database: Any) -> None:
    job = _job(attempt=1, progress=0.5, message="old", eta_seconds=3.0, not_before=NOW - timedelta(seconds=1))
    await database.jobs.add(job, [_event(job)])
    claim = _claim()
    claimed = await database.jobs.claim(job.id, claim)
    expected = claim.apply(job)
    assert expected is not None
    assert claimed == attrs.evolve(expected[0], version=1)
    assert claimed.deadline_at == NOW + timedelta(seconds=60) and claimed.attempt == 2
    assert await database.jobs.get(job.id) == claimed
    assert (await database.jobs.events(job.id))[-1] == expected[1] == claim.event(job.id)
    assert [c.topic for c in await database.jobs.pending(limit=10)] == ["job.queued", "job.running"]


async def test_claim_refuses_missing_unqueued_undue_and_unknown_type_jobs(database: Any) -> None:
    refused = [
        _job(status=JobStatus.RUNNING),
        _job(status=JobStatus.CANCELLED),
        _job(not_before=NOW + timedelta(seconds=1)),
        _job(type="not.run.here"),
    ]
    for job in refused:
        await database.jobs.add(job, [_event(job)])
    assert await database.jobs.claim("missing", _claim()) is None
    for job in refused:
        assert await database.jobs.claim(job.id, _claim()) is None
        assert await database.jobs.get(job.id) == job  # nothing written
        assert len(await database.jobs.events(job.id)) == 1
    assert await database.jobs.claim(refused[2].id, _claim(at=NOW + timedelta(seconds=1))) is not None
    assert await database.jobs.claim(refused[3].id, _claim(types=())) is None


async def test_concurrent_claims_exactly_one_wins(database: Any) -> None:
    job = _job()
    await database.jobs.add(job, [_event(job)])
    results = await asyncio.gather(*(database.jobs.claim(job.id, _claim(worker=f"w{i}")) for i in range(8)))
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    stored = await database.jobs.get(job.id)
    assert (stored.attempt, stored.version, stored.lease_owner) == (1, 1, winners[0].lease_owner)
    assert [e.reason for e in await database.jobs.events(job.id)] == ["submitted", "claimed"]


async def test_heartbeats_for_a_batch_are_newest_first_per_job(database: Any) -> None:
    jobs = [_job(status=JobStatus.RUNNING) for _ in range(3)]
    for job in jobs:
        await database.jobs.add(job, [_event(job)])
    for n, job in enumerate(jobs[:2]):
        version = 0
        for i in range(3 + n):
            beat = Heartbeat(
                job_id=job.id, at=NOW + timedelta(seconds=i), attempt=1, progress=0.1, message=f"m{i}"
            )
            stored = await database.jobs.save(job, expected_version=version, heartbeat=beat)
            assert stored is not None
            version = stored.version
    found = await database.jobs.heartbeats_for([j.id for j in jobs] + ["missing"], limit_each=2)
    assert {k: [b.message for b in v] for k, v in found.items()} == {
        jobs[0].id: ["m2", "m1"],
        jobs[1].id: ["m3", "m2"],
    }
    assert found[jobs[0].id][0] == (await database.jobs.heartbeats(jobs[0].id))[0]
    assert await database.jobs.heartbeats_for([], limit_each=2) == {}


async def test_rows_read_alike_through_the_store_and_the_orm(database: Any) -> None:
    if not hasattr(database, "sessions"):
        pytest.skip("SQL adapters only")
    from adapters.job_store.sql_models import JobRow

    odd = NOW + timedelta(microseconds=120)
    written = _job(error=JobError(code="x", message="y"), result={"r": [1]}, not_before=odd, outputs=("o",))
    await database.jobs.add(written, [_event(written)])
    async with database.sessions() as session:
        row = await session.get(JobRow, written.id)
        assert row is not None
        assert (row.submitted_at, row.not_before, row.result, row.outputs) == (NOW, odd, {"r": [1]}, ["o"])
        assert (row.error_code, row.error_details, row.eta_seconds, row.cancel_requested) == (
            "x",
            {},
            None,
            False,
        )
        copy = JobRow(**{c.key: getattr(row, c.key) for c in JobRow.__table__.columns})
        copy.id, copy.version = new_id(), 7  # an ORM-written row, read back by the store
        session.add(copy)
        await session.commit()
    assert await database.jobs.get(copy.id) == attrs.evolve(written, id=copy.id, version=7)


async def test_a_failing_write_fails_alone(database: Any) -> None:
    job, other = _job(), _job()
    await database.jobs.add(job, [_event(job)])
    again, added = await asyncio.gather(
        database.jobs.add(job, [_event(job)]),
        database.jobs.add(other, [_event(other)]),
        return_exceptions=True,
    )
    assert isinstance(again, Exception) and added is None  # the same id twice
    assert await database.jobs.get(other.id) == other
    assert len(await database.jobs.events(job.id)) == 1  # the failed add left nothing behind
