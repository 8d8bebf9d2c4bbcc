"""What a column may be mapped to, and the suggested mapping of a file's headers.

A target is a field of one entity: a system field (below) or a custom field by its key
(persons' and organizations' own fields; a lead carries the deal fields, as it does
everywhere). A row makes at most a person, an organization, a lead or a deal, and a note
and an activity attached to the row's deal or lead (else its person, else its
organization). Headers are compared normalized: case, accents, spaces and punctuation
ignored, so "E-Mail", "e-mail" and "Email" are one; synonyms in English and in the
languages of the seed articles (Dutch, German, Italian, French, Polish), and the
common ones of Spanish and Portuguese.
"""

from __future__ import annotations

import enum
import re
import unicodedata


class ImportEntity(enum.StrEnum):
    person = "person"
    organization = "organization"
    lead = "lead"
    deal = "deal"
    note = "note"
    activity = "activity"


class Kind(enum.StrEnum):
    text = "text"
    email = "email"
    phone = "phone"
    url = "url"
    money = "money"
    date = "date"
    id = "id"
    boolean = "boolean"
    status = "status"  # a deal's: open, won, lost
    activity_type = "activity_type"
    user = "user"  # by e-mail address or name
    name = "name"  # a pipeline or a stage, by its name


# (entity, field) -> (kind, max length for text)
SYSTEM_FIELDS: dict[tuple[ImportEntity, str], tuple[Kind, int]] = {
    (ImportEntity.person, "name"): (Kind.text, 300),
    (ImportEntity.person, "email"): (Kind.email, 254),
    (ImportEntity.person, "phone"): (Kind.phone, 64),
    (ImportEntity.organization, "name"): (Kind.text, 300),
    (ImportEntity.organization, "address"): (Kind.text, 500),
    (ImportEntity.organization, "website"): (Kind.url, 500),
    (ImportEntity.lead, "id"): (Kind.id, 36),
    (ImportEntity.lead, "title"): (Kind.text, 300),
    (ImportEntity.lead, "value"): (Kind.money, 0),
    (ImportEntity.lead, "expected_close_date"): (Kind.date, 0),
    (ImportEntity.deal, "id"): (Kind.id, 36),
    (ImportEntity.deal, "title"): (Kind.text, 300),
    (ImportEntity.deal, "value"): (Kind.money, 0),
    (ImportEntity.deal, "expected_close_date"): (Kind.date, 0),
    (ImportEntity.deal, "status"): (Kind.status, 0),
    (ImportEntity.deal, "pipeline"): (Kind.name, 255),
    (ImportEntity.deal, "stage"): (Kind.name, 255),
    (ImportEntity.deal, "owner"): (Kind.user, 254),
    (ImportEntity.note, "content"): (Kind.text, 100_000),
    (ImportEntity.activity, "subject"): (Kind.text, 300),
    (ImportEntity.activity, "type"): (Kind.activity_type, 16),
    (ImportEntity.activity, "due_date"): (Kind.date, 0),
    (ImportEntity.activity, "done"): (Kind.boolean, 0),
}

# The entity whose custom field definitions an entity's records carry.
FIELDS_OF = {
    ImportEntity.person: "person",
    ImportEntity.organization: "organization",
    ImportEntity.lead: "deal",
    ImportEntity.deal: "deal",
}

_SYNONYMS: dict[tuple[ImportEntity, str], tuple[str, ...]] = {
    (ImportEntity.person, "name"): (
        "name",
        "full name",
        "person",
        "person name",
        "contact",
        "contact name",
        "contact person",
        "naam",
        "contactpersoon",
        "volledige naam",
        "ansprechpartner",
        "kontakt",
        "kontaktperson",
        "vollständiger name",
        "nom",
        "nom complet",
        "contact",
        "nome",
        "nome completo",
        "referente",
        "imię i nazwisko",
        "osoba kontaktowa",
        "osoba",
        "nombre",
        "nombre completo",
        "contato",
    ),
    (ImportEntity.person, "email"): (
        "email",
        "e-mail",
        "mail",
        "email address",
        "e-mail address",
        "e-mailadres",
        "e-mail-adresse",
        "adresse e-mail",
        "courriel",
        "indirizzo email",
        "posta elettronica",
        "adres e-mail",
        "correo",
        "correo electronico",
    ),
    (ImportEntity.person, "phone"): (
        "phone",
        "phone number",
        "telephone",
        "tel",
        "mobile",
        "cell",
        "telefoon",
        "telefoonnummer",
        "mobiel",
        "telefon",
        "telefonnummer",
        "handy",
        "mobil",
        "téléphone",
        "portable",
        "telefono",
        "cellulare",
        "numer telefonu",
        "komórka",
        "teléfono",
        "celular",
    ),
    (ImportEntity.organization, "name"): (
        "organization",
        "organisation",
        "organization name",
        "company",
        "company name",
        "account",
        "organisatie",
        "bedrijf",
        "bedrijfsnaam",
        "firma",
        "unternehmen",
        "organisation",
        "entreprise",
        "société",
        "azienda",
        "organizzazione",
        "società",
        "organizacja",
        "nazwa firmy",
        "empresa",
        "organização",
        "organización",
    ),
    (ImportEntity.organization, "address"): (
        "address",
        "adres",
        "adresse",
        "anschrift",
        "indirizzo",
        "dirección",
        "endereço",
    ),
    (ImportEntity.organization, "website"): (
        "website",
        "web site",
        "web",
        "url",
        "site",
        "homepage",
        "webseite",
        "site web",
        "sito web",
        "strona www",
        "strona internetowa",
        "sitio web",
    ),
    (ImportEntity.lead, "id"): ("lead id",),
    (ImportEntity.lead, "title"): (
        "title",
        "lead",
        "lead title",
        "lead name",
        "subject",
        "titel",
        "onderwerp",
        "titre",
        "titolo",
        "tytuł",
        "título",
        "potencjalny klient",
    ),
    (ImportEntity.lead, "value"): (
        "value",
        "amount",
        "lead value",
        "deal value",
        "waarde",
        "bedrag",
        "wert",
        "betrag",
        "valeur",
        "montant",
        "valore",
        "importo",
        "wartość",
        "kwota",
        "valor",
        "importe",
    ),
    (ImportEntity.lead, "expected_close_date"): (
        "expected close date",
        "close date",
        "closing date",
        "verwachte sluitingsdatum",
        "sluitingsdatum",
        "erwartetes abschlussdatum",
        "abschlussdatum",
        "date de clôture prévue",
        "date de clôture",
        "data di chiusura prevista",
        "data di chiusura",
        "przewidywana data zamknięcia",
        "data zamknięcia",
        "fecha de cierre",
    ),
    (ImportEntity.deal, "status"): ("status", "deal status", "state", "statut", "stato"),
    (ImportEntity.deal, "pipeline"): ("pipeline", "sales pipeline", "lejek"),
    (ImportEntity.deal, "stage"): ("stage", "deal stage", "phase", "fase", "etap", "étape"),
    (ImportEntity.deal, "owner"): ("owner", "deal owner", "eigenaar", "besitzer", "proprietario"),
    (ImportEntity.note, "content"): (
        "note",
        "notes",
        "comment",
        "comments",
        "notitie",
        "opmerking",
        "notiz",
        "bemerkung",
        "remarque",
        "nota",
        "notatka",
        "uwagi",
    ),
    (ImportEntity.activity, "subject"): (
        "activity",
        "task",
        "activity subject",
        "aufgabe",
        "tâche",
    ),
    (ImportEntity.activity, "type"): ("activity type",),
    (ImportEntity.activity, "due_date"): ("due date", "due", "fällig", "échéance", "scadenza"),
    (ImportEntity.activity, "done"): ("done", "completed", "erledigt", "fait", "fatto"),
}


def normalized(header: str) -> str:
    """Lower case, no accents, letters and digits only ("E-Mail-Adresse" -> "emailadresse")."""
    decomposed = unicodedata.normalize("NFKD", header.casefold())
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return re.sub(r"[\W_]+", "", plain.replace("ł", "l"))


SYNONYMS: dict[str, tuple[ImportEntity, str]] = {}
for _target, _words in _SYNONYMS.items():
    for _word in _words:
        SYNONYMS.setdefault(normalized(_word), _target)


def suggest(
    columns: list[str], custom: dict[ImportEntity, dict[str, str]]
) -> dict[str, tuple[ImportEntity, str]]:
    """Column -> (entity, field) for the columns a header names; each target once (the
    first column naming it). `custom`: per entity, custom field key -> its name."""
    by_name: dict[str, tuple[ImportEntity, str]] = dict(SYNONYMS)
    for entity, fields in custom.items():
        for key, name in fields.items():
            by_name.setdefault(normalized(name), (entity, key))
            by_name.setdefault(normalized(key), (entity, key))
    found: dict[str, tuple[ImportEntity, str]] = {}
    taken: set[tuple[ImportEntity, str]] = set()
    for column in columns:
        key = normalized(column)
        target = by_name.get(key)
        if target is None:
            # "Person - Email", "Organization address": a prefix names the entity and
            # the rest one of its fields.
            for prefix, entity in _PREFIXES.items():
                rest = key.removeprefix(prefix)
                if rest != key and rest:
                    candidate = _FIELD_WORDS[entity].get(rest)
                    if candidate is not None:
                        target = (entity, candidate)
                        break
        if target is not None and target not in taken:
            taken.add(target)
            found[column] = target
    return found


_PREFIXES = {
    "person": ImportEntity.person,
    "contact": ImportEntity.person,
    "organization": ImportEntity.organization,
    "organisation": ImportEntity.organization,
    "company": ImportEntity.organization,
    "lead": ImportEntity.lead,
    "deal": ImportEntity.lead,
    "note": ImportEntity.note,
    "activity": ImportEntity.activity,
}
_FIELD_WORDS: dict[ImportEntity, dict[str, str]] = {entity: {} for entity in ImportEntity}
for (_entity, _field), _words in _SYNONYMS.items():
    for _word in (*_words, _field):
        _FIELD_WORDS[_entity].setdefault(normalized(_word), _field)
