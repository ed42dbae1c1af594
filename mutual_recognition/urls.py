from django.urls import path

from . import api, views

app_name = "recognition"

urlpatterns = [
    # HIS / exam / lab system API (Bearer token)
    path("api/prompt", api.PromptView.as_view(), name="api-prompt"),
    path("api/events", api.EventsView.as_view(), name="api-events"),
    path("api/decisions", api.DecisionsView.as_view(), name="api-decisions"),
    path("api/results", api.ResultsView.as_view(), name="api-results"),
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
