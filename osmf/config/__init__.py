"""Settings and run identity: the one configuration object (:class:`~osmf.config.settings.Settings`,
with its sections and every path of the local state layout) and the run date / run id rules. The
bottom of ``osmf``: it imports nothing else of the package."""
