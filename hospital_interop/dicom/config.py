"""DICOM peers and settings. ``DicomConfig.from_settings()`` reads ``settings.DICOM``; tests and
the benchmark build a ``DicomConfig`` directly."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from .files import DEFAULT_REQUIRED_TAGS, TAG_NUMBERS

RETRIEVE_MODES = ("c-get", "c-move")


@dataclass(frozen=True)
class Peer:
    """A remote application entity."""

    ae_title: str
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}"

    @property
    def configured(self) -> bool:
        return bool(self.ae_title and self.host and self.port)


@dataclass(frozen=True)
class DicomConfig:
    fep: Peer  # the front-end processor (前置机) that forwards to the city imaging cloud
    calling_ae_title: str = "HOSP_INTEROP"
    pacs: Peer | None = None  # where studies are retrieved from when no folder is given
    retrieve_mode: str = "c-get"
    move_destination: Peer | None = None  # our storage SCP for C-MOVE (its AE title as the PACS knows it)
    batch_size: int = 500  # instances per association
    max_pdu: int = 0  # our maximum receive PDU (0 = unlimited); what we send is bounded by the peer's
    acse_timeout: float = 30.0
    dimse_timeout: float = 60.0
    network_timeout: float = 60.0
    connect_timeout: float = 10.0
    retrieve_dir: Path = Path("var/dicom/retrieved")
    folder_roots: tuple[Path, ...] = field(default_factory=tuple)  # event folders must lie below one of these
    # data set tags the peer files an instance under: a file without them is not sent (files.read_instance)
    required_tags: tuple[str, ...] = DEFAULT_REQUIRED_TAGS

    def __post_init__(self):
        if self.retrieve_mode not in RETRIEVE_MODES:
            raise ValueError(f"retrieve_mode must be one of {RETRIEVE_MODES}, not {self.retrieve_mode!r}")
        unknown = [t for t in self.required_tags if t not in TAG_NUMBERS]
        if unknown:
            raise ValueError(f"required_tags may name {sorted(TAG_NUMBERS)}, not {unknown}")

    @classmethod
    def from_dict(cls, conf: dict) -> DicomConfig:
        def peer(prefix: str) -> Peer | None:
            ae, host, port = (
                conf.get(f"{prefix}_AE_TITLE"),
                conf.get(f"{prefix}_HOST"),
                conf.get(f"{prefix}_PORT"),
            )
            return Peer(ae, host, int(port)) if ae and host and port else None

        return cls(
            fep=peer("FEP")
            or Peer(conf.get("FEP_AE_TITLE", ""), conf.get("FEP_HOST", ""), int(conf.get("FEP_PORT") or 0)),
            calling_ae_title=conf.get("CALLING_AE_TITLE", "HOSP_INTEROP"),
            pacs=peer("PACS"),
            retrieve_mode=conf.get("RETRIEVE_MODE", "c-get"),
            move_destination=peer("MOVE_DESTINATION"),
            batch_size=int(conf.get("BATCH_SIZE", 500)),
            max_pdu=int(conf.get("MAX_PDU", 0)),
            acse_timeout=float(conf.get("ACSE_TIMEOUT", 30)),
            dimse_timeout=float(conf.get("DIMSE_TIMEOUT", 60)),
            network_timeout=float(conf.get("NETWORK_TIMEOUT", 60)),
            connect_timeout=float(conf.get("CONNECT_TIMEOUT", 10)),
            retrieve_dir=Path(conf.get("RETRIEVE_DIR", "var/dicom/retrieved")),
            folder_roots=tuple(Path(p) for p in conf.get("FOLDER_ROOTS", ()) if p),
            required_tags=tuple(conf.get("REQUIRED_TAGS", DEFAULT_REQUIRED_TAGS)),
        )

    @classmethod
    def from_settings(cls) -> DicomConfig:
        from django.conf import settings

        return cls.from_dict(getattr(settings, "DICOM", {}))

    def with_(self, **changes) -> DicomConfig:
        return replace(self, **changes)
