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

CREATE FUNCTION leadflow_company_lexeme(company uuid) RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $$
  SELECT array_to_tsvector(ARRAY['@' || company::text])
$$;

CREATE FUNCTION leadflow_company_query(company uuid) RETURNS tsquery
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $$
  SELECT quote_literal('@' || company::text)::tsquery
$$;

CREATE FUNCTION leadflow_join_text(a text[]) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT coalesce(string_agg(e, ' '), '') FROM unnest(a) AS e
$$;
"""  # noqa: S608 - built of this file's own constants

# The deletion log (leadflow.sync): every deleted lead, deal, person and organization,
# written by PostgreSQL whoever deletes (a repository, a cascade), with its visibility.
_LOG_DELETION = """
CREATE FUNCTION leadflow_log_deletion() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO deleted_record (company_id, record_type, record_id, owner_id, visible_to)
  VALUES (OLD.company_id, TG_ARGV[0], OLD.id, OLD.owner_id, OLD.visible_to);
  RETURN NULL;
END
$$
"""
_LOGGED = ("lead", "deal", "person", "organization")

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
        document = (
            "leadflow_company_lexeme(company_id) || "
            f"setweight(leadflow_search_doc({title}), 'A') || leadflow_search_doc({rest})"
        )
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

    op.create_table(
        "deleted_record",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("company_id", sa.Uuid(), nullable=False),
        sa.Column("record_type", sa.String(length=16), nullable=False),
        sa.Column("record_id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=True),
        sa.Column("visible_to", sa.String(length=16), nullable=False),
        sa.Column(
            "deleted_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deleted_record")),
    )
    op.create_index(
        "ix_deleted_record_company_id_deleted_at",
        "deleted_record",
        ["company_id", "deleted_at", "id"],
        unique=False,
    )
    op.create_index("ix_deleted_record_deleted_at", "deleted_record", ["deleted_at"], unique=False)
    connection.exec_driver_sql(_LOG_DELETION)
    for table in _LOGGED:
        op.execute(
            f"CREATE TRIGGER {table}_log_deletion AFTER DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION leadflow_log_deletion('{table}')"
        )
    # Sorted lists and sync (leadflow.sorting): by last change.
    op.create_index(
        "ix_lead_inbox_updated_at",
        "lead",
        ["company_id", sa.text("updated_at DESC"), sa.text("id DESC")],
        unique=False,
        postgresql_where=sa.text("NOT is_archived AND converted_deal_id IS NULL"),
    )
    for table in ("deal", "person", "organization"):
        op.create_index(
            f"ix_{table}_company_id_updated_at",
            table,
            ["company_id", "updated_at", "id"],
            unique=False,
        )
    # Users and tokens (leadflow.auth): deactivation, token names and last use.
    op.add_column("app_user", sa.Column("deactivated_at", sa.DateTime(timezone=True)))
    op.add_column(
        "api_token",
        sa.Column("name", sa.String(length=100), server_default="default", nullable=False),
    )
    op.add_column("api_token", sa.Column("last_used_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    op.drop_column("api_token", "last_used_at")
    op.drop_column("api_token", "name")
    op.drop_column("app_user", "deactivated_at")
    for table in ("deal", "person", "organization"):
        op.drop_index(f"ix_{table}_company_id_updated_at", table_name=table)
    op.drop_index("ix_lead_inbox_updated_at", table_name="lead")
    for table in _LOGGED:
        op.execute(f"DROP TRIGGER {table}_log_deletion ON {table}")
    op.execute("DROP FUNCTION leadflow_log_deletion()")
    op.drop_table("deleted_record")
    for table in _DOCUMENTS:
        op.drop_index(f"ix_{table}_search_doc", table_name=table)
        op.drop_column(table, "search_doc")
    for function in (
        "leadflow_join_text(text[])",
        "leadflow_company_query(uuid)",
        "leadflow_company_lexeme(uuid)",
        "leadflow_custom_text(jsonb)",
        "leadflow_search_query(text)",
        "leadflow_search_doc(text)",
        "leadflow_fold(text)",
    ):
        op.execute(f"DROP FUNCTION {function}")
