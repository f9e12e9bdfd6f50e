"""Validation: row counts and checksums, source against target, chunk by key range."""

from __future__ import annotations

from cdc_tui.validation.compare import validate_tables
from cdc_tui.validation.report import DifferingRange, TableValidation, ValidationReport

__all__ = ["DifferingRange", "TableValidation", "ValidationReport", "validate_tables"]
