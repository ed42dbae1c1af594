"""The one gunicorn configuration of the web server (demo, docker-compose, benchmarks):
``gunicorn -c python:hospital_interop.gunicorn_conf hospital_interop.wsgi``.

Processes, not threads, by default: the pages and APIs are CPU-bound Python, and threads of one
process queue on the GIL, which showed as a long latency tail at saturation (prompt API p99 at
32 concurrent clients: 2 processes x 4 threads 52-61 ms, 4 x 2 56-76 ms, 4 x 1 33-52 ms in
benchmarks/prompt_api.py on 2 cores). WEB_WORKERS and WEB_THREADS override; more threads
help when many requests wait on the network (e.g. the platform is slow to answer visit-time
fetches).

The access log (WEB_ACCESS_LOG: a file, or "-" for stdout) records the path without the query
string and without the Referer: queries carry signed prompt links (patient and visit ids), search
terms, and a Referer can carry another page's query. Every line gunicorn writes, access and error
log (where a failed request's traceback goes), in the master and in the workers, passes the
masking filter of hospital_interop.logmask, as Django's own log lines do: ``logger_class``.
"""

import multiprocessing
import os

from gunicorn.glogging import Logger

from hospital_interop import logmask


class MaskedGunicornLogger(Logger):
    """gunicorn's logger with the masking filter on its handlers (set up again on a reload)."""

    def setup(self, cfg):
        super().setup(cfg)
        logmask.install()


bind = os.environ.get("WEB_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_WORKERS") or 2 * multiprocessing.cpu_count())
threads = int(os.environ.get("WEB_THREADS") or 1)
timeout = int(os.environ.get("WEB_TIMEOUT_SECONDS") or 60)  # a bulk NDJSON intake may take a while
keepalive = 5
accesslog = os.environ.get("WEB_ACCESS_LOG") or None
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms "%(a)s"'
logger_class = MaskedGunicornLogger
