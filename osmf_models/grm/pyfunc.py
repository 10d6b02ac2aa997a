"""MLflow pyfunc wrapper so a registered GRM loads back by ``models:/osmf-grm@champion``.

Input: a DataFrame with ``group_features`` (list of floats), ``image_path`` and ``prompt``.
Output: predicted CTR per row."""

from __future__ import annotations

import mlflow.pyfunc


class GRMPyfunc(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        from osmf_models.grm.model import GRM

        self.model = GRM.load(context.artifacts["model_dir"])

    def predict(self, context, model_input, params=None):
        from osmf_models.grm.model import predict_ctr

        return predict_ctr(self.model, model_input["group_features"], model_input["image_path"], model_input["prompt"])
