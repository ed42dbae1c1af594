"""Upload size limits: every form with a file field has one, with a Chinese error; the admin's
dictionary import refuses a file over 5 MB and imports nothing."""

import importlib
import io
import pkgutil

import pytest
from django import forms
from django.contrib import admin
from django.test import override_settings
from django.urls import reverse

from dictionaries.models import HospitalDepartment
from hospital_interop.security.uploads import FileSizeLimit

PROJECT = ("hospital_interop", "mutual_recognition", "emr_sharing", "esign", "dictionaries")


def _import_project_forms():
    for name in PROJECT:
        package = importlib.import_module(name)
        for info in pkgutil.walk_packages(package.__path__, name + "."):
            if info.name.rsplit(".", 1)[-1] in {"forms", "admin", "views"}:
                importlib.import_module(info.name)


def _all_subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _all_subclasses(sub)


def _limited(field) -> bool:
    return any(isinstance(v, FileSizeLimit) for v in field.validators)


def test_every_project_form_with_a_file_field_has_a_size_limit():
    _import_project_forms()
    unlimited = [
        f"{form.__module__}.{form.__qualname__}.{name}"
        for form in _all_subclasses(forms.BaseForm)
        if form.__module__.startswith(PROJECT)
        for name, field in getattr(form, "base_fields", {}).items()
        if isinstance(field, forms.FileField) and not _limited(field)
    ]
    assert unlimited == []


@pytest.mark.django_db
def test_every_admin_import_form_has_the_limit(rf, admin_user):
    request = rf.get("/")
    request.user = admin_user
    importers = [ma for ma in admin.site._registry.values() if hasattr(ma, "create_import_form")]
    assert len(importers) >= 10
    for model_admin in importers:
        form = model_admin.create_import_form(request)
        assert _limited(form.fields["import_file"]), type(model_admin).__name__


def _csv(size: int) -> io.BytesIO:
    head = "院内科室代码,院内科室名称,标准科室代码\n"
    row = "9001,过大文件测试科室,03\n"
    body = head + row * (size // len(row.encode()) + 1)
    upload = io.BytesIO(body.encode())
    upload.name = "departments.csv"
    return upload


@pytest.fixture
def lab_client(client, make_user):
    client.force_login(make_user("labstaff", role="lab", is_staff=True))
    return client


def test_a_file_over_five_megabytes_is_refused_in_chinese(lab_client):
    url = reverse("admin:dictionaries_hospitaldepartment_import")
    response = lab_client.post(
        url, {"resource": "0", "format": "1", "import_file": _csv(5 * 1024 * 1024 + 10)}
    )
    text = response.content.decode()
    assert response.status_code == 200
    assert "文件过大：5.1 MB，本页面最多接受 5 MB。请拆分文件或删除多余的工作表后重新上传。" in text
    assert not HospitalDepartment.objects.filter(code="9001").exists()


@override_settings(UPLOAD_LIMITS={"dictionary_import": 4096})
def test_the_limit_is_a_setting_and_a_small_file_still_passes(lab_client):
    url = reverse("admin:dictionaries_hospitaldepartment_import")
    response = lab_client.post(url, {"resource": "0", "format": "1", "import_file": _csv(8000)})
    assert "本页面最多接受 4 KB" in response.content.decode()
    small = io.BytesIO("院内科室代码,院内科室名称,标准科室代码\n9001,小文件科室,03\n".encode())
    small.name = "departments.csv"
    response = lab_client.post(url, {"resource": "0", "format": "1", "import_file": small})
    assert "文件过大" not in response.content.decode()
    assert "confirm" in response.content.decode() or response.status_code == 200
