"""Signals of the e-signature app.

Logging out of the system also ends the e-signature sessions on that workstation.

``review_approved`` and ``approval_withdrawn`` tell whoever listens (the lab upload, which esign
never imports: ``mutual_recognition.lab.apps`` connects its receivers) that a review version was
approved (``signature`` is its ReportSignature, or None for an approval without e-signature) or
that an approval was withdrawn (``reason``). Both are sent once the change is committed.
"""

import logging
import re

from django.contrib.auth.signals import user_logged_out
from django.db import transaction
from django.dispatch import Signal, receiver

log = logging.getLogger(__name__)
WS_COOKIE = "esign_ws"
_WS = re.compile(r"^[0-9a-f]{32}$")

review_approved = Signal()  # sender=ReviewReport, review=ReviewReport, signature=ReportSignature | None
approval_withdrawn = Signal()  # sender=ReviewReport, review=ReviewReport, reason=str


def send_on_commit(signal: Signal, review, **kwargs) -> None:
    """Send ``signal`` for ``review`` after the current transaction commits (at once outside one).

    The approval is stored whatever a receiver does: a receiver's failure is logged, not raised
    (the lab records its own failures where ops look, see mutual_recognition.lab.reviews)."""

    def send():
        for rcv, result in signal.send_robust(sender=type(review), review=review, **kwargs):
            if isinstance(result, Exception):
                log.error(  # the type only: a message may quote report content
                    "receiver %s of %s failed for review %s: %s",
                    getattr(rcv, "__qualname__", rcv),
                    "review_approved" if signal is review_approved else "approval_withdrawn",
                    review.pk,
                    type(result).__name__,
                )

    transaction.on_commit(send)


@receiver(user_logged_out)
def close_signing_sessions(sender, request, user, **kwargs):
    from . import services

    if user is None or request is None:
        return
    ws = request.COOKIES.get(WS_COOKIE, "")
    if _WS.fullmatch(ws):
        services.end_sessions(user, workstation_id=ws, reason="退出系统登录")
