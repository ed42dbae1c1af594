"""DICOM image sync (影像同步, requirement 1.1 and platform-protocol.md §7): pure pynetdicom code,
no Django models. The persistent job (study + per-instance rows, retry timing) lives in
``mutual_recognition.exam``; this package only moves files.

``config``     peers (AE title, host, port) and the DICOM settings block as a dataclass
``files``      a study folder → one :class:`~hospital_interop.dicom.files.InstanceFile` per
               instance, from the file meta and a walk over the data set's element headers
               (values and pixel data are never decoded): the data set's SOP Class / Instance
               UIDs, and why a file cannot be sent (incomplete, encoded otherwise than its
               transfer syntax says, missing the tags the peer needs) before it is proposed
``store``      C-STORE SCU to the front-end processor: one association per batch, presentation
               contexts from the files' SOP classes and transfer syntaxes (with a fallback),
               instances streamed from file in even-length PDVs, TCP_NODELAY, the peer's maximum
               PDU, a result per instance classified by PS3.4 (a lost instance ends only its own
               association), and a callback per instance so the caller can persist it
``transcode``  lossless conversion (explicit VR big endian, deflated → little endian) for a peer
               that does not take a file's own transfer syntax
``retrieve``   a study from the PACS into a folder, by C-GET or C-MOVE
``synthetic``  synthetic CT studies for tests, demos and the benchmark

Why ``store`` frames the data set itself: pynetdicom's ``send_c_store`` decodes and re-encodes a
dataset (or, with ``STORE_SEND_CHUNKED_DATASET``, reads it in PDU-sized pieces through two
thread hand-offs per PDU), pauses and resumes its association reactor around every message (a
race in pynetdicom 3.0 can then hand the response to the reactor, which drops it as
"unexpected"), and encodes the command set through pydicom. The sender here uses pynetdicom for
everything that has state: association negotiation, the accepted contexts and the peer's maximum
PDU, decoding and checking responses, release and abort. It keeps the association reactor paused
for the whole batch, writes the C-STORE-RQ command (PS3.7 §9.3.1.1) and the file's encoded data
set as P-DATA-TF PDUs (PS3.8 §9.3.5) straight onto the association's socket, and waits for each
response on pynetdicom's DIMSE queue. P-DATA in state Sta6 changes no state of the upper-layer
state machine, so bypassing the DUL's send queue for it is safe.
"""
