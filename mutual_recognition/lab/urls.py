from django.urls import path

from . import views

app_name = "lab"

urlpatterns = [
    path("", views.reports, name="reports"),
    path("reports/<str:report_id>/", views.report_detail, name="report"),
    path("reports/<str:report_id>/v<int:version>.pdf", views.report_pdf, name="report-pdf"),
    path("transfers/", views.transfers, name="transfers"),
    path("transfers/<int:pk>/requeue", views.requeue, name="requeue"),
    path("platform/", views.platform_reports, name="platform-reports"),
    path("platform/pdf", views.platform_pdf, name="platform-pdf"),
    path("external/", views.external, name="external"),
]
