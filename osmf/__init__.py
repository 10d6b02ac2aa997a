"""OSMF: "One Size, Many Fits" as a batch pipeline.

Core package: settings, the Delta lake module, the synthetic GAIP-style world, Spark helpers,
quality gates, the analyst SQL runner and the ``osmf`` command line.
"""

__version__ = "0.1.0"
