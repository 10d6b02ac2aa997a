"""osmf_train: train, evaluate and promote the models on a run date's groups.

When ``osmf_regroup`` updates the ``groups`` asset, and on demand (trigger with conf
``{"run_date": "YYYY-MM-DD", "pretrain": true}``). GRM (``osmf-grm`` challenger, promoted if its
held-out pair accuracy beats the champion's) -> G-MLLM pre-training (only when there is no
``osmf-gmllm@base`` yet or when asked) -> Group-DPO (challenger, plus the plain-DPO baseline) ->
promotion by GRM reward on the same pinned data -> the ``models`` asset. Tasks run on the queue
``OSMF_MODELS_TRAIN_QUEUE`` (a GPU worker's, in production).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Asset, dag, task

from osmf.orchestration import DEFAULT_ARGS, train_queue


@dag(dag_id="osmf_train", schedule=[Asset("groups")], start_date=datetime(2026, 1, 1), catchup=False,
     max_active_runs=1, default_args=DEFAULT_ARGS, tags=["osmf", "training", "mlflow"], doc_md=__doc__)
def osmf_train():
    @task(queue=train_queue(), execution_timeout=timedelta(hours=2))
    def train_grm(**context):
        from osmf.orchestration import train_grm

        return train_grm(context)

    @task(queue=train_queue(), execution_timeout=timedelta(hours=4))
    def pretrain_gmllm(_: dict, **context):
        from osmf.orchestration import pretrain_gmllm

        return pretrain_gmllm(context)

    @task(queue=train_queue(), outlets=[Asset("models")], execution_timeout=timedelta(hours=4))
    def group_dpo_and_promote(_: dict, **context):
        from osmf.orchestration import emit, group_dpo, run_date

        out = group_dpo(context)
        emit(context, "models", run_date(context), gmllm_version=out["version"])
        return out

    group_dpo_and_promote(pretrain_gmllm(train_grm()))


osmf_train()
