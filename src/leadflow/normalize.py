"""Normalized forms of contact details: what validation accepts and duplicate search compares."""

from __future__ import annotations

import functools
import re
import unicodedata

import phonenumbers
from email_validator import EmailNotValidError, validate_email

MAX_EMAIL_LENGTH = 254


# A local part of plain ASCII atoms (letters, digits and `_+-`) joined by single dots:
# the syntax nearly every address has, which the validator returns unchanged.
_PLAIN_LOCAL = re.compile(r"[A-Za-z0-9_+\-]+(?:\.[A-Za-z0-9_+\-]+)*")
_MAX_LOCAL_LENGTH = 64


def normalize_email(raw: str) -> str:
    """Validated syntax (no DNS look-up), whole address lower-cased.

    In an ASCII address, a plain local part is taken as it is and only the domain is validated, once
    per domain (cached): what the validator would answer for the whole address, at a
    fraction of its cost (an import validates thousands of addresses of few domains).
    Anything else, and any refusal, goes through the validator whole."""
    text = raw.strip()
    local, at, domain = text.rpartition("@")
    if (
        at
        and text.isascii()
        and len(text) <= MAX_EMAIL_LENGTH
        and len(local) <= _MAX_LOCAL_LENGTH
        and _PLAIN_LOCAL.fullmatch(local)
    ):
        normalized_domain = _normalized_domain(domain)
        if normalized_domain is not None:
            return f"{local}@{normalized_domain}".lower()
    try:
        result = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"not a valid email address: {exc}") from exc
    return result.normalized.lower()


@functools.lru_cache(maxsize=4_096)
def _normalized_domain(domain: str) -> str | None:
    """The domain as the validator normalizes it after a plain local part; None when it
    refuses it (the caller asks the validator again, for its message)."""
    try:
        result = validate_email(f"a@{domain}", check_deliverability=False)
    except EmailNotValidError:
        return None
    return result.normalized.partition("@")[2]


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


# Compiled once: `re.sub` with a pattern string looks it up in re's cache on every call
# (a conversion or a capture with an organization normalizes its name).
_PUNCTUATION = re.compile(r"[^\w\s]")
_SPACES = re.compile(r"\s+")
_SINGLE_LETTER = re.compile(r"\b(\w) (?=\w\b)")


def normalize_organization_name(raw: str) -> str:
    """Case, accents, punctuation, spacing and trailing legal forms ignored."""
    text = unicodedata.normalize("NFKD", raw).encode("ascii", "ignore").decode() or raw
    text = text.casefold().replace("&", " and ")
    text = _PUNCTUATION.sub(" ", text)
    text = _SPACES.sub(" ", text).strip()
    # "B.V." became "b v": glue single letters so the suffix list can match them.
    text = _SINGLE_LETTER.sub(r"\1", text)
    stripped = _SUFFIX_RE.sub("", text).strip()
    return stripped or text


def search_words(q: str) -> list[str]:
    """Words of a free-text query, safe to pass to to_tsquery as prefixes."""
    # lower(), not casefold(): to_tsvector lower-cases and would never match a folded "ß" -> "ss".
    return re.findall(r"\w+", q.lower())[:8]
