"""Fixtures: an engine on each backend, a small catalogue, and a few customers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

import cx

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.timezone.utc)


def catalog() -> dict[str, Any]:
    """Two offers on sms for marketing, a cap, a KPI and a two-stage journey."""
    return {
        "schema": {"customer": {"plan": "string", "data_cap_gb": "number"}},
        "owners": [{"id": "growth", "name": "Growth"}, {"id": "care", "name": "Care"}],
        "features": [
            {"id": "views_7d", "aggregate": "count", "kinds": ["page_view"], "window": "7d"},
        ],
        "offers": [
            {
                "id": "upgrade",
                "name": "Upgrade",
                "category": "upsell",
                "channels": ["sms"],
                "eligibility": 'customer.plan == "S"',
                "value": 20,
            },
            {
                "id": "boost",
                "name": "Data boost",
                "category": "addon",
                "channels": ["sms"],
                "eligibility": "features.views_7d >= 1",
                "value": 5,
            },
        ],
        "contact_policy": [
            {"rule": "cap", "id": "one-a-day", "scope": "all", "outcome": "shown", "max": 1,
             "window": "1d"},
        ],
        "journeys": [
            {
                "id": "shop",
                "name": "Shop",
                "owner": "growth",
                "stages": [
                    {"id": "look", "name": "Look", "owner": "growth",
                     "entry": {"kinds": ["page_view"]}, "max_time": "30m"},
                    {"id": "buy", "name": "Buy", "owner": "growth",
                     "entry": {"kinds": ["purchase"]}},
                ],
            }
        ],
        "kpis": [
            {"id": "views", "name": "Page views", "owner": "growth",
             "measure": {"type": "count", "filter": {"kinds": ["page_view"]}}, "window": "30d"},
            {"id": "nps", "name": "NPS", "owner": "care",
             "measure": {"type": "nps", "question": "nps"}, "window": "30d",
             "target": {"value": 0, "direction": "higher_is_better"}},
        ],
        "arbitration": {"k": 2},
    }


def customers() -> list[dict[str, Any]]:
    since = NOW - dt.timedelta(days=30)
    consent = {"channel": "sms", "purpose": "marketing", "status": "granted", "since": since,
               "expires_at": None}
    return [
        {"id": "c-1", "plan": "S", "data_cap_gb": 5.0,
         "identities": [{"kind": "email", "value": "ann@example.com"}],
         "consents": [consent], "pii": ["name"], "name": "Ann"},
        {"id": "c-2", "plan": "L", "data_cap_gb": 50.0,
         "identities": [{"kind": "email", "value": "bob@example.com"}],
         "consents": [consent], "pii": [], "name": None},
        {"id": "c-3", "plan": "M", "data_cap_gb": 20.0, "identities": [], "consents": [],
         "pii": [], "name": None},
    ]


def touchpoints() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for i in range(6):
        rows.append({"id": f"t-{i}", "customer_id": f"c-{1 + i % 3}", "channel": "web",
                     "kind": "page_view", "occurred_at": NOW - dt.timedelta(hours=10 - i),
                     "page": f"/p/{i}", "dwell_seconds": 10.0 * i})
    rows.append({"id": "t-buy", "customer_id": "c-1", "channel": "web", "kind": "purchase",
                 "occurred_at": NOW - dt.timedelta(hours=1), "amount": 9.5})
    rows.append({"id": "t-nps", "customer_id": "c-2", "channel": "survey",
                 "kind": "survey_response", "occurred_at": NOW - dt.timedelta(hours=2),
                 "survey_question": "nps", "survey_score": 9.0, "survey_scale_min": 0.0,
                 "survey_scale_max": 10.0})
    return rows


@pytest.fixture(params=["memory", "postgres"])
def engine(request: pytest.FixtureRequest) -> Iterator[cx.Engine]:
    """An empty engine on each backend, its clock pinned at NOW."""
    if request.param == "memory":
        yield cx.Engine.in_memory(now=NOW)
    else:
        url = cx._native.fresh_postgres_database()
        yield cx.Engine.postgres(url, pool_size=4, now=NOW)


@pytest.fixture
def loaded(engine: cx.Engine) -> cx.Engine:
    """The engine with the catalogue, the customers and the touchpoints."""
    engine.load_catalog(catalog())
    engine.upsert_customers(customers())
    engine.ingest(touchpoints())
    return engine
