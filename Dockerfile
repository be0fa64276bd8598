# Ratify: one image for app processes (the default command) and workers (`ratify worker`).
# Needs RATIFY_SECRET_KEY, RATIFY_DATABASE_URL and RATIFY_BASE_URL at run time (see README).
FROM python:3.11-slim

# Runtime libraries for WeasyPrint (PDF certificates and letters); pg_dump and pg_restore
# for `ratify backup` and `ratify restore` (Debian 12's, PostgreSQL 15: not older than the server).
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 libfontconfig1 fonts-dejavu-core \
        postgresql-client \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --shell /usr/sbin/nologin ratify

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

COPY pyproject.toml constraints.txt README.md ./
COPY ratify/ ratify/
COPY templates/ templates/
COPY static/ static/
COPY alembic/ alembic/
COPY alembic.ini babel.cfg ./
COPY translations/ translations/

# Editable: templates, static files, migrations and translations are found relative to /app.
RUN pip install --no-cache-dir -c constraints.txt -e . \
    && pybabel compile -d translations -D messages

ENV RATIFY_ENV=production \
    RATIFY_VAR_DIR=/app/var

RUN mkdir -p /app/var && chown ratify:ratify /app/var

USER ratify
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"

CMD ratify migrate && exec ratify serve --host 0.0.0.0 --port 8000
