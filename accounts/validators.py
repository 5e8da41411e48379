"""The DDS password policy, on top of Django's validators (settings.AUTH_PASSWORD_VALIDATORS)."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError

MIN_LENGTH = 10
# Argon2 handles any length, but an upper bound keeps a login from being a cheap way to
# make the server hash megabytes.
MAX_LENGTH = 64


class PasswordPolicyValidator:
    """10–64 characters with an upper-case letter, a lower-case letter and a digit or symbol."""

    def validate(self, password: str, user=None) -> None:
        errors = []
        if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
            errors.append(f"Use {MIN_LENGTH}–{MAX_LENGTH} characters.")
        if not re.search(r"[A-Z]", password):
            errors.append("Include an upper-case letter.")
        if not re.search(r"[a-z]", password):
            errors.append("Include a lower-case letter.")
        if not re.search(r"[^A-Za-z]", password):
            errors.append("Include a digit or a symbol.")
        if errors:
            raise ValidationError(errors, code="password_policy")

    def get_help_text(self) -> str:
        return (f"{MIN_LENGTH}–{MAX_LENGTH} characters, with upper- and lower-case letters "
                "and a digit or symbol.")
