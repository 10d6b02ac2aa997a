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
        import numpy as np
        import torch

        from osmf_models.grm.model import image_tensor, prompt_features

        cfg = self.model.cfg
        G = torch.tensor(np.stack(model_input["group_features"].to_numpy()), dtype=torch.float32)
        I = torch.from_numpy(image_tensor(model_input["image_path"].tolist(), cfg.image_size))
        T = torch.from_numpy(prompt_features(model_input["prompt"].tolist(), cfg.text_dim))
        with torch.no_grad():
            return torch.sigmoid(self.model(G, I, T)).numpy()
