"""The one job contract: every job of ``jobs/`` is ``run(ctx: JobContext) -> dict``.

A ``JobContext`` carries what a job needs and nothing it has to look up: the settings (every
section and path), the run date, the run id its commits record, the run's conf (what a triggered
Airflow run or a command passes, e.g. ``{"pretrain": true}``), a progress callback, and the lake
and the Spark session, both made on first use (a job that needs no Spark starts none) or shared by
the caller (the demo and the tests run a whole chain on one session).

Stdlib only at import time: the chain (imported by the DAG files while they parse) names the jobs,
and the jobs name this.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable

log = logging.getLogger("osmf.job")


@dataclass
class JobContext:
    settings: Any  # osmf.config.settings.Settings
    run_date: str
    run_id: str = ""  # empty: resolved by ``osmf.config.runinfo.resolve_run_id`` on construction
    conf: dict = field(default_factory=dict)
    say: Callable[[str], None] = log.info
    _lake: Any = None
    _spark: Any = None
    job: str = ""  # what runs (an Airflow task "dag.task", a job module): names the Spark application

    def __post_init__(self):
        from osmf.config.runinfo import parse_run_date, resolve_run_id

        self.run_date = parse_run_date(self.run_date)
        self.run_id = resolve_run_id(self.settings, self.run_id or None)
        self.conf = dict(self.conf or {})

    @property
    def lake(self):
        """The lake (``osmf.lake.Lake``) over ``settings``, made on first use unless the caller gave one."""
        if self._lake is None:
            from osmf.lake import Lake

            self._lake = Lake(self.settings)
        return self._lake

    @property
    def spark(self):
        """The Spark session, started on first use unless the caller gave one."""
        if self._spark is None:
            from osmf.lake.spark import get_spark

            self._spark = get_spark(self.settings, f"osmf {self.job or 'job'} {self.run_date}")
        self._spark.sparkContext.setJobDescription(f"{self.job or 'osmf'} {self.run_date}")
        return self._spark

    def for_date(self, run_date: str) -> "JobContext":
        """The same run (settings, id, conf, lake, Spark) for another date."""
        return JobContext(self.settings, run_date, self.run_id, self.conf, self.say, self._lake, self._spark, self.job)
