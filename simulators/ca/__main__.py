"""``python -m simulators.ca --port 8702 --db var/ca/ca.sqlite3``

At first start the CA key and root certificate are generated into the data folder (the folder
of ``--db`` unless ``--data-dir`` says otherwise), and so is the app secret for ``--app-id``
unless ``--app-secret-file`` names an existing file. Nothing of it belongs in the repository.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import sys
from pathlib import Path

from esign.protocol import DEMO_APP_ID
from hospital_interop import logmask

from .server import make_server


def _secret(path: Path) -> bytes:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(24))
    return path.read_text().strip().encode()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m simulators.ca",
        description="CA signing-server simulator (reference vendor protocol)",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8702)
    parser.add_argument("--db", default="var/ca/ca.sqlite3", help="SQLite file of the simulator")
    parser.add_argument(
        "--data-dir", help="CA key, root certificate and app secret (default: the folder of --db)"
    )
    parser.add_argument("--app-id", default=os.environ.get("CA_SIM_APP_ID", DEMO_APP_ID))
    parser.add_argument("--app-secret-file", help="file holding the app's HMAC secret (created if missing)")
    parser.add_argument("--public-url", help="base URL written into QR codes (default http://HOST:PORT)")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logmask.basic_config(args.log_level)  # every handler masks identity numbers, phones and names
    db = Path(args.db)
    data_dir = Path(args.data_dir) if args.data_dir else db.parent
    secret = _secret(Path(args.app_secret_file) if args.app_secret_file else data_dir / "app_secret")
    httpd = make_server(args.host, args.port, db, data_dir, args.app_id, secret, args.public_url)
    signal.signal(signal.SIGTERM, lambda *_: (httpd.server_close(), sys.exit(0)))
    host, port = httpd.server_address[:2]
    print(f"CA simulator listening on http://{host}:{port} (app {args.app_id}, data {data_dir})", flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()


if __name__ == "__main__":
    main()
