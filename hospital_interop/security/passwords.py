"""Password rules (AUTH_PASSWORD_VALIDATORS): at least 10 characters (PASSWORD_MIN_LENGTH), letters
and digits both (this module, Chinese messages), not like the user's name, not a common password,
not all digits (Django's, whose messages Django's catalogue translates into Chinese)."""

from __future__ import annotations

import re

from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError

LETTER = re.compile(r"[A-Za-z]")
DIGIT = re.compile(r"[0-9]")


class LettersAndDigitsValidator:
    """At least one Latin letter and one digit (the characters every keyboard and UKey PIN pad has;
    Chinese characters count as neither, so a password is never only a phrase typed through an IME)."""

    message = "密码必须同时包含英文字母和数字。"

    def validate(self, password, user=None):
        if not (LETTER.search(password) and DIGIT.search(password)):
            raise ValidationError(self.message, code="password_letters_and_digits")

    def get_help_text(self):
        return "密码必须同时包含英文字母和数字。"


class MinimumLengthValidator(password_validation.MinimumLengthValidator):
    """Django's, with the Chinese message Django's own catalogue lacks for this plural form."""

    def get_error_message(self):
        return f"密码太短：至少需要 {self.min_length} 个字符。"

    def get_help_text(self):
        return f"密码至少需要 {self.min_length} 个字符。"
