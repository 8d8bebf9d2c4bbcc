"""search: folded full-text documents (`search_doc`, generated) on leads, deals, persons
and organizations, with their GIN indexes and the SQL functions that build them

Revision ID: 0017_search
Revises: 0010_deal_fields
Create Date: 2026-12-05 06:50:00

Adding a generated STORED column rewrites each table once: that is the backfill of the
existing rows (the migration holds each table's lock meanwhile; at 1,000,000 leads a few
tens of seconds).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0017_search"
down_revision: str | None = "0010_deal_fields"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Latin letters with diacritics and their base letter (NFKD without combining marks,
# plus the letters that do not decompose: ø, đ, ł and the dotless i), for translate(): the same folding
# on every server, with or without the unaccent extension.
_ACCENTED = (
    "ÀÁÂÃÄÅÇÈÉÊËÌÍÎÏÑÒÓÔÕÖÙÚÛÜÝàáâãäåçèéêëìíîïñòóôõöùúûüýÿĀāĂăĄąĆćĈĉĊċČčĎďĒ"
    "ēĔĕĖėĘęĚěĜĝĞğĠġĢģĤĥĨĩĪīĬĭĮįİĴĵĶķĹĺĻļĽľŃńŅņŇňŌōŎŏŐőŔŕŖŗŘřŚśŜŝŞşŠšŢţŤťŨũ"
    "ŪūŬŭŮůŰűŲųŴŵŶŷŸŹźŻżŽžſƠơƯưǍǎǏǐǑǒǓǔǕǖǗǘǙǚǛǜǞǟǠǡǦǧǨǩǪǫǬǭǰǴǵǸǹǺǻȀȁȂȃȄȅȆȇȈ"
    "ȉȊȋȌȍȎȏȐȑȒȓȔȕȖȗȘșȚțȞȟȦȧȨȩȪȫȬȭȮȯȰȱȲȳḀḁḂḃḄḅḆḇḈḉḊḋḌḍḎḏḐḑḒḓḔḕḖḗḘḙḚḛḜḝḞḟḠḡḢ"
    "ḣḤḥḦḧḨḩḪḫḬḭḮḯḰḱḲḳḴḵḶḷḸḹḺḻḼḽḾḿṀṁṂṃṄṅṆṇṈṉṊṋṌṍṎṏṐṑṒṓṔṕṖṗṘṙṚṛṜṝṞṟṠṡṢṣṤṥṦṧṨ"
    "ṩṪṫṬṭṮṯṰṱṲṳṴṵṶṷṸṹṺṻṼṽṾṿẀẁẂẃẄẅẆẇẈẉẊẋẌẍẎẏẐẑẒẓẔẕẖẗẘẙẛẠạẢảẤấẦầẨẩẪẫẬậẮắẰằẲẳ"
    "ẴẵẶặẸẹẺẻẼẽẾếỀềỂểỄễỆệỈỉỊịỌọỎỏỐốỒồỔổỖỗỘộỚớỜờỞởỠỡỢợỤụỦủỨứỪừỬửỮữỰựỲỳỴỵỶỷỸỹ"
    "øØđĐłŁı"
)
_PLAIN = (
    "AAAAAACEEEEIIIINOOOOOUUUUYaaaaaaceeeeiiiinooooouuuuyyAaAaAaCcCcCcCcDdE"
    "eEeEeEeEeGgGgGgGgHhIiIiIiIiIJjKkLlLlLlNnNnNnOoOoOoRrRrRrSsSsSsSsTtTtUu"
    "UuUuUuUuUuWwYyYZzZzZzsOoUuAaIiOoUuUuUuUuUuAaAaGgKkOoOojGgNnAaAaAaEeEeI"
    "iIiOoOoRrRrUuUuSsTtHhAaEeOoOoOoOoYyAaBbBbBbCcDdDdDdDdDdEeEeEeEeEeFfGgH"
    "hHhHhHhHhIiIiKkKkKkLlLlLlLlMmMmMmNnNnNnNnOoOoOoOoPpPpRrRrRrRrSsSsSsSsS"
    "sTtTtTtTtUuUuUuUuUuVvVvWwWwWwWwWwXxXxYyZzZzZzhtwysAaAaAaAaAaAaAaAaAaAa"
    "AaAaEeEeEeEeEeEeEeEeIiIiOoOoOoOoOoOoOoOoOoOoOoOoUuUuUuUuUuUuUuYyYyYyYy"
    "oOdDlLi"
)

_FUNCTIONS = f"""
CREATE FUNCTION leadflow_fold(t text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $$
  SELECT lower(replace(replace(replace(replace(replace(replace(replace(
    translate(t, '{_ACCENTED}', '{_PLAIN}'),
    'ß', 'ss'), 'æ', 'ae'), 'Æ', 'AE'), 'œ', 'oe'), 'Œ', 'OE'), 'þ', 'th'), 'Þ', 'TH'))
$$;

CREATE FUNCTION leadflow_search_doc(t text) RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT to_tsvector(
    'simple'::regconfig,
    regexp_replace(leadflow_fold(coalesce(t, '')), '[[:punct:][:space:]]+', ' ', 'g')
  )
$$;

CREATE FUNCTION leadflow_search_query(q text) RETURNS tsquery
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT to_tsquery(
    'simple'::regconfig,
    coalesce(string_agg(quote_literal(w.lexeme) || ':*', ' & '), '')
  )
  FROM unnest(leadflow_search_doc(q)) AS w
$$;

CREATE FUNCTION leadflow_custom_text(j jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT coalesce(string_agg(e.value #>> '{{}}', ' '), '')
  FROM jsonb_each(coalesce(j, '{{}}'::jsonb)) AS e
  WHERE jsonb_typeof(e.value) = 'string'
    AND e.value #>> '{{}}' !~ '^-?[0-9]+(\\.[0-9]+)?$'
    AND e.value #>> '{{}}' !~ '^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}$'
    AND e.value #>> '{{}}' !~ '^[0-9]{{2}}:[0-9]{{2}}(:[0-9]{{2}})?$'
    AND e.value #>> '{{}}' !~ '^[0-9a-f]{{8}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{12}}$'
$$;

CREATE FUNCTION leadflow_join_text(a text[]) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT coalesce(string_agg(e, ' '), '') FROM unnest(a) AS e
$$;
"""  # noqa: S608 - built of this file's own constants

_CUSTOM = "leadflow_custom_text(custom_fields)"
# What each table's document is made of: (title, the rest). leadflow.textsearch.DOCUMENTS
# holds the same (the models' Computed columns; tests/test_migrations compares).
_DOCUMENTS = {
    "lead": (
        "title",
        "coalesce(prospect_person_name, '') || ' ' || coalesce(prospect_email, '') || ' ' "
        f"|| coalesce(prospect_organization_name, '') || ' ' || {_CUSTOM}",
    ),
    "deal": ("title", _CUSTOM),
    "person": ("name", f"leadflow_join_text(emails) || ' ' || {_CUSTOM}"),
    "organization": ("name", _CUSTOM),
}


def upgrade() -> None:
    # Through the driver: text() would read `:punct` of the regular expression as a
    # bind parameter.
    connection = op.get_bind()
    for function in _FUNCTIONS.strip().split("\n\nCREATE"):
        body = function if function.startswith("CREATE") else "CREATE" + function
        connection.exec_driver_sql(body)
    for table, (title, rest) in _DOCUMENTS.items():
        document = f"setweight(leadflow_search_doc({title}), 'A') || leadflow_search_doc({rest})"
        op.add_column(
            table,
            sa.Column(
                "search_doc",
                postgresql.TSVECTOR(),
                sa.Computed(document, persisted=True),
                nullable=True,
            ),
        )
        op.create_index(
            f"ix_{table}_search_doc", table, ["search_doc"], unique=False, postgresql_using="gin"
        )


def downgrade() -> None:
    for table in _DOCUMENTS:
        op.drop_index(f"ix_{table}_search_doc", table_name=table)
        op.drop_column(table, "search_doc")
    for function in (
        "leadflow_join_text(text[])",
        "leadflow_custom_text(jsonb)",
        "leadflow_search_query(text)",
        "leadflow_search_doc(text)",
        "leadflow_fold(text)",
    ):
        op.execute(f"DROP FUNCTION {function}")
