"""The e-signature fixtures (CA simulator, UKey agents, signers) for the admin CA-login test."""

from tests.esign.conftest import ca_on, ca_sim, identities, signer  # noqa: F401
