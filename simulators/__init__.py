"""Stand-ins for the systems the product talks to, each a separate process started from the repo
checkout with the project's virtualenv:

    python -m simulators.platform ...   the municipal platform (``platform/README.md``)
    python -m simulators.ca ...         the CA signing server (``ca/__init__.py``)

They import the product (``hospital_interop.municipal``, ``esign``) to speak its protocols; nothing
in the product imports them (``tests/test_architecture.py``), and the wheel leaves them out
(``pyproject.toml``).

Like every process of the project they write under ``var/`` only with the umask of
``hospital_interop.filemodes``; it is set here, before any simulator module creates a file.
"""

from hospital_interop.filemodes import restrict_umask

restrict_umask()
