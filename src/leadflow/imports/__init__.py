"""Imports of persons, organizations and leads from CSV and XLSX files (issue 17)."""
