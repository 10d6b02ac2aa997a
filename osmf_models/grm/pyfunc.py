"""MLflow pyfunc wrapper of the GRM, logged *from code* (``osmf.tracking.registry.register`` passes this
file), so ``models:/osmf-grm@champion`` loads in any process that has the package.

Input: a DataFrame with ``group_features`` (list of floats), ``image_path`` and ``prompt``.
Output: predicted CTR per row."""

from __future__ import annotations

import mlflow.models
import mlflow.pyfunc
import pandas as pd


class GRMPyfunc(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        from osmf_models.grm.model import GRM

        self.model = GRM.load(context.artifacts["model_dir"])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> list[float]:
        from osmf_models.grm.model import predict_ctr

        return [float(v) for v in predict_ctr(self.model, model_input["group_features"], model_input["image_path"],
                                              model_input["prompt"])]


mlflow.models.set_model(GRMPyfunc())
