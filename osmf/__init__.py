"""OSMF: "One Size, Many Fits" as a batch pipeline.

The core library: settings, the table contracts and the Delta lake module, ingest, audiences and
grouping, group CTR, pinned training data, the model registry and tracking, candidates and
rendering, plots, quality gates, the analyst SQL runner, the evaluation, and ``world/`` (the
synthetic world: only its generator and the evaluation read it). It imports ``osmf_models`` and
nothing above it (``jobs``, ``osmf_app``, ``dags``).
"""

__version__ = "0.1.0"
