from django.urls import path

from . import api_urls, views

app_name = "recognition"

urlpatterns = [
    # HIS / exam / lab system API (calling-system token), its OpenAPI schema and Swagger UI
    *api_urls.urlpatterns,
    # embedded page (signed link, no login)
    path("embed/prompt", views.embed, name="embed"),
    path("embed/save", views.embed_save, name="embed-save"),
    path("embed/lab-pdf", views.embed_lab_pdf, name="embed-lab-pdf"),
    path("embed/exam-view", views.embed_exam_view, name="embed-exam-view"),
    # staff pages
    path("patients/", views.patient_view, name="patients"),
    path("stats/", views.stats, name="stats"),
    path("audit/", views.audit, name="audit"),
    path("demo-his/", views.demo_his, name="demo-his"),
    path("demo-his/prompt", views.demo_his_prompt, name="demo-his-prompt"),
    path("demo-his/events", views.demo_his_events, name="demo-his-events"),
]
