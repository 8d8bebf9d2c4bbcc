"""Invoices: documents made from a deal, with honest numbering and totals.

A draft is made from the deal's line items and the party it bills (a snapshot: later
edits of the catalog or the contacts change no invoice); it is numbered when issued,
gaplessly per company, from a counter row locked in the issuing transaction; from then on
it is read-only, and a correction is a void plus a new invoice. leadflow is not an
accounting system: no payments, no credit notes, no e-invoicing.
"""
