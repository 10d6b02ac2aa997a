"""osmf_train: train, evaluate and promote the models on a run date's groups.

When ``osmf_regroup`` updates the ``groups`` asset, and on demand (trigger with conf
``{"run_date": "YYYY-MM-DD", "pretrain": true}``). GRM (``osmf-grm`` challenger, promoted if its
held-out pair accuracy beats the champion's) -> G-MLLM pre-training (only when there is no
``osmf-gmllm@base`` yet or when asked) -> Group-DPO (challenger, plus the plain-DPO baseline) ->
promotion by GRM reward on the same pinned data -> ``publish``: the ``models`` asset. The training
tasks run on the queue ``[models].train_queue`` (a GPU worker's, in production).
"""

from airflow.sdk import Asset

from osmf_app.airflow_dags import stage_dag
from osmf_app.chain import TRAIN

dag = stage_dag(TRAIN, schedule=[Asset("groups")], tags=["training", "mlflow"], doc_md=__doc__)
