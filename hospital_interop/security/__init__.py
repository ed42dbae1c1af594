"""Identification and session controls (issue 15, docs/security.md): login lockout (django-axes),
idle timeout, password rules, the CA second factor of the admin site, the metrics token and upload
size limits."""
