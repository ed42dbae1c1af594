"""Fixtures of the at-rest tests: the real intakes of the EMR, lab and exam apps (their own fixtures),
and a data key folder of the test's own for the tests that rotate keys."""

from __future__ import annotations

import pytest

from tests.emr.conftest import api, his_system, rts  # noqa: F401  (fixtures)
from tests.exam.conftest import dictionaries, ris  # noqa: F401  (fixtures)
from tests.lab.conftest import folders, inline_delivery, lab_dicts, lis, service  # noqa: F401  (fixtures)


@pytest.fixture
def own_data_keys(settings, tmp_path):
    """settings.DATA_KEY_DIR in a folder of this test with a first key (rotation must not touch the
    keys the other tests and their worker processes share)."""
    from hospital_interop.keys import ensure_data_keys

    folder = tmp_path / "data-keys"
    ensure_data_keys(folder)
    settings.DATA_KEY_DIR = str(folder)
    return folder
