"""Identification and session controls (issue 15, docs/security.md): login lockout (django-axes),
idle timeout, password rules, the metrics token and upload
size limits."""
