"""CA signing-server simulator: the reference vendor protocol (docs/esign-protocol.md) on its own
port with its own SQLite database, real SM2 keys per user and real SM2 X.509 certificates.

Start it from the repo checkout with ``python -m simulators.ca --port 8702 --db var/ca/ca.sqlite3``
(``scripts/demo.sh`` does). It also plays the phone: the 协同签名 app's scan and confirm calls are
plain HTTP endpoints under ``/app/`` (and a small page at ``/app/`` for the demo).
"""
