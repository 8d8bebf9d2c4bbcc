"""The safe subset of HTML that notes, comments and activity notes may hold.

Front ends render this content as HTML, so whatever a client sends is cleaned on the
way in by ammonia (through `nh3`), a maintained allow-list sanitizer: anything not
listed here (scripts, styles, `on*` handlers, images, iframes, inline styles) is
dropped, and links keep only http, https and mailto addresses. Plain text goes through
the same cleaner, which escapes `<`, `>` and `&` so that it displays as written.
"""

from __future__ import annotations

import nh3

ALLOWED_TAGS = frozenset(
    {
        *("p", "br", "blockquote", "pre", "code"),
        *("b", "strong", "i", "em", "u", "s"),
        *("ul", "ol", "li", "a"),
    }
)
ALLOWED_URL_SCHEMES = frozenset({"http", "https", "mailto"})

_cleaner = nh3.Cleaner(
    tags=set(ALLOWED_TAGS),
    # The text inside these is code or styling, never something to show.
    clean_content_tags={"script", "style"},
    attributes={"a": {"href"}},
    url_schemes=set(ALLOWED_URL_SCHEMES),
    # A relative link would resolve against whichever front end shows the note.
    url_relative="deny",
    link_rel="noopener noreferrer",
    strip_comments=True,
)


def sanitize_html(content: str) -> str:
    """`content` with only the allowed tags and attributes left; plain text is escaped."""
    return _cleaner.clean(content)
