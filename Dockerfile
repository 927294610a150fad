# Slim, non-root image of the alttext service on the embedded offline model.
# It installs with scripts/setup.sh, the same script the README and CI use.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    # CPU wheels of torch live on PyTorch's own index; PyPI's default build carries CUDA.
    PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu

RUN useradd --create-home --uid 10001 alttext \
    && mkdir -p /app/data && chown -R alttext:alttext /app
WORKDIR /app
COPY --chown=alttext pyproject.toml README.md ./
COPY --chown=alttext scripts ./scripts
COPY --chown=alttext models ./models
COPY --chown=alttext service ./service
COPY --chown=alttext evaluation ./evaluation

USER alttext
RUN scripts/setup.sh

ENV ALTTEXT_HOST=0.0.0.0 \
    ALTTEXT_PORT=8000 \
    ALTTEXT_DATA_DIR=/app/data
VOLUME /app/data
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD ["/app/.venv/bin/python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/ready')"]
CMD ["/app/.venv/bin/alttext", "serve"]
