"""CA signing-server clients: the vendor-neutral interface (base) and its adapters.

``esign.services.ca_client()`` builds the configured adapter from the settings and the unified
code table; code elsewhere depends on :class:`SigningServerClient` only.
"""

from .base import (
    AutoSignTask,
    CAError,
    CAUnavailable,
    CertInfo,
    CertValidation,
    QrTransaction,
    SigningServerClient,
    SignResult,
    UserInfo,
)
from .reference import ReferenceVendorClient

ADAPTERS = {"reference": ReferenceVendorClient}

__all__ = [
    "ADAPTERS",
    "AutoSignTask",
    "CAError",
    "CAUnavailable",
    "CertInfo",
    "CertValidation",
    "QrTransaction",
    "ReferenceVendorClient",
    "SignResult",
    "SigningServerClient",
    "UserInfo",
]
