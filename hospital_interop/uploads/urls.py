from django.urls import path

from . import views

app_name = "uploads"
urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("records/", views.records, name="records"),
    path("records/export.csv", views.export, name="export"),
    path("records/<int:pk>/", views.record_detail, name="record"),
    path("records/<int:pk>/fix", views.fix_and_redrive, name="fix"),
    path("redrive", views.redrive, name="redrive"),
    path("cancel", views.cancel, name="cancel"),
]
