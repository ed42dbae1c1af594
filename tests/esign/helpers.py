"""Shared steps: open signing sessions the way the pages do, through the real agent and CA."""

from esign import services

from .conftest import agent_sign

WS1, WS2 = "a" * 32, "b" * 32


def ukey_session(user, ident, ws=WS1, ip="127.0.0.1"):
    challenge = services.issue_challenge()
    signed = agent_sign(ident, challenge["challenge"])
    return services.ukey_login(
        user,
        challenge=challenge,
        signed_challenge=challenge["challenge"],
        certificate=signed["certificate"],
        signature=signed["signature"],
        key_serial=signed["keySerial"],
        workstation_id=ws,
        client_ip=ip,
    )


def qr_session(user, ca_sim, staff_no, ws=WS1):
    txn = services.start_qr_login(user)
    ca_sim.scan(txn.qr_content, staff_no)
    status, session = services.poll_qr_login(user, txn.transaction_id, workstation_id=ws)
    assert status == "FINISH"
    return session


def browser_client(client, user, ws=WS1):
    client.force_login(user)
    client.cookies["esign_ws"] = ws
    return client
