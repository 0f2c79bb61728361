"""The searchable projection of a job (``studio9.metadata.job_search.job_document``)."""

from __future__ import annotations

from datetime import UTC, datetime

from studio9.jobs.domain import Job, JobStatus
from studio9.metadata.domain import words
from studio9.metadata.job_search import job_document

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def test_params_and_result_are_searchable_in_any_language() -> None:
    job = Job(
        id="j1", owner_id="u1", type="system.noop", params={"note": "Café Zürich", "rows": 3},
        status=JobStatus.COMPLETED, submitted_at=NOW, result={"summary": "naïve 東京", "at": NOW},
    )  # fmt: skip
    found = set(words(job_document(job, (), NOW).text))
    assert {"café", "zürich", "naïve", "東京", "note", "rows", "3", "summary"} <= found
    assert "u00e9" not in found  # not JSON's ASCII escapes


def test_a_result_value_json_cannot_encode_is_indexed_as_its_text() -> None:
    job = Job(
        id="j2", owner_id="u1", type="system.noop", params={}, status=JobStatus.COMPLETED,
        submitted_at=NOW, result={"odd": complex(1, 2)},
    )  # fmt: skip
    assert "1+2j" in job_document(job, (), NOW).text
