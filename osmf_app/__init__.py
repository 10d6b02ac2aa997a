"""The application layer: the entry points people and Airflow call.

* ``chain``: the one definition of the nightly chain (stages = DAGs, their steps and quality gates).
* ``steps``: what each step of the chain runs (a job of ``jobs/``).
* ``airflow_tasks``: the functions the DAG files' tasks call (Airflow context -> a chain step).
* ``airflow_local``: a local Airflow (SQLite under ``$OSMF_HOME/airflow``) and the ``dag.test`` runner.
* ``evaluation``: ``osmf evaluate ...``: run the evaluations, write and print their reports.
* ``demo``: the main command (README command 1).
* ``cli``: the ``osmf`` command line.

Imports go down only: ``dags/`` -> ``osmf_app`` -> ``jobs`` -> ``osmf`` -> ``osmf_models``.
"""
