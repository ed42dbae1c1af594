"""Identification and session controls (issue 15, docs/security.md): login lockout (django-axes),
idle and absolute session limits, password rules, the metrics token and upload size limits. The
administrators' CA second factor is esign/admin_gate.py (the core imports no app)."""
