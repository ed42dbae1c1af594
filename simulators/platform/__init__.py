"""Municipal platform simulator: a separately started process with its own port and database.

    python -m simulators.platform --host 127.0.0.1 --port 8701 \\
        --db var/platform-sim.sqlite3 --keys var/keys

It implements every interface of the catalogue (platform-protocol.md), a report viewer behind
signed browse links, run-time fault injection and an inspection API for tests (``/_sim/...``).
Modules: ``app`` (WSGI application: routing, envelopes, uploads, voids, viewer), ``queries``
(recognition queries, report lists, PDF preview), ``inspection`` (``/_sim`` API), ``store``
(SQLite), ``faults``, ``seeds`` (other hospitals' results), ``pdf``, ``viewer`` (HTML),
``common``, ``server`` (threaded HTTP/1.1 server) and ``cli``; the joint-debugging console at ``/``
(``console``, with ``console_static/``) and its journal of received requests (``journal``). See
README.md beside them.
"""

from .app import PlatformSimulator, SimulatorConfig
from .cli import build_parser, main

__all__ = ["PlatformSimulator", "SimulatorConfig", "build_parser", "main"]
