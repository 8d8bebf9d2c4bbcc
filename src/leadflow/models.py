"""Every ORM module, imported so that `Base.metadata` knows all tables (alembic, tests)."""

from leadflow.activities.models import Activity, Note, NoteComment
from leadflow.auth.models import ApiToken, Company, User, UserGroup
from leadflow.capture.models import CaptureDelivery, Form
from leadflow.contacts.models import Organization, Person
from leadflow.conversion.models import Conversion
from leadflow.db import Base
from leadflow.deals.models import (
    Deal,
    DealChange,
    DealFile,
    DealParticipant,
    DealProduct,
    DealStageTotal,
)
from leadflow.documents.models import DealDocument, DocumentTemplate
from leadflow.fields.models import FieldDefinition
from leadflow.idempotency import IdempotencyRecord
from leadflow.imports.models import DataImport, DataImportRecord, DataImportRow
from leadflow.invoices.models import Invoice, InvoiceNumbering
from leadflow.jobs.models import Job
from leadflow.leads.models import Lead, LeadLabel, LeadReadiness
from leadflow.merged import MergedRecord
from leadflow.pipelines.models import Pipeline, Stage
from leadflow.products.models import Product
from leadflow.projects.models import (
    PipelineProjectBoard,
    Project,
    ProjectBoard,
    ProjectDeal,
    ProjectPhase,
)
from leadflow.reports.models import DealHistory, LeadDayTotal
from leadflow.rules.models import ConversionRule
from leadflow.sync.models import DeletedRecord
from leadflow.webhooks.models import Webhook, WebhookDelivery, WebhookEvent

__all__ = [
    "Activity",
    "ApiToken",
    "Base",
    "CaptureDelivery",
    "Company",
    "Conversion",
    "ConversionRule",
    "DataImport",
    "DataImportRecord",
    "DataImportRow",
    "Deal",
    "DealChange",
    "DealDocument",
    "DealFile",
    "DealHistory",
    "DealParticipant",
    "DealProduct",
    "DealStageTotal",
    "DeletedRecord",
    "DocumentTemplate",
    "FieldDefinition",
    "Form",
    "IdempotencyRecord",
    "Invoice",
    "InvoiceNumbering",
    "Job",
    "Lead",
    "LeadDayTotal",
    "LeadLabel",
    "LeadReadiness",
    "MergedRecord",
    "Note",
    "NoteComment",
    "Organization",
    "Person",
    "Pipeline",
    "PipelineProjectBoard",
    "Product",
    "Project",
    "ProjectBoard",
    "ProjectDeal",
    "ProjectPhase",
    "Stage",
    "User",
    "UserGroup",
    "Webhook",
    "WebhookDelivery",
    "WebhookEvent",
]
