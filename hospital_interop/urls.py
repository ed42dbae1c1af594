from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from . import catalogue_views, views
from .uploads import views as upload_views

admin.site.site_header = "检查检验互认与电子病历共享 · 系统管理"
admin.site.site_title = "系统管理"
admin.site.index_title = "后台维护"

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("interfaces/", catalogue_views.catalogue, name="interfaces"),
    path("interfaces/<str:code>/", catalogue_views.interface_detail, name="interface"),
    path("metrics", upload_views.metrics, name="metrics"),
    path("ops/uploads/", include("hospital_interop.uploads.urls")),
    path("ops/quality/", include("hospital_interop.quality.urls")),
    path("esign/", include("esign.urls")),
    path("dictionaries/", include("dictionaries.urls")),
    path("recognition/", include("mutual_recognition.urls")),
    path("api/exam/", include("mutual_recognition.exam.api_urls")),
    path("exam/", include("mutual_recognition.exam.urls")),
    path("", include("emr_sharing.api_urls")),
    path("emr/", include("emr_sharing.urls")),
    path("lab/", include("mutual_recognition.lab.urls")),
    path("", include("mutual_recognition.lab.api_urls")),
    path("audit/", include("hospital_interop.audit.urls")),
    path("admin/", admin.site.urls),
]
