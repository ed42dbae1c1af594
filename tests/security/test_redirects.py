"""Open redirects: every ``next=`` a view follows stays on this site (hospital_interop.redirects.safe_next)."""

import pytest
from django.test import RequestFactory
from django.urls import reverse

from hospital_interop.redirects import safe_next

EVIL = [
    "https://evil.example/",
    "//evil.example",
    "//evil.example/ops/uploads/",
    "http://evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "javascript:alert(1)",
    "https://testserver.evil.example/",
]


@pytest.mark.parametrize("target", EVIL)
@pytest.mark.parametrize(
    "view,form,default",
    [
        ("uploads:redrive", {"ids": "999999"}, "uploads:records"),
        ("uploads:cancel", {"ids": "999999", "reason": "测试"}, "uploads:records"),
        ("exam:study-retry", {"ids": "999999"}, "exam:studies"),
    ],
)
def test_posted_next_off_site_is_refused(client, make_user, view, form, default, target):
    client.force_login(make_user("ops1", role="ops"))
    response = client.post(reverse(view), {**form, "next": target})
    assert response.status_code == 302
    assert response["Location"] == reverse(default)


@pytest.mark.parametrize("view,form", [("uploads:redrive", {"ids": "1"}), ("exam:study-retry", {"ids": "1"})])
def test_posted_next_on_site_is_followed(client, make_user, view, form):
    client.force_login(make_user("ops1", role="ops"))
    response = client.post(reverse(view), {**form, "next": "/ops/uploads/records/?state=failed"})
    assert response["Location"] == "/ops/uploads/records/?state=failed"


@pytest.mark.parametrize("target", EVIL)
def test_query_next_off_site_is_refused(target):
    """The e-signature login pages (UKey, QR) take ``next`` from the query string."""
    request = RequestFactory().post(
        f"/esign/ukey/login?next={target}", data=b"{}", content_type="application/json"
    )
    assert safe_next(request, "/esign/") == "/esign/"
    request = RequestFactory().get("/esign/qr/status", {"next": target})
    assert safe_next(request, "/esign/") == "/esign/"


def test_https_request_refuses_an_http_target_on_our_host():
    request = RequestFactory().get("/", {"next": "http://testserver/admin/"}, secure=True)
    assert safe_next(request, "/") == "/"
    request = RequestFactory().get("/", {"next": "/admin/"}, secure=True)
    assert safe_next(request, "/") == "/admin/"


def test_esign_views_use_the_one_check():
    from esign import views

    request = RequestFactory().get("/esign/ukey/", {"next": "//evil.example"})
    assert views._next(request) == reverse("esign:home")
    request = RequestFactory().get("/esign/ukey/", {"next": "/esign/review/"})
    assert views._next(request) == "/esign/review/"
