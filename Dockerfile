# The project image: Airflow (api-server, scheduler, dag-processor, triggerer), the Spark master and
# worker (pyspark 4.2.0's own Spark, with the Delta jars added at build time) and the MLflow server
# all run from it, so driver, executors and tasks share one Python environment.
# Not built on the development machine (no Docker engine there); see README "docker-compose".
FROM python:3.11-slim-bookworm

ARG DELTA_VERSION=4.4.1
ARG SCALA_BINARY=2.13
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 \
    OSMF_HOME=/osmf JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64

RUN apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless curl procps tini \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/osmf
COPY pyproject.toml constraints.txt README.md ./
COPY osmf ./osmf
COPY osmf_models ./osmf_models
COPY osmf_app ./osmf_app
COPY jobs ./jobs
COPY dags ./dags
COPY sql ./sql
COPY expectations ./expectations

# torch first, from the CPU index (pinned like everywhere else), then the project with the pins.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu \
 && pip install -c constraints.txt ".[text]"

# The Delta jars on Spark's classpath (the delta-spark backend; Maven Central is reachable at build).
RUN SPARK_JARS="$(python -c 'import os, pyspark; print(os.path.join(os.path.dirname(pyspark.__file__), "jars"))')" \
 && for a in "delta-spark_${SCALA_BINARY}" "delta-storage"; do \
      curl -fsSL -o "${SPARK_JARS}/${a}-${DELTA_VERSION}.jar" \
        "https://repo1.maven.org/maven2/io/delta/${a}/${DELTA_VERSION}/${a}-${DELTA_VERSION}.jar"; \
    done \
 && ls "${SPARK_JARS}" | grep -c delta

RUN useradd --create-home --uid 50000 osmf && mkdir -p /osmf && chown osmf /osmf
USER osmf
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["osmf", "--help"]
