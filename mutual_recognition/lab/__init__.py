"""Lab reports (requirements 1.2.1 and 1.2.2): LIS intake, report PDF and index file on archive,
the drop-folder transfer service, the 3.3 detail and 3.4 PDF uploads, and the report-list pages.

Flow::

    LIS ──POST approved──► LabReport (+ LabReportVersion n, validated against the 3.3 spec)
    LIS ──POST archived──► report PDF + index JSON written atomically into the drop folder
    manage.py lab_transfer ──► pairs PDF + index ──► LabTransfer row + two outbox rows (one transaction)
    Celery workers (delivery engine) ──► platform accepts 3.4 and 3.3
    lab_transfer ──► sees both accepted ──► archives or removes the files, logs every step

Modules: ``models`` (reports, versions, transfers, transfer log), ``intake`` (the LIS content
schema, shared by the API and the index file), ``payloads`` (3.3 / 3.4 payloads built from the
spec), ``pdf`` (the report PDF), ``index`` (index file format, atomic writes), ``services``
(approve, archive), ``transfer`` (the watcher and its state machine), ``selectors``, ``api``,
``views``. Operations guide: docs/lab-transfer.md.
"""
