"""MLflow pyfunc wrapper of the G-MLLM, logged *from code* (``osmf.tracking.registry.register`` passes this
file), so ``models:/osmf-gmllm@champion`` loads in any process that has the package.

Input: a DataFrame with ``title``, ``group_features`` (list of floats) and ``image_path``.
Output: the greedy background prompt per row."""

from __future__ import annotations

import mlflow.models
import mlflow.pyfunc
import pandas as pd


class GMLLMPyfunc(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        from osmf_models.gmllm.model import GMLLM

        self.model = GMLLM.load(context.artifacts["model_dir"])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> list[str]:
        import numpy as np
        import torch

        from osmf_models.common import image_tensor

        G = torch.tensor(np.stack(model_input["group_features"].to_numpy()), dtype=torch.float32)
        I = torch.from_numpy(image_tensor(model_input["image_path"].tolist(), self.model.cfg.image_size))
        return [g[0] for g in self.model.generate(G, I, model_input["title"].tolist())]


mlflow.models.set_model(GMLLMPyfunc())
