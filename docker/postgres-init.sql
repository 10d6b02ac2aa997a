-- One Postgres for two metadata stores: Airflow's and MLflow's (run once, on an empty volume).
CREATE DATABASE airflow;
CREATE DATABASE mlflow;
