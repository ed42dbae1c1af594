"""Calling systems and their API tokens: who may hand records to this server.

Every intake API of the project (EMR records now; the exam RIS/PACS and lab LIS intake APIs
later) authenticates the *calling system*, not a person. This app is the one place for that:

``CallingSystem`` (models.py)
    One row per system that calls us (HIS, EMR, LIS, RIS/PACS ...): ``code`` (becomes the
    ``source`` of every outbox row it causes), ``name``, ``active``, the token stored only as its
    SHA-256 digest plus a short hint, the interfaces it may submit (``allow_all`` or a list of
    municipal service codes, e.g. ``OP_REGISTRATION``) and when it was last used.

``IntegrationTokenAuthentication`` (authentication.py)
    DRF authentication class for the header ``Authorization: Token <token>``. On success
    ``request.user`` is a ``CallingSystemUser`` (authenticated, not a Django user) and
    ``request.auth`` is the ``CallingSystem``. An unknown, rotated or inactive token is a 401.

``HasIntegrationScope`` (permissions.py)
    DRF permission: the caller must be a calling system, and if the view defines
    ``integration_scope(request) -> str | None`` (a service code), the system must be allowed
    that code (403 otherwise).

Reuse in another intake API::

    from hospital_interop.integrations.authentication import IntegrationTokenAuthentication
    from hospital_interop.integrations.permissions import HasIntegrationScope

    class LabReportIntake(APIView):
        authentication_classes = [IntegrationTokenAuthentication]
        permission_classes = [HasIntegrationScope]

        def integration_scope(self, request):
            return "LAB_REPORT_DETAIL"

        def post(self, request):
            enqueue(..., source=request.auth.code)

Tokens: issued by ``services.issue_token`` — from the admin action "生成新令牌" (shows the new
token once) or ``manage.py create_integration_token CODE`` — and never stored in clear text;
issuing a new token invalidates the old one. drf-spectacular learns the scheme from
``schema.py`` (security scheme ``IntegrationToken``). The admin's list of calling systems shows,
per system, how many of its records are waiting, need attention or were accepted (selectors.py).
"""
