"""The ``predictions.import`` job type: load an uploaded prediction file into the sink.

Built by ``import_job_type(service)`` (a closure over one ``PredictionService``) and
registered by the composition root. A bad file or row fails the job at once (retrying
cannot fix the file); a sink or blob store that does not answer is retried.

Import key: ``(source_job_id or "", SHA-256 of the file)``. The job's own id is NOT used
as the default source: a rerun is a new job with a new id, and the same file for the
same model imported twice must leave one copy (docs/decisions.md, *Predictions*).
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

import msgspec

from studio9.errors import BackendUnavailable
from studio9.jobs.ports import JobContext, JobType
from studio9.predictions.domain import IDENTIFIER
from studio9.predictions.service import PredictionService, rejected_csv

__all__ = ["IMPORT_JOB", "REJECTED_OUTPUT", "ImportParams", "import_job_type"]

IMPORT_JOB: Final = "predictions.import"
REJECTED_OUTPUT: Final = "rejected.csv"

# msgspec patterns are searched, not matched: anchor them. Checked at submit, so a bad id
# is a 422 naming the field rather than a job that fails later.
_Identifier = Annotated[str, msgspec.Meta(pattern=f"^(?:{IDENTIFIER})$")]


class ImportParams(msgspec.Struct, forbid_unknown_fields=True):
    """Import an uploaded CSV or Parquet prediction file (``POST /api/v1/files`` gives its id)."""

    file: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    model_id: _Identifier
    format: Literal["csv", "parquet"] | None = None
    model_version: _Identifier | None = None
    stream_id: _Identifier | None = None
    #: The job that produced the predictions; part of the import key (see the module doc).
    source_job_id: _Identifier | None = None
    on_error: Literal["fail", "skip"] = "fail"


def import_job_type(service: PredictionService) -> JobType:
    """The ``predictions.import`` job type, importing through ``service``."""

    async def handle(ctx: JobContext, params: ImportParams) -> dict[str, Any]:
        ctx.report(0.0, message="importing predictions")
        async with ctx.input_file(params.file) as path:  # under its uploaded name, for messages
            result = await service.import_file(
                path,
                model_id=params.model_id,
                owner_id=ctx.owner_id,
                source_job_id=params.source_job_id,
                model_version=params.model_version,
                stream_id=params.stream_id,
                file_format=params.format,
                on_error=params.on_error,
                # Called from the importer's reader thread; ``report`` is thread-safe and
                # raises JobInterrupted there on cancel, which aborts the load whole.
                on_progress=lambda fraction: ctx.report(fraction, message="importing predictions"),
            )
        output = None
        if result.rejected:
            output = REJECTED_OUTPUT
            await ctx.put_output(output, rejected_csv(result.rejected))
        ctx.log.info(
            "prediction_import_finished",
            import_id=result.import_id,
            rows=result.rows,
            rejected=len(result.rejected),
        )
        return {
            "import_id": result.import_id,
            "rows": result.rows,
            "rejected": len(result.rejected),
            "replaced": result.replaced,
            "output": output,
        }

    return JobType(
        name=IMPORT_JOB,
        handler=handle,
        params=ImportParams,
        timeout=6 * 3600,
        # Only outages are worth another attempt: a malformed file (InvalidInput) fails for good.
        max_attempts=3,
        retry_on=(BackendUnavailable, OSError),
        description="Load a CSV or Parquet prediction file into the prediction sink, idempotently.",
    )
