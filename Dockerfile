FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HOSPITAL_INTEROP_VAR_DIR=/var/lib/interop STATIC_ROOT=/app/staticfiles
WORKDIR /app
# An unprivileged user owns the runtime folder; the code stays root-owned and read-only to it.
RUN groupadd --system --gid 10001 interop && useradd --system --uid 10001 --gid interop --home /var/lib/interop interop \
    && mkdir -p /var/lib/interop && chown interop:interop /var/lib/interop && chmod 750 /var/lib/interop
COPY pyproject.toml README.md ./
COPY . .
RUN pip install --no-cache-dir -e . && HOSPITAL_INTEROP_VAR_DIR=/tmp/build-var python manage.py collectstatic --noinput -v0 \
    && rm -rf /tmp/build-var
USER interop
EXPOSE 8000
CMD ["gunicorn", "-c", "python:hospital_interop.gunicorn_conf", "hospital_interop.wsgi", "--bind", "0.0.0.0:8000"]
