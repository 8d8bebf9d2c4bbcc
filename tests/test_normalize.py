"""Normalized e-mail addresses: the fast path for plain addresses answers exactly what
the validator answers for the whole address (accepted or refused alike)."""

from __future__ import annotations

import pytest
from email_validator import EmailNotValidError, validate_email

from leadflow.normalize import normalize_email

ADDRESSES = [
    "ana@example.com",
    "  Ana.Maria+crm@Example.COM  ",
    "first_last-1@sub.example.co.uk",
    "a@b.io",
    "x" * 64 + "@example.com",
    "x" * 65 + "@example.com",  # local part too long
    "a@" + "d" * 63 + "." + "e" * 63 + "." + "f" * 63 + "." + "g" * 57 + ".com",  # too long
    "a..b@example.com",
    ".a@example.com",
    "a.@example.com",
    "a@example",  # no dot in the domain
    "a@localhost",
    "a@exa_mple.com",
    "a@-example.com",
    "a@example.com.",
    "a@example.test",  # a special-use domain
    "a@example.invalid",
    "a@@example.com",
    "@example.com",
    "a@",
    "a b@example.com",
    "o'neil@example.com",  # not plain: the validator alone
    '"quoted"@example.com',
    "ñandú@example.com",
    "a@münchen.de",
    "a@[127.0.0.1]",
    "A@EXAMPLE.COM",
]


def _validator(raw: str) -> str | None:
    try:
        return validate_email(raw.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        return None


@pytest.mark.parametrize("raw", ADDRESSES)
def test_plain_addresses_normalize_as_the_validator_does(raw: str) -> None:
    expected = _validator(raw)
    if expected is None:
        with pytest.raises(ValueError, match="not a valid email address"):
            normalize_email(raw)
    else:
        assert normalize_email(raw) == expected
        assert normalize_email(raw) == expected  # the cached domain answers alike
