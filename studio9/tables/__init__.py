"""Tables: column statistics of tabular files (CSV, Parquet), streamed in bounded memory.

Today the ``data.profile`` job type (``studio9.tables.jobs``, registered by the composition root)
and its engine: the profiler (``profiling``), the per-column statistics (``column_stats``) and
the sketches behind them (``sketches``). The engine loads pyarrow and numpy; importing this
package, as every process does, does not (the job's handler imports the engine when it runs).
"""

from __future__ import annotations

from studio9.tables.jobs import PROFILE_JOB, PROFILE_OUTPUT, ProfileParams, profile_job_type

__all__ = ["PROFILE_JOB", "PROFILE_OUTPUT", "ProfileParams", "profile_job_type"]
