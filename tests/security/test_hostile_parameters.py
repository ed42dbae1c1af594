"""Hostile query and form parameters on every page, as each role that opens it: a precise 400 in
Chinese naming the parameter, never a 500 (found probing every page with hostile values, 2026-12-05:
a NUL in ``q``, ``state``, ``dept``, ``item``, ``visitId``, ``recordType`` … reached PostgreSQL,
which cannot hold one in a string, on twelve pages and form targets; ``page=99999999999999999999``
overflowed the recognition audit's offset). The machine APIs keep their own error body
(tests/integrations/test_hostile_input.py)."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from django.db import transaction
from django.test import Client
from django.urls import resolve

from hospital_interop import access
from hospital_interop.roles import ROLES
from tests.test_access_matrix import role_user, sample_url, walk

pytestmark = pytest.mark.django_db

# every parameter name a page or form of the project reads (grep of GET/POST look-ups), and a few
# every web application is sent
NAMES = sorted(
    {
        *"accessionNo action before date_from date_to decision decisions dept doctor end event eventType".split(),
        *"field format from idNo id_no id_type item items key kind minutes module name next nextCursor".split(),
        *"org origin p page patient patient_id q range reason reasonNote recordType report reportId".split(),
        *"reports reviewDoctor reviewers start state status studyInstanceUid total value version".split(),
        *"visit visitId interface o e all sort order id since until".split(),
    }
)
NUL = "a\x00b"


def pages_for(who: str):
    """(view name, URL) of every page and form target this role opens (the Django admin's
    change lists stand for its pages); the token APIs are not pages."""
    for name, route in walk():
        section = access.section_for(name)
        if section.kind == access.TOKEN or not section.role_allowed(who) or "logout" in name:
            continue
        if name.startswith("admin:") and not name.endswith(("changelist", "index")):
            continue
        yield name, sample_url(route)


def _client(make_user, who: str) -> Client:
    from hospital_interop.uploads.services import note_sweep

    note_sweep()  # /healthz answers 503 while the delivery sweep is late: health, not input
    client = Client(raise_request_exception=False)
    client.force_login(role_user(make_user, who))
    return client


def _answer(client: Client, method: str, url: str, **kwargs):
    """One request in a savepoint, so a failing one (the defect) does not poison the next."""
    try:
        with transaction.atomic():
            response = getattr(client, method)(url, **kwargs)
            if response.status_code >= 500:
                raise _Rollback(response)
            return response
    except _Rollback as failed:
        return failed.response


class _Rollback(Exception):
    def __init__(self, response):
        self.response = response


def _refused_naming(response, name: str) -> str | None:
    """None when the answer is the Chinese 400 naming ``name``, else what is wrong."""
    body = response.content.decode(errors="replace")
    if response.status_code != 400:
        return f"answered {response.status_code}"
    if name not in body or "空字符" not in body:
        return "400 without the parameter's name and the rule"
    return None


@pytest.mark.parametrize("who", [r.code for r in ROLES])
def test_a_nul_in_any_query_parameter_of_any_page_is_a_chinese_400_naming_it(make_user, who):
    client = _client(make_user, who)
    wrong = []
    for name, url in pages_for(who):
        for param in ("q", "page", NAMES[len(name) % len(NAMES)]):  # a common one and one more
            response = _answer(client, "get", f"{url}?{param}={quote(NUL)}")
            if problem := _refused_naming(response, param):
                wrong.append(f"{name} {url}?{param}: {problem}")
    assert wrong == [], "\n".join(wrong)


@pytest.mark.parametrize("who", [r.code for r in ROLES])
def test_a_nul_in_a_posted_form_field_is_a_chinese_400_naming_it(make_user, who):
    client = _client(make_user, who)
    wrong = []
    for name, url in pages_for(who):
        response = _answer(client, "post", url, data={"reason": NUL, "q": "fine"})
        if getattr(resolve(url).func, "csrf_exempt", False):
            # takes no form (DRF documents, a signed frame's JSON endpoints): refused, never read
            problem = None if 400 <= response.status_code < 500 else f"answered {response.status_code}"
        else:
            problem = _refused_naming(response, "reason")
        if problem:
            wrong.append(f"POST {name} {url}: {problem}")
    assert wrong == [], "\n".join(wrong)


def test_hostile_values_of_every_parameter_never_answer_500(make_user, platform_settings):
    """Every page of the roles that open the most pages, every known parameter at once, with
    values that are not what a page expects (the NUL is refused above, before any view); pages
    that ask the platform ask the simulator."""
    values = ["abc", "-1", "0", "99999999999999999999", "-99999999999999999999", "2026-13-45",
              "2026-02-30", "１２", "1e309", "NaN", "'\"<>%", "x" * 3000, "9" * 5000, " ", "1.5"]  # fmt: skip
    wrong = []
    for who in ("ops", "clinician", "lab", "admin"):
        client = _client(make_user, who)
        for name, url in pages_for(who):
            for value in values:
                query = "&".join(f"{n}={quote(value)}" for n in NAMES)
                response = _answer(client, "get", f"{url}?{query}")
                # 502: the platform has no such report to show (the page says so); an answer
                if response.status_code >= 500 and response.status_code != 502:
                    wrong.append(f"{name} {url} value={value[:20]!r}: {response.status_code}")
                    break
    assert wrong == [], "\n".join(wrong)


def test_the_recognition_audit_takes_a_page_number_past_any_range(client, make_user):
    client.force_login(role_user(make_user, "ops"))
    for page in ("99999999999999999999", "9" * 5000, "-3", "１", "0"):
        response = client.get(f"/recognition/audit/?page={page}")
        assert response.status_code == 200, (page, response.status_code)


def test_a_page_request_that_wants_json_gets_the_error_as_json(make_user):
    client = _client(make_user, "ops")
    response = client.get(f"/ops/uploads/?q={quote(NUL)}", HTTP_ACCEPT="application/json")
    assert response.status_code == 400
    assert response.json() == {
        "ok": False,
        "errors": [{"field": "q", "rule": "nul", "message": "q 不能包含空字符（U+0000）"}],
    }


def test_a_nul_in_the_login_pages_next_is_refused_too(client):
    response = client.get(f"/accounts/login/?next={quote(NUL)}")
    assert _refused_naming(response, "next") is None


def test_a_request_django_finds_malformed_gets_the_chinese_400_page(make_user):
    """Django's own 400 (here: more query parameters than it reads, ``DATA_UPLOAD_MAX_NUMBER_FIELDS``)
    renders templates/400.html: Chinese, with the user's navigation."""
    client = _client(make_user, "ops")
    response = client.get("/ops/uploads/?" + "&".join(f"f{i}=1" for i in range(1500)))
    body = response.content.decode()
    assert response.status_code == 400
    assert "请求有误" in body and "未做任何操作" in body and "Bad Request" not in body
    assert 'class="who">u-ops<' in body


# form targets that take a list of ticked rows' ids: (role, path, field)
ROW_FORMS = [
    ("ops", "/ops/uploads/redrive", "ids"),
    ("ops", "/ops/uploads/cancel", "ids"),
    ("ops", "/exam/images/retry", "ids"),
    ("ops", "/emr/held/release", "ids"),
    ("lab", "/esign/review/clinical/batch", "report"),
]


def test_a_ticked_row_id_of_any_length_is_dropped_not_a_500(make_user):
    """Found beside the page-number overflow: ``int()`` refuses 4,300+ digits with a ValueError,
    so a 5,000-digit id in a form's list of rows answered 500 on all five (``params.row_ids``)."""
    clients = {who: _client(make_user, who) for who in {who for who, _, _ in ROW_FORMS}}
    wrong = []
    for who, path, field in ROW_FORMS:
        for value in ("9" * 5000, "99999999999999999999", "١٢", "-1"):
            response = _answer(clients[who], "post", path, data={field: [value], "reason": "测试"})
            if response.status_code >= 500:
                wrong.append(f"{path} {field}={value[:8]}…: {response.status_code}")
    assert wrong == [], "\n".join(wrong)
