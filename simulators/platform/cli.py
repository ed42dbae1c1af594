"""Command line: serve the simulator.

``--server builtin`` (default): one process, one thread per connection, HTTP/1.1 keep-alive,
one ``sendall`` per answer (see ``server.py`` for why and the measured difference).
``--server gunicorn``: gunicorn's gthread worker (``--workers`` processes x ``--threads``); with
more than one worker the nonce replay cache moves from memory into the simulator database so
that a replay is caught whichever process receives it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .app import DEFAULT_APP_ID, DEFAULT_ORG_CODE


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m simulators.platform",
        description="市平台模拟器 (municipal platform simulator)",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8701, help="0 picks a free port (printed when ready)")
    p.add_argument("--db", default="var/platform-sim.sqlite3", help="the simulator's own SQLite file")
    p.add_argument(
        "--keys", default="var/keys", help="key folder (hospital_sm2_pub.pem, platform_sm2.pem, ...)"
    )
    p.add_argument("--app-id", default=DEFAULT_APP_ID, help="registered hospital appId")
    p.add_argument("--org-code", default=DEFAULT_ORG_CODE, help="organisation code of that appId")
    p.add_argument("--seed", type=int, default=None, help="seed of the fault-injection RNG")
    p.add_argument("--server", choices=("builtin", "gunicorn"), default="builtin")
    p.add_argument("--threads", type=int, default=8, help="gunicorn: threads per worker")
    p.add_argument("--workers", type=int, default=1, help="gunicorn: worker processes")
    p.add_argument("--ensure-keys", action="store_true", help="generate missing demo keys into --keys")
    p.add_argument("--reset", action="store_true", help="clear records, seeds, stats and faults at start")
    p.add_argument("--access-log", action="store_true")
    p.add_argument("--log-level", default="warning")
    return p


def serve(opts) -> int:
    key_dir = Path(opts.keys)
    if opts.ensure_keys:
        from hospital_interop.keys import ensure_demo_keys

        ensure_demo_keys(key_dir)
    missing = [
        n for n in ("platform_sm2.pem", "hospital_sm2_pub.pem", "sm4.key") if not (key_dir / n).exists()
    ]
    if missing:
        print(
            f"缺少密钥文件 {', '.join(missing)}（目录 {key_dir}）；可加 --ensure-keys 生成演示密钥",
            file=sys.stderr,
        )
        return 2

    from .app import PlatformSimulator, SimulatorConfig
    from .store import Store

    config = SimulatorConfig(
        db=Path(opts.db),
        keys=key_dir,
        app_id=opts.app_id,
        org_code=opts.org_code,
        seed=opts.seed,
        shared_nonces=opts.server == "gunicorn" and opts.workers > 1,
    )
    if opts.reset:
        Store(config.db).reset()
    if opts.server == "gunicorn":
        return _serve_gunicorn(opts, config)
    if opts.workers != 1:
        print("--server builtin 只运行一个进程；多进程请用 --server gunicorn --workers N", file=sys.stderr)
        return 2
    from .server import ThreadedHTTPServer

    _logging(opts.log_level)
    server = ThreadedHTTPServer(PlatformSimulator(config), opts.host, opts.port, access_log=opts.access_log)
    host, port = server.address
    server.serve_forever(
        ready=lambda: print(f"platform simulator listening on http://{host}:{port}", flush=True)
    )
    return 0


def _logging(level: str) -> None:
    """The simulator logs like the product: every handler masks identity numbers, phones and names."""
    from hospital_interop import logmask

    logmask.basic_config(level)


def _serve_gunicorn(opts, config) -> int:
    from gunicorn.app.base import BaseApplication

    from .app import PlatformSimulator

    def post_worker_init(worker) -> None:
        # Printed by the first worker once the application is loaded: the simulator answers now.
        if worker.age == 1:
            host, port = worker.sockets[0].getsockname()[:2]
            print(f"platform simulator listening on http://{host}:{port}", flush=True)

    options = {
        "bind": f"{opts.host}:{opts.port}",
        "workers": opts.workers,
        "threads": opts.threads,
        "worker_class": "gthread",
        "keepalive": 75,
        "timeout": 300,
        "graceful_timeout": 2,
        "backlog": 512,
        "worker_connections": 1000,
        "accesslog": "-" if opts.access_log else None,
        "errorlog": "-",
        "loglevel": opts.log_level,
        "proc_name": "platform-simulator",
        "logger_class": "hospital_interop.gunicorn_conf.MaskedGunicornLogger",
        "post_worker_init": post_worker_init,
        "control_socket_disable": True,
    }

    class Server(BaseApplication):
        def load_config(self):
            for key, value in options.items():
                if key in self.cfg.settings:
                    self.cfg.set(key, value)

        def load(self):
            _logging(opts.log_level)
            return PlatformSimulator(config)

    Server().run()
    return 0


def main(argv: list[str] | None = None) -> int:
    return serve(build_parser().parse_args(argv))
