from django.urls import path

from . import views

app_name = "emr_sharing"
urlpatterns = [
    path("integration/", views.integration, name="integration"),
    path("integration/guide", views.guide, name="guide"),
]
