"""More real DICOM peers on loopback for the tests, beside Orthanc (orthanc.py):

* dcmtk's ``storescp`` (Debian package ``dcmtk``), storing what it receives bit for bit (``+B``);
* dcmtk's ``storescu`` as the reference sender: :func:`storescu` sends one file the way a PACS
  administrator would (``-R``: propose the file's own SOP class, plus the option that proposes the
  file's compressed transfer syntax) and says whether the peer stored it;
* a peer that chokes on chosen instances (``python -m tests.dicom.choking_scp``): a pynetdicom
  storage SCP process that aborts the association, or never answers, when it receives one of them,
  and stores everything else. It is how a real peer behaves on an instance it cannot digest
  (dcmtk aborts on a malformed stream, Orthanc never answers), made deterministic.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydicom import dcmread

from tests.dicom.orthanc import free_port

STORESCP = os.environ.get("STORESCP_BIN", "storescp")
STORESCU = os.environ.get("STORESCU_BIN", "storescu")
START_TIMEOUT = 30.0
ROOT = Path(__file__).resolve().parents[2]

# Orthanc 1.10 settings for a PACS that takes neither explicit VR big endian nor deflate
NO_BIG_ENDIAN_NOR_DEFLATE = {
    "AcceptedTransferSyntaxes": [
        "1.2.840.10008.1.2",
        "1.2.840.10008.1.2.1",
        "1.2.840.10008.1.2.4.*",
        "1.2.840.10008.1.2.5",
    ]
}
# storescu proposes only uncompressed transfer syntaxes unless told which compressed one to offer
STORESCU_PROPOSE = {
    "1.2.840.10008.1.2.1.99": "-xd",  # Deflated Explicit VR Little Endian
    "1.2.840.10008.1.2.4.50": "-xy",  # JPEG Baseline
    "1.2.840.10008.1.2.4.51": "-xx",  # JPEG Extended
    "1.2.840.10008.1.2.4.70": "-xs",  # JPEG Lossless SV1
    "1.2.840.10008.1.2.4.80": "-xt",  # JPEG-LS Lossless
    "1.2.840.10008.1.2.4.81": "-xu",  # JPEG-LS Near-Lossless
    "1.2.840.10008.1.2.4.90": "-xv",  # JPEG 2000 Lossless
    "1.2.840.10008.1.2.4.91": "-xw",  # JPEG 2000
    "1.2.840.10008.1.2.5": "-xr",  # RLE Lossless
}


def wait_for_port(port: int, process: subprocess.Popen, what: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        if process.poll() is not None:
            break
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not start: {log.read_text(errors='replace')[-2000:]}")


def stop(process: subprocess.Popen | None) -> None:
    if process is not None and process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


@dataclass
class StoreSCP:
    """dcmtk's storescp, storing every instance it accepts bit for bit below ``received``."""

    base: Path
    aet: str
    port: int
    options: tuple[str, ...] = ("+xa", "-pm")  # all transfer syntaxes, unknown SOP classes too
    process: subprocess.Popen | None = None

    @property
    def received(self) -> Path:
        return self.base / "received"

    @property
    def log(self) -> Path:
        return self.base / "storescp.log"

    def start(self) -> StoreSCP:
        self.received.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [STORESCP, *self.options, "+B", "-od", str(self.received), "--aetitle", self.aet, str(self.port)],
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for_port(self.port, self.process, "storescp", self.log)
        return self

    def forget(self, sop_instance_uids) -> None:
        """Delete the stored copies of these instances."""
        uids = set(sop_instance_uids)
        for uid, path in self.stored_files().items():
            if uid in uids:
                path.unlink()

    def stored_files(self) -> dict[str, Path]:
        """SOP Instance UID (of the data set) → the file storescp wrote."""
        files = {}
        for path in sorted(self.received.iterdir()):
            ds = dcmread(path, stop_before_pixels=True, specific_tags=["SOPInstanceUID"])
            files[str(ds.SOPInstanceUID)] = path
        return files


@dataclass
class Sent:
    """What storescu made of one file."""

    stored: bool
    status: str  # the peer's answer as storescu prints it, e.g. "Success", "Refused: OutOfResources"
    errors: str  # storescu's error lines (a file it refuses to send says why here)


def storescu(path: str | Path, aet: str, port: int, timeout: int = 20) -> Sent:
    ts = str(dcmread(path, stop_before_pixels=True).file_meta.get("TransferSyntaxUID", ""))
    propose = [STORESCU_PROPOSE[ts]] if ts in STORESCU_PROPOSE else []
    cp = subprocess.run(
        [
            STORESCU,
            "-v",
            "-R",
            *propose,
            "-to",
            str(timeout),
            "-ta",
            str(timeout),
            "-td",
            str(timeout),
            "--call",
            aet,
            "127.0.0.1",
            str(port),
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=timeout * 4,
    )
    out = cp.stdout + cp.stderr
    answers = re.findall(r"Received Store Response \(([^)]*)\)", out)
    status = answers[0] if answers else ""
    errors = "\n".join(line for line in out.splitlines() if line.startswith("E:"))
    return Sent(stored=status.split(":")[0].strip() in ("Success", "Warning"), status=status, errors=errors)


@dataclass
class ChokingSCP:
    """A storage SCP process (pynetdicom) that aborts the association (``mode="abort"``) or never
    answers (``mode="stall"``) when it receives one of ``choke_on`` (SOP Instance UIDs), and
    stores everything else; every instance it receives is logged in ``receipts`` in order."""

    base: Path
    aet: str
    port: int
    choke_on: tuple[str, ...]
    mode: str = "abort"
    process: subprocess.Popen | None = None

    @property
    def receipt_log(self) -> Path:
        return self.base / "receipts.log"

    @property
    def log(self) -> Path:
        return self.base / "scp.log"

    def start(self) -> ChokingSCP:
        self.base.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.dicom.choking_scp",
                "--port",
                str(self.port),
                "--aet",
                self.aet,
                "--mode",
                self.mode,
                "--receipts",
                str(self.receipt_log),
                *(arg for uid in self.choke_on for arg in ("--choke-on", uid)),
            ],
            cwd=ROOT,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for_port(self.port, self.process, "choking SCP", self.log)
        return self

    def receipts(self) -> list[str]:
        try:
            return self.receipt_log.read_text().split()
        except FileNotFoundError:
            return []


@pytest.fixture
def storescp_factory(tmp_path):
    started: list[subprocess.Popen] = []

    def make(aet: str = "STORESCP", options: Iterable[str] = ("+xa", "-pm")) -> StoreSCP:
        scp = StoreSCP(tmp_path / f"storescp-{aet.lower()}-{len(started)}", aet, free_port(), tuple(options))
        scp.base.mkdir(parents=True)
        scp.start()
        started.append(scp.process)
        return scp

    yield make
    for process in started:
        stop(process)


@pytest.fixture
def choking_scp_factory(tmp_path):
    started: list[subprocess.Popen] = []

    def make(choke_on: Iterable[str], mode: str = "abort", aet: str = "CHOKING") -> ChokingSCP:
        scp = ChokingSCP(tmp_path / f"choking-{len(started)}", aet, free_port(), tuple(choke_on), mode)
        scp.start()
        started.append(scp.process)
        return scp

    yield make
    for process in started:
        stop(process)
