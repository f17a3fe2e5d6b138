# The production image: gunicorn for the web, the same image runs the Celery worker and beat.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    MILEPOST_VAR_DIR=/app/var

WORKDIR /app
COPY . .
RUN pip install . \
    && DEBUG=false SECRET_KEY=build-only-collectstatic python manage.py collectstatic --noinput \
    && useradd --system --create-home milepost \
    && mkdir -p /app/var/mail /app/var/cache \
    && chown -R milepost /app/var

USER milepost
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"
CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--timeout", "120", "--access-logfile", "-"]
