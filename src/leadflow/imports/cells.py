"""A row's cells read as field values, by the mapping's per-column options; each refusal
is a cell error (`{"row", "column", "code", "raw"}`), never an exception."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from leadflow.normalize import normalize_email, normalize_phone

EXCEL_EPOCH = date(1899, 12, 30)  # serial 1 is 1900-01-01 (Excel's 1900 leap-year quirk kept)
MAX_SERIAL = 2_958_465  # 9999-12-31
_SYMBOLS = {"€": "EUR", "$": "USD", "£": "GBP", "¥": "JPY", "zł": "PLN", "₹": "INR", "kr": "SEK"}
_CODE = re.compile(r"\b([A-Za-z]{3})\b")
_AMOUNT = re.compile(r"^-?\d{1,14}(\.\d{1,2})?$")
_URL = re.compile(r"^https?://\S+$", re.IGNORECASE)


class CellRefused(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def number(raw: str, decimal_mark: str) -> Decimal:
    text = raw.replace("\u00a0", "").replace(" ", "").replace("'", "")
    thousands = "." if decimal_mark == "," else ","
    text = text.replace(thousands, "").replace(decimal_mark, ".")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise CellRefused("not_a_number", "not a number") from None
    if not value.is_finite():
        raise CellRefused("not_a_number", "not a number")
    return value


def money(raw: str, decimal_mark: str, default_currency: str | None) -> tuple[Decimal, str]:
    """(amount, currency) of "1.500,00 EUR", "€1,500", "1500" (with a default currency)."""
    text, currency = raw.strip(), None
    for symbol, code in _SYMBOLS.items():
        if symbol in text:
            text, currency = text.replace(symbol, ""), code
            break
    if currency is None and (found := _CODE.search(text)):
        currency = found.group(1).upper()
        text = text[: found.start()] + text[found.end() :]
    amount = number(text, decimal_mark)
    currency = currency or default_currency
    if currency is None:
        raise CellRefused("no_currency", "an amount without currency and no default currency")
    amount = amount.quantize(Decimal("0.01"))
    if not _AMOUNT.fullmatch(f"{amount:f}"):
        raise CellRefused("out_of_range", "at most 14 integer digits and 2 decimals")
    return amount, currency


def a_date(raw: str, date_format: str | None) -> date:
    """A date: by `date_format` when given; else ISO (a time part ignored), or a number
    as an Excel serial date."""
    text = raw.strip()
    if date_format:
        try:
            return datetime.strptime(text, date_format).date()
        except ValueError:
            raise CellRefused("not_a_date", f"not a date in the format {date_format}") from None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        pass
    try:
        serial = float(text)
    except ValueError:
        raise CellRefused("not_a_date", "not a date (YYYY-MM-DD or an Excel serial)") from None
    if not 1 <= serial <= MAX_SERIAL:
        raise CellRefused("not_a_date", "not an Excel serial date")
    return EXCEL_EPOCH + timedelta(days=int(serial))


def email(raw: str) -> str:
    try:
        return normalize_email(raw)
    except ValueError:
        raise CellRefused("not_an_email", "not an email address") from None


def phone(raw: str, region: str | None) -> tuple[str, str | None]:
    """(as given, E.164 when it reads as a phone number)."""
    if len(raw) > 64:
        raise CellRefused("too_long", "at most 64 characters")
    try:
        return raw, normalize_phone(raw, region)
    except ValueError:
        return raw, None


def url(raw: str) -> str:
    value = raw if "://" in raw else f"https://{raw}"
    if not _URL.fullmatch(value):
        raise CellRefused("not_a_url", "not a web address")
    return value


def text(raw: str, limit: int) -> str:
    if len(raw) > limit:
        raise CellRefused("too_long", f"at most {limit} characters")
    return raw


def custom_value(raw: str, field_type: str, options: dict[str, int], column: Any) -> Any:
    """A custom field's value from its cell, in the JSON form the API takes (checked
    afterwards by `fields.values.check`)."""
    match field_type:
        case "number":
            return f"{number(raw, column.decimal_mark):f}"
        case "monetary":
            amount, currency = money(raw, column.decimal_mark, column.default_currency)
            return {"amount": f"{amount:f}", "currency": currency}
        case "date":
            return a_date(raw, column.date_format).isoformat()
        case "enum":
            found = options.get(raw.strip().casefold())
            if found is None:
                raise CellRefused("unknown_option", f"no option labelled {raw!r}")
            return found
        case "set":
            labels = [part.strip() for part in raw.split(column.split or ",") if part.strip()]
            chosen = []
            for label in labels:
                found = options.get(label.casefold())
                if found is None:
                    raise CellRefused("unknown_option", f"no option labelled {label!r}")
                chosen.append(found)
            return chosen
        case "boolean":
            lowered = raw.strip().casefold()
            if lowered in {"true", "yes", "1", "y", "ja", "oui", "si", "sì", "tak", "x"}:
                return True
            if lowered in {"false", "no", "0", "n", "nee", "nein", "non", "nie"}:
                return False
            raise CellRefused("not_a_boolean", "not yes or no")
        case "url":
            return url(raw)
        case _:
            return raw
