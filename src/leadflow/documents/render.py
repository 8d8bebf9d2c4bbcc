"""Templates to PDF: Jinja2 fills Typst markup, and Typst typesets it.

Every value a placeholder prints (`{{ deal.title }}`) becomes a Typst string literal
(`#"...";`), which Typst prints as text: a `<script>`, a `#`, `*`, `$` or `]` in a deal's
title is text, never markup or code. Jinja2 runs sandboxed (no attribute access to
Python internals, bounded ranges). Typst runs with an empty directory as its root (so
`read` and `image` find nothing) and no system fonts, and the Typst source may not import
or include anything, evaluate strings as code, or load plugins (packages would be fetched
from the network): the PDF depends on the template and the record alone.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import typst
from jinja2 import TemplateError
from jinja2.sandbox import SandboxedEnvironment

from leadflow.errors import INVALID_TEMPLATE, InvalidInput

MAX_TEMPLATE_CHARS = 100_000
MAX_PDF_BYTES = 10 * 1024 * 1024
# What the Typst source may not do (string literals left out, so values never match):
# import or include (packages come from the network), run strings as code, load plugins.
_FORBIDDEN = re.compile(r"\b(import|include)\s*[(\"]|#(import|include)\b|\b(eval|plugin)\s*\(")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


class TemplateInvalid(InvalidInput):
    """422 `invalid_template` at `loc`: the template's body, or the template a document
    was asked of when it does not render."""

    def __init__(self, msg: str, loc: Sequence[str] = ("body", "template_id")) -> None:
        super().__init__(loc, msg, INVALID_TEMPLATE)


def typst_text(value: Any) -> str:
    """A value as Typst markup that prints it as text (None prints nothing)."""
    if value is None:
        return ""
    text = str(value)
    escaped = "".join(_ESCAPES.get(ch, ch) for ch in text if ch >= " " or ch in _ESCAPES)
    return f'#"{escaped}";'


@cache
def _environment() -> SandboxedEnvironment:
    return SandboxedEnvironment(
        finalize=typst_text,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def starter(name: str) -> str:
    """The body of a starting template (`quote` or `invoice`)."""
    return resources.files("leadflow.documents").joinpath(f"starters/{name}.typ").read_text()


def check(body: str) -> None:
    """422 unless the body parses as a template (what it makes is checked when rendered)."""
    try:
        _environment().parse(body)
    except TemplateError as exc:
        raise TemplateInvalid(f"Template syntax: {exc}", ("body", "body")) from exc


def _refuse_forbidden(source: str, loc: Sequence[str]) -> None:
    found = _FORBIDDEN.search(_STRING.sub('""', source))
    if found:
        what = found.group(0).strip('#(" ')
        raise TemplateInvalid(
            f"A template may not use {what!r}: documents are made of the template and the "
            "record alone.",
            loc,
        )


def render_pdf(
    body: str, context: dict[str, Any], loc: Sequence[str] = ("body", "template_id")
) -> bytes:
    """The PDF of the template for this context; 422 at `loc` when it cannot be made."""
    try:
        source = _environment().from_string(body).render(context)
    except TemplateError as exc:
        raise TemplateInvalid(f"Template: {exc}", loc) from exc
    # Checked on what Typst reads: template text joined by Jinja2 (`imp{# #}ort`)
    # is caught too; the values are string literals, which are left out.
    _refuse_forbidden(source, loc)
    with tempfile.TemporaryDirectory(prefix="leadflow-typst-") as root:
        main = Path(root) / "main.typ"
        main.write_text(source)
        try:
            pdf = typst.compile(main, root=Path(root), ignore_system_fonts=True, format="pdf")
        except Exception as exc:  # the binding raises its own TypstError (a RuntimeError)
            raise TemplateInvalid(f"Typst: {str(exc).replace(root, '')}", loc) from exc
    if len(pdf) > MAX_PDF_BYTES:
        raise TemplateInvalid(f"The document is over {MAX_PDF_BYTES} bytes.", loc)
    return pdf
