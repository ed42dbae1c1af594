"""Password rules: 10 characters at least, letters and digits, not common, not like the user name;
every refusal in Chinese, in the admin's forms too."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import password_validators_help_texts, validate_password
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import translation


def _errors(password, user=None) -> list[str]:
    with translation.override("zh-hans"):
        try:
            validate_password(password, user)
        except ValidationError as exc:
            return list(exc.messages)
    return []


@pytest.mark.parametrize(
    "password,expected",
    [
        ("Ab3defg9", "密码太短：至少需要 10 个字符。"),
        ("abcdefghijkl", "密码必须同时包含英文字母和数字。"),
        ("48213579061", "密码必须同时包含英文字母和数字。"),
        ("password123", "这个密码太常见了。"),
        ("病历共享平台口令一二三", "密码必须同时包含英文字母和数字。"),
    ],
)
def test_weak_passwords_are_refused_in_chinese(password, expected):
    errors = _errors(password)
    assert expected in errors, errors
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in e) for e in errors), errors


@pytest.mark.django_db
def test_a_password_like_the_user_name_is_refused():
    user = get_user_model()(username="zhangwei2026", first_name="伟", last_name="张")
    assert "密码跟 用户名 太相似了。" in _errors("zhangwei2026", user)


def test_a_good_password_passes():
    assert _errors("Huxin-2026-pass") == []
    assert _errors("检验科Lab2026xy") == []


def test_the_help_texts_are_chinese():
    with translation.override("zh-hans"):
        texts = password_validators_help_texts()
    assert "密码必须同时包含英文字母和数字。" in texts
    assert any("10" in t for t in texts)


def test_the_admin_refuses_a_weak_password_for_a_new_user(admin_client):
    response = admin_client.post(
        reverse("admin:auth_user_add"),
        {
            "username": "new-clinician",
            "password1": "short1",
            "password2": "short1",
            "usable_password": "true",
            "_save": "保存",
        },
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "密码太短：至少需要 10 个字符。" in body
    assert not get_user_model().objects.filter(username="new-clinician").exists()
