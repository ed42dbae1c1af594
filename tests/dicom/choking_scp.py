"""A storage SCP that chokes on chosen instances (see peers.ChokingSCP). Run as a process:

    python -m tests.dicom.choking_scp --port 11112 --aet CHOKING --receipts r.log --choke-on 1.2.3 [--mode abort|stall]

It accepts every storage SOP class in explicit and implicit VR little endian, logs the SOP Instance
UID of every instance it receives (before answering), aborts the association (``abort``) or never
answers (``stall``) when the instance is one of ``--choke-on``, and answers Success otherwise.
"""

from __future__ import annotations

import argparse
import threading

from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, StoragePresentationContexts, evt


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--aet", default="CHOKING")
    parser.add_argument("--receipts", required=True)
    parser.add_argument("--choke-on", action="append", default=[])
    parser.add_argument("--mode", choices=("abort", "stall"), default="abort")
    args = parser.parse_args()
    choke_on = set(args.choke_on)
    lock = threading.Lock()

    def on_store(event):
        uid = str(event.request.AffectedSOPInstanceUID)
        with lock, open(args.receipts, "a") as log:
            log.write(uid + "\n")
        if uid in choke_on:
            if args.mode == "abort":
                event.assoc.abort()
                return 0xC000  # never reaches the peer: the association is gone
            threading.Event().wait(3600)  # stall: the sender's DIMSE timeout ends it
        return 0x0000

    ae = AE(ae_title=args.aet)
    ae.maximum_associations = 20
    for cx in StoragePresentationContexts:
        ae.add_supported_context(cx.abstract_syntax, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
    ae.start_server(("127.0.0.1", args.port), block=True, evt_handlers=[(evt.EVT_C_STORE, on_store)])


if __name__ == "__main__":
    main()
