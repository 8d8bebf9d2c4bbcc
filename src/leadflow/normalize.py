"""Normalized forms of contact details: what validation accepts and duplicate search compares."""

from __future__ import annotations

import re
import unicodedata

import phonenumbers
from email_validator import EmailNotValidError, validate_email

MAX_EMAIL_LENGTH = 254


def normalize_email(raw: str) -> str:
    """Validated syntax (no DNS look-up), whole address lower-cased."""
    try:
        result = validate_email(raw.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"not a valid email address: {exc}") from exc
    return result.normalized.lower()


def normalize_phone(raw: str, default_region: str | None = None) -> str:
    """E.164 (`+33612345678`). Numbers without a country code need `default_region`."""
    text = raw.strip()
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException as exc:
        hint = "" if text.startswith("+") or default_region else " (start it with +country code)"
        raise ValueError(f"not a valid phone number{hint}") from exc
    if not phonenumbers.is_possible_number(number):
        raise ValueError("not a possible phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# Legal forms that do not tell two organizations apart ("Acme Inc" is "ACME").
_LEGAL_SUFFIXES = (
    "incorporated",
    "inc",
    "corporation",
    "corp",
    "company",
    "co",
    "limited",
    "ltd",
    "llc",
    "llp",
    "plc",
    "gmbh",
    "ag",
    "kg",
    "ug",
    "bv",
    "nv",
    "sa",
    "sas",
    "sarl",
    "sl",
    "srl",
    "spa",
    "sp zoo",
    "spzoo",
    "sp j",
    "ab",
    "as",
    "oy",
    "kk",
    "pty",
    "pte",
    "bhd",
)
_SUFFIX_RE = re.compile(
    r"(?:\s+(?:"
    + "|".join(re.escape(s) for s in sorted(_LEGAL_SUFFIXES, key=len, reverse=True))
    + r"))+$"
)


def normalize_organization_name(raw: str) -> str:
    """Case, accents, punctuation, spacing and trailing legal forms ignored."""
    text = unicodedata.normalize("NFKD", raw).encode("ascii", "ignore").decode() or raw
    text = text.casefold().replace("&", " and ")
    text = re.sub(r"[^\w\s]", " ", text)
    text = re.sub(r"\s+", " ", text).strip()
    # "B.V." became "b v": glue single letters so the suffix list can match them.
    text = re.sub(r"\b(\w) (?=\w\b)", r"\1", text)
    stripped = _SUFFIX_RE.sub("", text).strip()
    return stripped or text


def search_words(q: str) -> list[str]:
    """Words of a free-text query, safe to pass to to_tsquery as prefixes."""
    # lower(), not casefold(): to_tsvector lower-cases and would never match a folded "ß" -> "ss".
    return re.findall(r"\w+", q.lower())[:8]
