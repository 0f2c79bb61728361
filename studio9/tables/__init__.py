"""Tables: imported tabular data as Parquet part files, their reads, and column statistics.

Tables are catalog assets (kind ``table``): ``service.TableService`` (import, reads, PATCH,
copy), the ``tables.import`` job type (``import_job``), the routes (``api``: ``/api/v1/tables``),
the layout of a table's blobs and its ``KindHandler`` (``content``) and what the context needs
of the catalog and the job core (``ports``); derived tables are ``derive`` (``tables.sql``);
the statistics step those jobs share and the ``tables.stats`` job type are ``stats_job``.

Also the ``data.profile`` job type (``studio9.tables.jobs``, registered by the composition root)
and the engines, pure functions over local files:

* the import (``importing``: CSV, JSON Lines, Parquet → typed zstd Parquet parts, streamed;
  ``sources`` reads, ``conversion`` infers and casts types);
* the reads (``reading``: pages of rows with ``paging``'s cursors and ``filters``' syntax over
  ``parts``, distinct values, exports, statistics);
* the profiler (``profiling``), the per-column statistics (``column_stats``) and the sketches
  behind them (``sketches``).

Their value objects (options, schemas, results, errors) are in ``values``, which loads nothing
heavy. The engines load pyarrow and numpy; importing this package, as every process does, does
not (a job's handler imports the engine when it runs).
"""

from __future__ import annotations

from studio9.tables.jobs import PROFILE_JOB, PROFILE_OUTPUT, ProfileParams, profile_job_type

__all__ = ["PROFILE_JOB", "PROFILE_OUTPUT", "ProfileParams", "profile_job_type"]
