"""Type stubs of the native module ``cx._native`` (re-exported by ``cx``)."""

import datetime
import os
from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypeAlias, final

import pandas as pd

__version__: str

#: A table: a pandas, pyarrow or polars DataFrame (anything with ``__arrow_c_stream__``), or
#: a list of dicts.
TableLike: TypeAlias = Any
#: A value in a context dict: str, int, float, bool, datetime or a list of them.
ContextValue: TypeAlias = str | int | float | bool | datetime.datetime | Sequence[Any]
Outcome: TypeAlias = Literal["shown", "accepted", "rejected", "ignored", "converted"]

class CxError(Exception):
    """The root of every error ``cx`` raises."""

class ValidationError(CxError, ValueError):
    """A record, definition or argument is invalid."""

    item: str
    field: str
    reason: str

class RuleError(ValidationError):
    """A rule does not compile."""

    item: str
    offer_id: str | None
    line: int
    column: int
    message: str

class ParseError(ValidationError):
    """A catalogue document does not parse."""

    source_name: str
    format: str
    path: str
    message: str

class NotFound(CxError, LookupError):
    """Something looked up does not exist."""

    kind: str
    id: str

class ConflictError(CxError):
    """The request conflicts with what is stored."""

    kind: str
    id: str
    reason: str

class StorageError(CxError):
    """The storage backend failed, or a file could not be read."""

    backend: str

@final
class SelectedOffer:
    """An offer a decision chose."""

    @property
    def offer_id(self) -> str: ...
    @property
    def category(self) -> str: ...
    @property
    def rank(self) -> int: ...
    @property
    def score(self) -> float: ...
    @property
    def probability(self) -> float: ...

@final
class Decision:
    """One decision: what was chosen, for whom, when, and why."""

    @property
    def id(self) -> str: ...
    @property
    def customer_id(self) -> str: ...
    @property
    def channel(self) -> str: ...
    @property
    def at(self) -> datetime.datetime: ...
    @property
    def catalog_version(self) -> int: ...
    @property
    def offers(self) -> list[SelectedOffer]: ...
    def why_not(self, offer_id: str) -> str:
        """One sentence on why ``offer_id`` was not chosen (or how it was)."""
    def explain(self) -> pd.DataFrame:
        """Every candidate's explanation: ``offer_id``, ``stage``, ``reason``, score factors,
        ``lifts_at``, ``probability``."""

@final
class Kpis:
    """``engine.kpis``: KPI results as DataFrames."""

    def scorecard(
        self,
        start: datetime.datetime | None = None,
        end: datetime.datetime | None = None,
    ) -> pd.DataFrame:
        """Every KPI, grouped by owner."""
    def series(
        self,
        kpi_id: str,
        *,
        freq: Literal["D", "W", "h"] = "D",
        start: datetime.datetime | None = None,
        end: datetime.datetime | None = None,
    ) -> pd.DataFrame:
        """One KPI evaluated per period."""

@final
class Journeys:
    """``engine.journeys``: funnels and moments of truth as DataFrames."""

    def funnel(
        self,
        journey_id: str,
        *,
        start: datetime.datetime | None = None,
        end: datetime.datetime | None = None,
        by: Literal["channel"] | Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """The funnel of a journey: exact distinct customers per stage."""
    def moments(
        self,
        journey_id: str,
        question: str,
        *,
        start: datetime.datetime | None = None,
        end: datetime.datetime | None = None,
    ) -> pd.DataFrame:
        """Stages ranked by the mean answer to ``question`` given in them, best first."""

@final
class Engine:
    """A ``cx`` engine over a store. Every method blocks and releases the GIL."""

    @staticmethod
    def in_memory(
        *, now: datetime.datetime | None = None, keep_feature_inputs: bool = True
    ) -> Engine:
        """An engine on a fresh in-memory store (clock pinned at ``now`` if given)."""
    @staticmethod
    def postgres(
        url: str, *, pool_size: int = 16, now: datetime.datetime | None = None
    ) -> Engine:
        """An engine on a PostgreSQL database (migrated on connect)."""
    @property
    def backend(self) -> Literal["memory", "postgres"]: ...
    @property
    def kpis(self) -> Kpis: ...
    @property
    def journeys(self) -> Journeys: ...
    def now(self) -> datetime.datetime:
        """The engine's current instant (UTC)."""
    def set_now(self, at: datetime.datetime) -> None:
        """Moves a pinned clock."""
    def load_catalog(self, catalog: str | os.PathLike[str] | Mapping[str, Any]) -> int:
        """Validates, compiles, stores and uses a catalogue; returns its version."""
    def upsert_customers(self, data: TableLike) -> dict[str, int]:
        """Inserts or replaces customer profiles, atomically."""
    def ingest(self, data: TableLike, *, batch_size: int = 100_000) -> dict[str, int]:
        """Appends touchpoints, idempotent by id, atomic per batch."""
    def customers(self, *, ids: Sequence[str] | None = None) -> pd.DataFrame:
        """Customer profiles."""
    def touchpoints(
        self,
        *,
        customer_id: str | None = None,
        start: datetime.datetime | None = None,
        end: datetime.datetime | None = None,
    ) -> pd.DataFrame:
        """Touchpoints, ordered by occurrence."""
    def decide(
        self,
        customer_id: str,
        *,
        channel: str,
        context: Mapping[str, ContextValue] | None = None,
        k: int | None = None,
        placement: str | None = None,
        seed: int | None = None,
        explain: bool = True,
    ) -> Decision:
        """The next best offers for one customer, recorded and explained."""
    def decide_batch(
        self,
        customer_ids: Sequence[str],
        *,
        channel: str,
        context: Mapping[str, ContextValue] | None = None,
        k: int | None = None,
        placement: str | None = None,
        seed: int | None = None,
        record: bool = False,
    ) -> pd.DataFrame:
        """Decisions for many customers, one row per chosen offer (a dry run by default)."""
    def record_outcome(self, decision_id: str, offer_id: str, outcome: Outcome) -> bool:
        """Records an outcome; False if it was recorded before."""
    def forget(self, customer_id: str) -> dict[str, int | bool]:
        """Erases everything about a customer."""
    def _time_rust_decide(
        self, customer_id: str, *, channel: str, n: int, k: int | None = None
    ) -> float: ...

@final
class World:
    """A generated world: customers and touchpoints."""

    @property
    def customers(self) -> pd.DataFrame: ...
    @property
    def touchpoints(self) -> pd.DataFrame: ...
    @property
    def start(self) -> datetime.datetime: ...
    @property
    def end(self) -> datetime.datetime: ...

@final
class Telco:
    """A telco arbitration scenario loaded into an in-memory engine."""

    @property
    def engine(self) -> Engine: ...
    @property
    def catalog(self) -> dict[str, Any]: ...
    @property
    def customers(self) -> pd.DataFrame | None: ...
    @property
    def touchpoints(self) -> pd.DataFrame | None: ...
    @property
    def contacts(self) -> pd.DataFrame | None: ...
    @property
    def now(self) -> datetime.datetime: ...
    @property
    def channel(self) -> str: ...
    @property
    def k(self) -> int: ...
    @property
    def trials(self) -> pd.DataFrame: ...
    @property
    def budget_used(self) -> dict[str, int]: ...

def world(
    *, customers: int = 50_000, touchpoints: int = 1_000_000, seed: int = 42, days: int = 90
) -> World:
    """The tour's synthetic world."""

def telco(
    *,
    offers: int = 100,
    customers: int = 1_000,
    touchpoints: int = 200,
    contacts: int = 50,
    seed: int = 42,
    tables: bool = True,
) -> Telco:
    """A telco arbitration scenario in a fresh in-memory engine."""

def after_fork_in_child() -> None: ...
def fresh_postgres_database() -> str: ...
def panic_for_test() -> None: ...
