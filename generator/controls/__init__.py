"""The control catalog. One class per control; see base.Control for what a declaration carries."""

from __future__ import annotations

from generator.controls.base import Control, Severity, all_controls, applicable

__all__ = ["Control", "Severity", "all_controls", "applicable"]
