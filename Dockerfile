# The connector image: the platform starts it and it runs the AMQP worker (python -m elasticio_sailor run).
FROM python:3.11.7-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /app

# Dependencies first, so code changes do not invalidate the dependency layer.
COPY requirements.txt ./
COPY sailor/ ./sailor/
RUN pip install --no-cache-dir -r requirements.txt

COPY component.json ./
COPY lib/ ./lib/
COPY schemas/ ./schemas/

RUN useradd --system --uid 10001 --user-group --no-create-home sailor
USER 10001

ENTRYPOINT ["python", "-m", "elasticio_sailor", "run"]
