"""The per-document, per-version knobs of the municipal wire protocol.

Every setting the protocol (``platform-protocol.md``) marks *(profile)* lives here, with the
protocol's defaults. Interface spec YAML files carry a ``profile:`` mapping with the camelCase
keys of :data:`PROFILE_KEYS`; :meth:`Profile.from_dict` validates it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

# camelCase key in spec files -> dataclass field
PROFILE_KEYS = {
    "signType": "sign_type",
    "signatureEncoding": "signature_encoding",
    "encryptType": "encrypt_type",
    "cipherMode": "cipher_mode",
    "compressType": "compress_type",
    "signerId": "signer_id",
    "timestampWindowSeconds": "timestamp_window_seconds",
    "nonceTtlSeconds": "nonce_ttl_seconds",
    "browseLinkLifetimeSeconds": "browse_link_lifetime_seconds",
    "maxFileBytes": "max_file_bytes",
}
_FIELD_TO_KEY = {v: k for k, v in PROFILE_KEYS.items()}

_CHOICES = {
    "sign_type": ("SM2", "HMAC-SM3"),
    "signature_encoding": ("der", "raw"),
    "encrypt_type": ("SM4", "NONE"),
    "cipher_mode": ("CBC", "ECB"),
    "compress_type": ("GZIP", "NONE"),
}
_POSITIVE_INTS = (
    "timestamp_window_seconds",
    "nonce_ttl_seconds",
    "browse_link_lifetime_seconds",
    "max_file_bytes",
)


@dataclass(frozen=True)
class Profile:
    """Protocol knobs; the defaults are the reference profile."""

    sign_type: str = "SM2"  # "SM2" | "HMAC-SM3"
    signature_encoding: str = "der"  # SM2 signature: "der" SEQUENCE{r,s} | "raw" r||s (64 bytes)
    encrypt_type: str = "SM4"  # "SM4" | "NONE" (joint debugging only)
    cipher_mode: str = "CBC"  # "CBC" | "ECB"
    compress_type: str = "GZIP"  # "GZIP" | "NONE"
    signer_id: str = "1234567812345678"  # SM2 distinguishing ID (GM/T 0009 default)
    timestamp_window_seconds: int = 300  # accepted |skew| between envelope timestamp and platform time
    nonce_ttl_seconds: int = 600  # how long a seen nonce is remembered
    browse_link_lifetime_seconds: int = 300  # report browse link validity
    max_file_bytes: int = 20 * 1024 * 1024  # largest embedded file (raw bytes)

    def __post_init__(self) -> None:
        for name, allowed in _CHOICES.items():
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(f"profile {_FIELD_TO_KEY[name]}: {value!r} is not one of {list(allowed)}")
        for name in _POSITIVE_INTS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"profile {_FIELD_TO_KEY[name]}: {value!r} is not a positive integer")
        sid = self.signer_id
        if not isinstance(sid, str) or not sid or len(sid.encode("utf-8")) * 8 > 0xFFFF:
            raise ValueError(f"profile signerId: {sid!r} is not a non-empty string of at most 8191 bytes")
        # A message is accepted for 2 x window (from timestamp-window to timestamp+window); its nonce
        # must be remembered at least that long or it could be replayed inside the window.
        if self.nonce_ttl_seconds < 2 * self.timestamp_window_seconds:
            raise ValueError(
                f"profile nonceTtlSeconds: {self.nonce_ttl_seconds} is shorter than "
                f"2 x timestampWindowSeconds ({2 * self.timestamp_window_seconds}); replays would pass"
            )

    @classmethod
    def from_dict(cls, d: dict | None) -> Profile:
        """From a spec file's ``profile:`` mapping (camelCase keys); missing keys take the defaults."""
        if d is None:
            return cls()
        if not isinstance(d, dict):
            raise ValueError(f"profile must be a mapping, not {type(d).__name__}")
        kwargs = {}
        for key, value in d.items():
            if key not in PROFILE_KEYS:
                raise ValueError(f"unknown profile key {key!r}; expected one of {list(PROFILE_KEYS)}")
            kwargs[PROFILE_KEYS[key]] = value
        return cls(**kwargs)

    def to_dict(self) -> dict:
        """camelCase mapping, the inverse of :meth:`from_dict`."""
        return {_FIELD_TO_KEY[k]: v for k, v in asdict(self).items()}


DEFAULT_PROFILE = Profile()

assert {f.name for f in fields(Profile)} == set(_FIELD_TO_KEY)
