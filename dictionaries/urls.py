from django.urls import path

from . import views

app_name = "dictionaries"

urlpatterns = [
    path("unmapped/", views.unmapped, name="unmapped"),
]
