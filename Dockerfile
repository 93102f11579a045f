# Image for the distributed deployment (docker-compose.yml): Airflow 3.3 + this project's pins.
FROM python:3.11-slim
ENV AIRFLOW_HOME=/opt/airflow \
    PYTHONPATH=/opt/airflow:/opt/airflow/plugins \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/airflow/dags \
    AIRFLOW__CORE__PLUGINS_FOLDER=/opt/airflow/plugins \
    AIRFLOW__CORE__LOAD_EXAMPLES=False \
    GX_ANALYTICS_ENABLED=false \
    OPENBLAS_NUM_THREADS=1 \
    OMP_NUM_THREADS=1
RUN apt-get update && apt-get install -y --no-install-recommends build-essential curl && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/airflow
# constraints.txt (`make lock`): the exact package set the tests passed with, transitive packages included.
COPY requirements.txt constraints.txt .
RUN pip install --no-cache-dir -r requirements.txt psycopg2-binary==2.9.13 asyncpg==0.32.0 -c constraints.txt
COPY dags dags
COPY plugins plugins
COPY include include
COPY airflow_settings.yaml .
RUN useradd -m -u 50000 airflow && chown -R airflow /opt/airflow
USER airflow
