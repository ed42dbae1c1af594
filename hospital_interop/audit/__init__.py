"""The security audit trail: who read or changed which patient's data, from where, and when.

Every read and write of patient data makes ONE call, ``services.record`` (or ``record_many`` for a
batch), in the service or selector that does the read or write. The entry names:

* who: the logged-in user and their roles, the calling system (integration token), the doctor of a
  signed prompt link, or the background process (``context.py`` resolves it from the request the
  middleware put in a context variable, the way ``simple_history`` finds the user of a change);
* from where: the client address and the URL name (never the query string);
* what: the action, the object type and id, the patient's digest (``patient_digest``: the
  non-reversible patient key, never the ID number), and for writes the changed fields, before and
  after, identity values masked;
* when.

Entries form a chain (``chain.py``): each one's HMAC-SM3 covers its content and the previous MAC,
and a head row (itself MAC'd) names the last entry and the anchor left by the last purge, so an
edit, a deleted entry (the last one too) or a rolled-back head is found by ``manage.py
audit_verify``. Appends lock the head row (PostgreSQL ``SELECT … FOR UPDATE``; SQLite's
``BEGIN IMMEDIATE``), so concurrent processes extend one chain. ``manage.py audit_purge`` deletes
entries older than the retention (at least six months) and re-anchors the chain.

The 审计日志 page (``views.py``) is the security officer's (安全审计员, ``roles.py``); the admin shows
entries read-only.
"""
