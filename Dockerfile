# TrainEasy's image: the app (Streamlit + REST API, through launcher.py) and the workers (python -m workers).
# docker-compose.yml runs it against PostgreSQL-backed Temporal; README "Deploying with Docker Compose".
FROM python:3.11.13-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TRAINEASY_HOME=/data

WORKDIR /app
# the pinned dependencies first: a code change reuses this layer
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
# compiled once here: the account below cannot write /app, and workers import the workflows' modules per run
RUN python -m compileall -q /app
# one unprivileged account for every container: the shared data volume's files are private to it (0600/0700),
# as they are to the account that runs `make run`
RUN useradd --uid 10001 --no-create-home --home-dir /data traineasy \
    && mkdir -p /data && chown traineasy /data && chmod 700 /data
USER traineasy
VOLUME ["/data"]
EXPOSE 8501 8502

# the app's container; a worker's runs `python -m workers` (docker-compose.yml)
CMD ["python", "launcher.py"]
