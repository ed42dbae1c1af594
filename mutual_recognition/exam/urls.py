from django.urls import path

from . import views

app_name = "exam"
urlpatterns = [
    path("", views.reports, name="reports"),
    path("reports/<str:report_id>/", views.report_detail, name="report"),
    path("republish", views.republish, name="republish"),
    path("daily/", views.daily, name="daily"),
    path("daily/run", views.daily_run, name="daily-run-now"),
    path("daily/<int:pk>/", views.daily_run_detail, name="daily-run"),
    path("images/", views.studies, name="studies"),
    path("images/<int:pk>/", views.study_detail, name="study"),
    path("images/<int:pk>/rescan", views.study_rescan, name="study-rescan"),
    path("images/retry", views.study_retry, name="study-retry"),
    path("images/panel", views.dashboard_panel, name="dashboard-panel"),
]
