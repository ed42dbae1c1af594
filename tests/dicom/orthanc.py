"""Orthanc (Debian package ``/usr/sbin/Orthanc``) as a real DICOM peer on loopback, started by the
tests with its own configuration in a temporary folder.

Each instance records every instance it *receives* (before storing, duplicates included) in a
receipt log through a Lua ``ReceivedInstanceFilter``, so tests can tell how often an instance
went over the wire independently of the sender's own bookkeeping.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

ORTHANC = os.environ.get("ORTHANC_BIN", "/usr/sbin/Orthanc")
START_TIMEOUT = 60.0
LUA = """
function ReceivedInstanceFilter(dicom, origin, info)
  local f = io.open(RECEIPT_LOG, "a")
  f:write(dicom.SOPInstanceUID .. "\\n")
  f:close()
  return true
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Orthanc:
    base: Path
    aet: str
    dicom_port: int
    http_port: int
    modalities: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)  # more configuration, e.g. AcceptedTransferSyntaxes
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def receipt_log(self) -> Path:
        return self.base / "receipts.log"

    def write_config(self) -> Path:
        storage = self.base / "storage"
        storage.mkdir(parents=True, exist_ok=True)
        lua = self.base / "receipts.lua"
        lua.write_text(f'RECEIPT_LOG = "{self.receipt_log}"\n' + LUA)
        config = {
            "Name": f"test-{self.aet}",
            "StorageDirectory": str(storage),
            "IndexDirectory": str(storage),
            "HttpPort": self.http_port,
            "DicomPort": self.dicom_port,
            "DicomAet": self.aet,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "HttpServerEnabled": True,
            "DicomCheckCalledAeTitle": False,
            "DicomAlwaysAllowStore": True,
            "DicomCheckModalityHost": False,
            "DicomModalities": self.modalities,
            "MaximumPduLength": 131072,
            "LuaScripts": [str(lua)],
            "Plugins": [],
            "StorageCompression": False,
            "SaveJobs": False,
            "ConcurrentJobs": 1,
            "DicomScpTimeout": 30,
            "StableAge": 3600,
            "HttpCompressionEnabled": False,
            **self.settings,
        }
        path = self.base / "orthanc.json"
        path.write_text(json.dumps(config, indent=1))
        return path

    def start(self) -> Orthanc:
        config = self.write_config()
        log = (self.base / "orthanc.log").open("ab")
        self.process = subprocess.Popen(
            [ORTHANC, str(config)],
            cwd=self.base,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                if requests.get(self.url + "/system", timeout=2).ok and self._dicom_listening():
                    return self
            except requests.RequestException:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Orthanc did not start:\n{self.log_tail()}")
            time.sleep(0.1)

    def _dicom_listening(self) -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.dicom_port)) == 0

    def kill(self) -> None:
        """Crash it (SIGKILL), as a power cut would."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, n: int = 3000) -> str:
        try:
            return (self.base / "orthanc.log").read_text(errors="replace")[-n:]
        except OSError:
            return ""

    # -- REST ------------------------------------------------------------------------------------
    def sop_instance_uids(self, study_instance_uid: str) -> list[str]:
        r = requests.post(
            self.url + "/tools/find",
            timeout=30,
            json={"Level": "Instance", "Query": {"StudyInstanceUID": study_instance_uid}, "Expand": True},
        )
        r.raise_for_status()
        return [i["MainDicomTags"]["SOPInstanceUID"] for i in r.json()]

    def stored_file(self, sop_instance_uid: str) -> bytes | None:
        """The DICOM file Orthanc stored for an instance, as it stored it (None: not stored)."""
        found = requests.post(self.url + "/tools/lookup", data=sop_instance_uid, timeout=30).json()
        ids = [f["ID"] for f in found if f.get("Type") == "Instance"]
        if not ids:
            return None
        r = requests.get(self.url + f"/instances/{ids[0]}/file", timeout=30)
        r.raise_for_status()
        return r.content

    def forget(self, sop_instance_uids=None) -> None:
        """Delete these instances (all, by default): the next copy of one is then stored anew."""
        with requests.Session() as http:
            if sop_instance_uids is None:
                ids = set(http.get(self.url + "/instances", timeout=30).json())
            else:
                ids = {
                    found["ID"]
                    for uid in set(sop_instance_uids)
                    for found in http.post(self.url + "/tools/lookup", data=uid, timeout=30).json()
                    if found.get("Type") == "Instance"
                }
            for instance_id in ids:
                http.delete(self.url + f"/instances/{instance_id}", timeout=30).raise_for_status()

    def upload(self, files) -> None:
        with requests.Session() as http:
            for path in files:
                http.post(
                    self.url + "/instances", data=Path(path).read_bytes(), timeout=30
                ).raise_for_status()

    def receipts(self) -> list[str]:
        try:
            return self.receipt_log.read_text().split()
        except FileNotFoundError:
            return []


@pytest.fixture
def orthanc_factory(tmp_path):
    started: list[Orthanc] = []

    def make(aet: str = "FEP", modalities: dict | None = None, **settings) -> Orthanc:
        o = Orthanc(
            base=tmp_path / f"orthanc-{aet.lower()}-{len(started)}",
            aet=aet,
            dicom_port=free_port(),
            http_port=free_port(),
            modalities=modalities or {},
            settings=settings,
        )
        o.base.mkdir(parents=True)
        started.append(o)
        return o.start()

    yield make
    for o in started:
        o.kill()  # its storage is thrown away with tmp_path: no need for a graceful stop


@pytest.fixture
def fep(orthanc_factory) -> Orthanc:
    """An Orthanc playing the front-end processor (前置机)."""
    return orthanc_factory("FEP")
