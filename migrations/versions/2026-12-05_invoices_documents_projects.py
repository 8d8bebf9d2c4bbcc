"""Invoices (with the per-company numbering counter), document templates and the
documents made from them, projects with boards, phases and links to deals (issue 21)

Revision ID: 0016_invoices
Revises: 0017_search
Create Date: 2026-12-05 06:37:00.710628
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0016_invoices"
down_revision: str | None = "0017_search"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "document_template",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("company_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["company.id"],
            name=op.f("fk_document_template_company_id_company"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_document_template")),
    )
    op.create_index(
        "ix_document_template_company_id",
        "document_template",
        ["company_id", "name", "id"],
        unique=False,
    )
    op.create_table(
        "invoice_numbering",
        sa.Column("company_id", sa.Uuid(), nullable=False),
        sa.Column(
            "number_format",
            sa.String(length=64),
            server_default="INV-{year}-{seq:06d}",
            nullable=False,
        ),
        sa.Column("last_seq", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["company.id"],
            name=op.f("fk_invoice_numbering_company_id_company"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("company_id", name=op.f("pk_invoice_numbering")),
    )
    op.create_table(
        "project_board",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("company_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("order_nr", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["company.id"],
            name=op.f("fk_project_board_company_id_company"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_project_board")),
    )
    op.create_index(
        "ix_project_board_company_id",
        "project_board",
        ["company_id", "order_nr", "id"],
        unique=False,
    )
    op.create_table(
        "pipeline_project_board",
        sa.Column("pipeline_id", sa.Uuid(), nullable=False),
        sa.Column("company_id", sa.Uuid(), nullable=False),
        sa.Column("board_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["board_id"],
            ["project_board.id"],
            name=op.f("fk_pipeline_project_board_board_id_project_board"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["company.id"],
            name=op.f("fk_pipeline_project_board_company_id_company"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["pipeline_id"],
            ["pipeline.id"],
            name=op.f("fk_pipeline_project_board_pipeline_id_pipeline"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("pipeline_id", name=op.f("pk_pipeline_project_board")),
    )
    op.create_index(
        "ix_pipeline_project_board_board_id", "pipeline_project_board", ["board_id"], unique=False
    )
    op.create_table(
        "project_phase",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("company_id", sa.Uuid(), nullable=False),
        sa.Column("board_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("order_nr", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["board_id"],
            ["project_board.id"],
            name=op.f("fk_project_phase_board_id_project_board"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["company.id"],
            name=op.f("fk_project_phase_company_id_company"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_project_phase")),
    )
    op.create_index(
        "ix_project_phase_board_id", "project_phase", ["board_id", "order_nr", "id"], unique=False
    )
    op.create_index(
        "ix_project_phase_company_id",
        "project_phase",
        ["company_id", "order_nr", "id"],
        unique=False,
    )
    op.create_table(
        "project",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("company_id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("start_date", sa.Date(), nullable=True),
        sa.Column("end_date", sa.Date(), nullable=True),
        sa.Column("owner_id", sa.Uuid(), nullable=True),
        sa.Column("person_id", sa.Uuid(), nullable=True),
        sa.Column("organization_id", sa.Uuid(), nullable=True),
        sa.Column("board_id", sa.Uuid(), nullable=False),
        sa.Column("phase_id", sa.Uuid(), nullable=False),
        sa.Column("visible_to", sa.String(length=16), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status IN ('open', 'completed', 'cancelled')", name=op.f("ck_project_status")
        ),
        sa.CheckConstraint(
            "visible_to IN ('owner', 'group', 'company')", name=op.f("ck_project_visible_to")
        ),
        sa.CheckConstraint(
            "start_date IS NULL OR end_date IS NULL OR end_date >= start_date",
            name=op.f("ck_project_dates"),
        ),
        sa.ForeignKeyConstraint(
            ["board_id"],
            ["project_board.id"],
            name=op.f("fk_project_board_id_project_board"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["company.id"],
            name=op.f("fk_project_company_id_company"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organization.id"],
            name=op.f("fk_project_organization_id_organization"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["app_user.id"],
            name=op.f("fk_project_owner_id_app_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["person.id"],
            name=op.f("fk_project_person_id_person"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["phase_id"],
            ["project_phase.id"],
            name=op.f("fk_project_phase_id_project_phase"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_project")),
    )
    op.create_index(
        "ix_project_board_id", "project", ["board_id", "created_at", "id"], unique=False
    )
    op.create_index(
        "ix_project_company_id_created_at",
        "project",
        ["company_id", "created_at", "id"],
        unique=False,
    )
    op.create_index("ix_project_organization_id", "project", ["organization_id"], unique=False)
    op.create_index("ix_project_owner_id", "project", ["owner_id"], unique=False)
    op.create_index("ix_project_person_id", "project", ["person_id"], unique=False)
    op.create_index("ix_project_phase_id", "project", ["phase_id"], unique=False)
    op.create_table(
        "invoice",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("company_id", sa.Uuid(), nullable=False),
        sa.Column("deal_id", sa.Uuid(), nullable=True),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("number", sa.String(length=80), nullable=True),
        sa.Column("seq", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("issue_date", sa.Date(), nullable=True),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.Column("paid_date", sa.Date(), nullable=True),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("bill_to", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("lines", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("subtotal", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("discount_total", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("tax_total", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("total", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("voided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("void_reason", sa.String(length=500), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "(number IS NULL) = (status = 'draft')", name=op.f("ck_invoice_numbered_once_issued")
        ),
        sa.CheckConstraint(
            "status IN ('draft', 'issued', 'paid', 'void')", name=op.f("ck_invoice_status")
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["company.id"],
            name=op.f("fk_invoice_company_id_company"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["app_user.id"],
            name=op.f("fk_invoice_created_by_app_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["deal_id"], ["deal.id"], name=op.f("fk_invoice_deal_id_deal"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoice")),
    )
    op.create_index(
        "ix_invoice_company_id_created_at",
        "invoice",
        ["company_id", "created_at", "id"],
        unique=False,
    )
    op.create_index(
        "ix_invoice_company_id_status",
        "invoice",
        ["company_id", "status", "created_at", "id"],
        unique=False,
    )
    op.create_index("ix_invoice_deal_id", "invoice", ["deal_id", "created_at", "id"], unique=False)
    op.create_index(
        "uq_invoice_company_id_number",
        "invoice",
        ["company_id", "number"],
        unique=True,
        postgresql_where=sa.text("number IS NOT NULL"),
    )
    op.create_table(
        "project_deal",
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("deal_id", sa.Uuid(), nullable=False),
        sa.Column("company_id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["company.id"],
            name=op.f("fk_project_deal_company_id_company"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["deal_id"], ["deal.id"], name=op.f("fk_project_deal_deal_id_deal"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["project.id"],
            name=op.f("fk_project_deal_project_id_project"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", "deal_id", name=op.f("pk_project_deal")),
    )
    op.create_index(
        "ix_project_deal_deal_id",
        "project_deal",
        ["deal_id", "created_at", "project_id"],
        unique=False,
    )
    op.create_table(
        "deal_document",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("company_id", sa.Uuid(), nullable=False),
        sa.Column("deal_id", sa.Uuid(), nullable=False),
        sa.Column("template_id", sa.Uuid(), nullable=True),
        sa.Column("file_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["company.id"],
            name=op.f("fk_deal_document_company_id_company"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["deal_id"], ["deal.id"], name=op.f("fk_deal_document_deal_id_deal"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["file_id"],
            ["deal_file.id"],
            name=op.f("fk_deal_document_file_id_deal_file"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["document_template.id"],
            name=op.f("fk_deal_document_template_id_document_template"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["app_user.id"],
            name=op.f("fk_deal_document_user_id_app_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deal_document")),
    )
    op.create_index(
        "ix_deal_document_deal_id", "deal_document", ["deal_id", "created_at", "id"], unique=False
    )
    op.create_index("ix_deal_document_file_id", "deal_document", ["file_id"], unique=False)
    op.create_index("ix_deal_document_template_id", "deal_document", ["template_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_deal_document_template_id", table_name="deal_document")
    op.drop_index("ix_deal_document_file_id", table_name="deal_document")
    op.drop_index("ix_deal_document_deal_id", table_name="deal_document")
    op.drop_table("deal_document")
    op.drop_index("ix_project_deal_deal_id", table_name="project_deal")
    op.drop_table("project_deal")
    op.drop_index(
        "uq_invoice_company_id_number",
        table_name="invoice",
        postgresql_where=sa.text("number IS NOT NULL"),
    )
    op.drop_index("ix_invoice_deal_id", table_name="invoice")
    op.drop_index("ix_invoice_company_id_status", table_name="invoice")
    op.drop_index("ix_invoice_company_id_created_at", table_name="invoice")
    op.drop_table("invoice")
    op.drop_index("ix_project_phase_id", table_name="project")
    op.drop_index("ix_project_person_id", table_name="project")
    op.drop_index("ix_project_owner_id", table_name="project")
    op.drop_index("ix_project_organization_id", table_name="project")
    op.drop_index("ix_project_company_id_created_at", table_name="project")
    op.drop_index("ix_project_board_id", table_name="project")
    op.drop_table("project")
    op.drop_index("ix_project_phase_company_id", table_name="project_phase")
    op.drop_index("ix_project_phase_board_id", table_name="project_phase")
    op.drop_table("project_phase")
    op.drop_index("ix_pipeline_project_board_board_id", table_name="pipeline_project_board")
    op.drop_table("pipeline_project_board")
    op.drop_index("ix_project_board_company_id", table_name="project_board")
    op.drop_table("project_board")
    op.drop_table("invoice_numbering")
    op.drop_index("ix_document_template_company_id", table_name="document_template")
    op.drop_table("document_template")
