# The Airflow image for docker-compose.yaml: the official image plus this package's
# pinned requirements, installed at build time (not _PIP_ADDITIONAL_REQUIREMENTS,
# which reinstalls on every container start).
FROM apache/airflow:3.3.2-python3.11

USER root
# pg_dump/pg_restore for the preflight backup; must not be older than the source server.
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-client \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/*
USER airflow

COPY requirements.txt /requirements.txt
RUN pip install --no-cache-dir -r /requirements.txt && pip check
