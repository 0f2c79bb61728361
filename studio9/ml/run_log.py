"""An ``ml.train`` job in experiment tracking: a parent run, and a child run per candidate.

The job logs as its owner, into the owner's experiment named by the params' ``experiment`` (an
``owner/name`` the owner may write to works too), else the model's name; a missing experiment of
the owner's is created. The parent run (``<model> <job id's first 8 characters>``) holds:

- params ``algorithms``, ``search``, ``n_candidates``, ``cv_folds``, ``target``, ``task`` (as
  asked), ``table`` (``<id>@v<version>``), ``seed``, ``holdout_fraction``; after the search
  ``n_features``;
- tags ``studio9.job_id``, ``studio9.model`` (the model's name), ``mlflow.source.type`` = ``JOB``;
  after the search ``studio9.task`` (the task trained) and ``studio9.best_algorithm``, and at the
  end ``studio9.model_version``;
- the tables read as dataset inputs: name = the table's name, digest = ``<id>@v<version>``,
  source type ``studio9``, source = the table's id, ``mlflow.data.context`` = ``training`` (the
  hold-out table: ``validation``, the out-of-time table: ``test``), profile ``{"num_rows": n}``;
- metrics: the best candidate's hold-out metrics (the numbers of ``metrics["holdout"]``);
- status ``FINISHED`` once the model version is registered (its registry ``run_id`` is the parent
  run's id), ``FAILED`` when the job fails, ``KILLED`` when it is cancelled or times out.

Each candidate of the search is a child run (``parent_run_id``; named ``<algorithm>-<rank>``, the
best first) with the params it set (``algorithm`` and its parameters; a candidate of defaults has
none but ``algorithm``), the tag ``studio9.candidate_status`` (complete, incomplete, skipped), the
metric ``cv_<primary metric>`` once per fold (step = the fold's index; in a halving search, step =
round x folds + fold) and ``cv_<primary metric>_mean`` (its last round's mean), ``FINISHED``.

A retried job makes no second run: run ids are derived from the job id and a label
(``sha256(job id + ":" + label)``, 32 hex digits), a run that exists already is taken up again
(a child its earlier attempt finished is left as it is), every metric point is stamped with its
run's start time, so that points logged again are the same points (the store keeps one), and a
param the run has already keeps its first value. Per run, a few batched calls: create, one batch,
the status.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any, Final

import anyio
import attrs
import structlog

from studio9.auth.domain import Principal
from studio9.jobs.domain import JobInterrupted
from studio9.tables.ports import LocalTable
from studio9.tracking.domain import (
    DATASET_CONTEXT_TAG,
    MAX_EXPERIMENT_NAME_LENGTH,
    DatasetInput,
    ExperimentAlreadyExists,
    ExperimentNotFound,
    Metric,
    Param,
    RunAlreadyExists,
    RunRecord,
    RunStatus,
    RunTag,
)
from studio9.tracking.ports import RunTracking

log = structlog.get_logger()

PARENT: Final = "parent"
JOB_TAG: Final = "studio9.job_id"
MODEL_TAG: Final = "studio9.model"
VERSION_TAG: Final = "studio9.model_version"
TASK_TAG: Final = "studio9.task"
BEST_TAG: Final = "studio9.best_algorithm"
CANDIDATE_STATUS_TAG: Final = "studio9.candidate_status"
SOURCE_TYPE_TAG: Final = "mlflow.source.type"


def derived_run_id(job_id: str, label: str) -> str:
    """The id of the job's run ``label`` (``parent``, or a candidate's): the same on every attempt."""
    return hashlib.sha256(f"{job_id}:{label}".encode()).hexdigest()[:32]


def parent_run_id(job_id: str) -> str:
    return derived_run_id(job_id, PARENT)


def experiment_name(asked: str | None, model: str) -> str:
    """The experiment to log into: the one asked for, else the model's name (as a valid name)."""
    if asked is not None:
        return asked
    return model.replace("/", "-")[:MAX_EXPERIMENT_NAME_LENGTH]


@attrs.frozen
class TrainingRuns:
    """The runs of one training job, logged as its owner (``start_runs`` makes it)."""

    tracking: RunTracking
    actor: Principal
    job_id: str
    parent: RunRecord

    @property
    def run_id(self) -> str:
        return self.parent.run.id

    @property
    def experiment_id(self) -> str:
        return self.parent.run.experiment_id

    async def trained(self, result: Any, folds: int) -> None:
        """The search's candidates as child runs, and what the parent learnt of the winner."""
        for rank, (params, rows) in enumerate(_candidates(result.leaderboard), start=1):
            await self._candidate(rank, params, rows, result.metric, folds)
        at = self._stamp(self.parent)
        holdout = result.metrics.get("holdout") or {}
        await self.tracking.log_batch(
            self.actor,
            self.run_id,
            metrics=[Metric(key, float(value), at) for key, value in holdout.items() if _number(value)],
            params=_unset(self.parent, {"n_features": len(result.features)}),
            # tags, not params: a retry under a time budget may pick another winner
            tags=[RunTag(TASK_TAG, result.task), RunTag(BEST_TAG, result.algorithm)],
        )

    async def finished(self, version: int) -> None:
        """The model version is registered: the parent run is done."""
        await self.tracking.log_batch(self.actor, self.run_id, tags=[RunTag(VERSION_TAG, str(version))])
        await self.tracking.update_run(
            self.actor, self.run_id, status=RunStatus.FINISHED, end_time=self.tracking.clock_ms()
        )

    async def ended(self, error: BaseException) -> None:
        """The job failed (``FAILED``) or was interrupted (``KILLED``). Never raises: the job's own
        error is the one that matters."""
        stopped = isinstance(error, JobInterrupted | anyio.get_cancelled_exc_class())
        status = RunStatus.KILLED if stopped else RunStatus.FAILED
        with anyio.CancelScope(shield=True):
            try:
                await self.tracking.update_run(
                    self.actor, self.run_id, status=status, end_time=self.tracking.clock_ms()
                )
            except Exception as exc:  # the job's error propagates; this one is only worth a line
                log.warning("training_run_not_ended", run_id=self.run_id, error=type(exc).__name__)

    async def _candidate(
        self, rank: int, params: Mapping[str, Any], rows: Sequence[Mapping[str, Any]], metric: str, folds: int
    ) -> None:
        label = "candidate:" + json.dumps(params, sort_keys=True, default=str)
        child = await _open_run(
            self.tracking,
            self.actor,
            self.experiment_id,
            run_id=derived_run_id(self.job_id, label),
            name=f"{params['algorithm']}-{rank}",
            tags={JOB_TAG: self.job_id, SOURCE_TYPE_TAG: "JOB", CANDIDATE_STATUS_TAG: rows[-1]["status"]},
            parent_run_id=self.run_id,
        )
        if child.run.status is RunStatus.FINISHED:
            return  # logged in full by an earlier attempt
        at = self._stamp(child)
        points = [
            Metric(f"cv_{metric}", _value(score), at, (row.get("round") or 0) * folds + fold)
            for row in rows
            for fold, score in enumerate(row["fold_scores"])
        ]
        if rows[-1]["folds_done"]:
            points.append(Metric(f"cv_{metric}_mean", _value(rows[-1]["mean_score"]), at))
        await self.tracking.log_batch(
            self.actor,
            child.run.id,
            metrics=points,
            params=_unset(child, params),
        )
        await self.tracking.update_run(
            self.actor, child.run.id, status=RunStatus.FINISHED, end_time=self.tracking.clock_ms()
        )

    def _stamp(self, record: RunRecord) -> int:
        """A run's metric timestamp: its start, the same on every attempt (module doc)."""
        start = record.run.start_time
        return start if start is not None else self.tracking.clock_ms()


async def start_runs(
    tracking: RunTracking,
    actor: Principal,
    job_id: str,
    experiment: str | None,
    model: str,
    spec: Any,
    tables: Sequence[tuple[str, LocalTable | None]],
) -> TrainingRuns:
    """The parent run of the job training ``model``, in ``experiment`` (None: the model's name),
    made (or taken up again) with the params of ``spec`` (a ``TrainSpec``), its tags and the tables
    read as dataset inputs (``tables``: (context, table or None), the training table first).
    Raises what the tracking service raises (a bad experiment name, one the owner may not write
    to)."""
    read = [(context, table) for context, table in tables if table is not None]
    main = read[0][1]
    params = {
        "algorithms": ",".join(spec.algorithm_names),
        "search": spec.search.method,
        "n_candidates": spec.search.n_candidates,
        "cv_folds": spec.search.cv_folds,
        "target": spec.target,
        "task": spec.task,
        "table": f"{main.asset_id}@v{main.version}",
        "seed": spec.seed,
        # a hold-out table replaces the split
        "holdout_fraction": 0 if any(c == "validation" for c, _ in read) else spec.holdout_fraction,
    }
    experiment_id = await _experiment(tracking, actor, experiment_name(experiment, model))
    parent = await _open_run(
        tracking,
        actor,
        experiment_id,
        run_id=parent_run_id(job_id),
        name=f"{model} {job_id[:8]}",
        tags={JOB_TAG: job_id, MODEL_TAG: model, SOURCE_TYPE_TAG: "JOB"},
        parent_run_id=None,
    )
    runs = TrainingRuns(tracking, actor, job_id, parent)
    await tracking.log_batch(actor, runs.run_id, params=_unset(parent, params))
    await tracking.log_inputs(actor, runs.run_id, [_dataset(context, table) for context, table in read])
    return runs


async def _experiment(tracking: RunTracking, actor: Principal, name: str) -> str:
    experiments = tracking.experiments
    try:
        return (await experiments.by_name(actor, name)).id
    except ExperimentNotFound:
        if "/" in name:  # another user's experiment: not ours to make
            raise
    try:
        return (await experiments.create(actor, name)).id
    except ExperimentAlreadyExists:  # made meanwhile (another job of the owner's)
        return (await experiments.by_name(actor, name)).id


async def _open_run(
    tracking: RunTracking,
    actor: Principal,
    experiment_id: str,
    *,
    run_id: str,
    name: str,
    tags: Mapping[str, str],
    parent_run_id: str | None,
) -> RunRecord:
    """The run ``run_id``, new, or as an earlier attempt left it (running again if it had ended
    badly)."""
    try:
        return await tracking.create_run(
            actor, experiment_id, name=name, tags=tags, parent_run_id=parent_run_id, run_id=run_id
        )
    except RunAlreadyExists:
        record = await tracking.run(actor, run_id)
    if record.run.status in (RunStatus.FAILED, RunStatus.KILLED):
        run = await tracking.update_run(actor, run_id, status=RunStatus.RUNNING)
        record = attrs.evolve(record, run=run)
    return record


def _dataset(context: str, table: LocalTable) -> DatasetInput:
    return DatasetInput(
        name=table.name,
        digest=f"{table.asset_id}@v{table.version}",
        source_type="studio9",
        source=table.asset_id,
        profile=json.dumps({"num_rows": table.row_count}),
        tags={DATASET_CONTEXT_TAG: context},
    )


def _candidates(
    leaderboard: Sequence[Mapping[str, Any]],
) -> list[tuple[dict[str, Any], list[Mapping[str, Any]]]]:
    """The leaderboard's candidates, best first: ``({"algorithm", **params}, rows)`` with the
    candidate's rows (one per halving round) oldest round first."""
    found: dict[str, tuple[dict[str, Any], list[Mapping[str, Any]]]] = {}
    for row in leaderboard:
        params = {"algorithm": row["algorithm"], **row["params"]}
        key = json.dumps(params, sort_keys=True, default=str)
        found.setdefault(key, (params, []))[1].append(row)
    return [(params, sorted(rows, key=lambda r: r.get("round") or 0)) for params, rows in found.values()]


def _unset(record: RunRecord, params: Mapping[str, Any]) -> list[Param]:
    """The params the run does not have yet. An earlier attempt's value stays: params never
    change, and a retry may read a newer table version than the attempt that logged them."""
    return [Param(key, str(value)) for key, value in params.items() if key not in record.data.params]


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _value(score: float | None) -> float:
    return math.nan if score is None else float(score)
