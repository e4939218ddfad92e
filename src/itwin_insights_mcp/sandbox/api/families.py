"""The catalog families whose base paths links point into (names as each spec's `x-family` gives them)."""

from __future__ import annotations

__all__ = ["IMODELS", "ITWINS"]

IMODELS = "imodels-v2"
ITWINS = "itwins-v1"
