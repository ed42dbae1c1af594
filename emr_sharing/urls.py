from django.urls import path

from . import views

app_name = "emr_sharing"
urlpatterns = [
    path("integration/", views.integration, name="integration"),
    path("integration/guide", views.guide, name="guide"),
    path("held/", views.held, name="held"),
    path("held/<int:pk>/", views.held_detail, name="held-detail"),
    path("held/release", views.held_release, name="held-release"),
]
