from django.urls import path

from . import views

app_name = "quality"
urlpatterns = [
    path("", views.findings, name="findings"),
    path("<int:pk>/", views.finding, name="finding"),
    path("<int:pk>/reply", views.reply, name="reply"),
    path("<int:pk>/assign", views.assign, name="assign"),
]
