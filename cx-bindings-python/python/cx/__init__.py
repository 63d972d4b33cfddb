"""cx: customer experience in one library.

Customers, touchpoints, journeys with owned stages, KPIs with owners and targets, and
next-best-offer arbitration, on the same Rust engine as the ``cx`` crate.

>>> import cx
>>> engine = cx.Engine.in_memory()
>>> engine.backend
'memory'
"""

from cx import synthetic
from cx._native import (
    ConflictError,
    CxError,
    Decision,
    Engine,
    Journeys,
    Kpis,
    NotFound,
    ParseError,
    RuleError,
    SelectedOffer,
    StorageError,
    ValidationError,
    __version__,
)

__all__ = [
    "ConflictError",
    "CxError",
    "Decision",
    "Engine",
    "Journeys",
    "Kpis",
    "NotFound",
    "ParseError",
    "RuleError",
    "SelectedOffer",
    "StorageError",
    "ValidationError",
    "__version__",
    "synthetic",
]
