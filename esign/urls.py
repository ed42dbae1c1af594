from django.urls import path

from . import views

app_name = "esign"
urlpatterns = [
    path("", views.home, name="home"),
    path("logout/", views.esign_logout, name="logout"),
    path("ukey/", views.ukey_login, name="ukey"),
    path("ukey/challenge", views.ukey_challenge, name="ukey_challenge"),
    path("ukey/login", views.ukey_verify, name="ukey_verify"),
    path("qr/", views.qr_login, name="qr"),
    path("qr/status", views.qr_status, name="qr_status"),
    path("register/", views.register, name="register"),
    path("cert-download/", views.cert_download, name="cert_download"),
    path("cert-download/status", views.cert_download_status, name="cert_download_status"),
    path("autosign/", views.autosign, name="autosign"),
    path("autosign/status", views.autosign_status, name="autosign_status"),
    path("review/", views.review_index, name="review"),
    path("review/<str:module>/", views.review_module, name="module"),
    path("review/<str:module>/batch", views.batch_approve, name="batch"),
    path("reports/<int:pk>/", views.report_detail, name="report"),
    path("reports/<int:pk>/sign-data", views.report_sign_data, name="sign_data"),
    path("reports/<int:pk>/approve", views.report_approve, name="approve"),
    path("reports/<int:pk>/withdraw", views.report_withdraw, name="withdraw"),
    path("reports/<int:pk>/sign-status", views.report_sign_status, name="sign_status"),
    path("signatures/<int:pk>/verify", views.verify, name="verify"),
    path("embed/<str:token>/", views.embed_page, name="embed"),
    path("embed/<str:token>/sign-data", views.embed_sign_data, name="embed_sign_data"),
    path("embed/<str:token>/sign", views.embed_sign, name="embed_sign"),
    path("embed/<str:token>/qr", views.embed_qr, name="embed_qr"),
    path("embed/<str:token>/qr-status", views.embed_qr_status, name="embed_qr_status"),
    path("embed/<str:token>/status", views.embed_status, name="embed_status"),
    path("staff/", views.staff, name="staff"),
    path("parameters/", views.parameters, name="parameters"),
]
