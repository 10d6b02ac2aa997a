"""MLflow: the only code that talks to the tracking server and the model registry. ``runs``: the
experiment, the tracking URI and lineage tags; ``registry``: model names, aliases, registering,
loading and promotion."""
