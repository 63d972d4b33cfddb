"""Round trips of every table, from pandas, pyarrow, polars and lists of dicts."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import cx
from conftest import NOW, customers, touchpoints


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values("id").reset_index(drop=True)


def test_touchpoints_round_trip_from_pandas(engine: cx.Engine) -> None:
    engine.upsert_customers(customers())
    source = pd.DataFrame(touchpoints())
    source["occurred_at"] = pd.to_datetime(source["occurred_at"], utc=True)
    assert engine.ingest(source)["inserted"] == len(source)
    back = engine.touchpoints()
    assert len(back) == len(source)
    for column in ["id", "customer_id", "channel", "kind", "page", "survey_question"]:
        left = _sorted(source)[column].astype(object).where(_sorted(source)[column].notna(), None)
        right = _sorted(back)[column].astype(object).where(_sorted(back)[column].notna(), None)
        assert list(left) == list(right), column
    for column in ["dwell_seconds", "amount", "survey_score", "survey_scale_max"]:
        pd.testing.assert_series_equal(_sorted(source)[column], _sorted(back)[column],
                                       check_dtype=False)
    assert (_sorted(back).occurred_at == _sorted(source).occurred_at).all()
    # The table read back ingests as duplicates: it is the same table.
    assert engine.ingest(back)["duplicates"] == len(source)


def test_touchpoints_from_pyarrow_polars_and_dicts(engine: cx.Engine) -> None:
    engine.upsert_customers(customers())
    rows = touchpoints()
    table = pa.Table.from_pylist(rows[:3])
    assert engine.ingest(table)["inserted"] == 3
    frame = pl.DataFrame(rows[3:6])
    assert engine.ingest(frame)["inserted"] == 3
    assert engine.ingest(rows[6:])["inserted"] == 2
    assert len(engine.touchpoints()) == 8
    assert len(engine.touchpoints(customer_id="c-1")) == 3
    window = engine.touchpoints(start=NOW - dt.timedelta(hours=3), end=NOW)
    assert list(window.id) == ["t-nps", "t-buy"]  # oldest first


def test_identities_and_strings_as_instants(engine: cx.Engine) -> None:
    engine.upsert_customers(customers())
    rows = [{"id": "t-id", "identity_kind": "email", "identity_value": "Ann@Example.com",
             "channel": "email", "kind": "message_opened", "occurred_at": "2026-11-22T10:00:00Z"}]
    assert engine.ingest(rows)["inserted"] == 1
    back = engine.touchpoints(customer_id="c-1")
    assert list(back.id) == ["t-id"]  # resolved to c-1 at ingest
    assert back.customer_id[0] == "c-1"
    assert back.occurred_at[0] == pd.Timestamp("2026-11-22T10:00:00Z")


def test_customers_round_trip(engine: cx.Engine) -> None:
    assert engine.upsert_customers(pd.DataFrame(customers())) == {"inserted": 3, "updated": 0}
    back = engine.customers()
    assert list(back.id) == ["c-1", "c-2", "c-3"]
    assert list(back.plan) == ["S", "L", "M"]
    assert list(back.data_cap_gb) == [5.0, 50.0, 20.0]
    assert back.name[0] == "Ann" and pd.isna(back.name[1])
    assert [list(p) for p in back.pii] == [["name"], [], []]
    assert [dict(i) for i in back.identities[0]] == [{"kind": "email",
                                                      "value": "ann@example.com"}]
    consent = dict(back.consents[0][0])
    assert (consent["channel"], consent["purpose"], consent["status"]) == (
        "sms", "marketing", "granted")
    assert consent["since"] == NOW - dt.timedelta(days=30)
    # Upserting the table read back replaces the same profiles.
    assert engine.upsert_customers(back) == {"inserted": 0, "updated": 3}
    assert list(engine.customers(ids=["c-2", "zzz"]).id) == ["c-2"]


def test_lists_and_booleans_as_attributes(engine: cx.Engine) -> None:
    engine.upsert_customers([{"id": "c-l", "devices": ["nova-5", "pulse"], "vip": True}])
    back = engine.customers()
    assert list(back.devices[0]) == ["nova-5", "pulse"] and bool(back.vip[0]) is True


def test_attribute_columns_out_of_order_with_nulls_in_sliced_batches(engine: cx.Engine) -> None:
    engine.upsert_customers(customers())
    n = 300
    at = [NOW - dt.timedelta(seconds=i) for i in range(n)]
    table = pa.table({
        "id": [f"t-{i:03}" for i in range(n)],
        "customer_id": ["c-1"] * n,
        "channel": ["web"] * n,
        "kind": ["page_view"] * n,
        "occurred_at": pa.array(at, type=pa.timestamp("us", tz="UTC")),
        "zeta": [float(i) if i % 3 == 0 else None for i in range(n)],
        "alpha": [f"a{i}" if i % 2 == 0 else None for i in range(n)],
        "tags": [["x", str(i)] if i % 5 == 0 else None for i in range(n)],
    })
    # Batches of 37 rows: each is a slice starting mid-byte in the columns' null bitmaps.
    assert engine.ingest(table, batch_size=37)["inserted"] == n
    back = engine.touchpoints().set_index("id").sort_index()
    assert list(back.zeta.isna()) == [i % 3 != 0 for i in range(n)]
    assert list(back.zeta.dropna()) == [float(i) for i in range(0, n, 3)]
    assert list(back.alpha.dropna()) == [f"a{i}" for i in range(0, n, 2)]
    assert [list(t) for t in back.tags.dropna()] == [["x", str(i)] for i in range(0, n, 5)]


def test_a_repeated_attribute_column_keeps_the_later_value(engine: cx.Engine) -> None:
    engine.upsert_customers(customers())
    table = pa.Table.from_arrays(
        [pa.array(["t-1", "t-2"]), pa.array(["c-1", "c-1"]), pa.array(["web", "web"]),
         pa.array(["page_view", "page_view"]),
         pa.array([NOW, NOW], type=pa.timestamp("us", tz="UTC")),
         pa.array(["first", "first"]), pa.array(["second", None])],
        names=["id", "customer_id", "channel", "kind", "occurred_at", "page", "page"])
    assert engine.ingest(table)["inserted"] == 2
    back = engine.touchpoints().set_index("id").sort_index()
    assert list(back.page) == ["second", "first"]


def test_an_attribute_instant_out_of_range_is_named_and_nothing_of_its_batch_is_stored(
        engine: cx.Engine) -> None:
    engine.upsert_customers(customers())
    far = 2**63 - 1  # microseconds since 1970: year 294,247, past what cx stores
    table = pa.table({
        "id": ["t-ok", "t-far"], "customer_id": ["c-1", "c-1"], "channel": ["web", "web"],
        "kind": ["page_view", "page_view"],
        "occurred_at": pa.array([NOW, NOW], type=pa.timestamp("us", tz="UTC")),
        "renewal_at": pa.array([0, far], type=pa.timestamp("us", tz="UTC")),
    })
    with pytest.raises(cx.ValidationError) as e:
        engine.ingest(table)
    assert e.value.field == "renewal_at"
    assert "row 1" in str(e.value) and "out of the range" in str(e.value)
    assert len(engine.touchpoints()) == 0
    profiles = pa.table({"id": ["c-far"],
                         "renewal_at": pa.array([far], type=pa.timestamp("us", tz="UTC"))})
    with pytest.raises(cx.ValidationError) as e:
        engine.upsert_customers(profiles)
    assert e.value.field == "renewal_at"


def test_unsupported_column_type_is_named(engine: cx.Engine) -> None:
    table = pa.table({"id": ["c-x"], "blob": pa.array([b"\x00"], type=pa.binary())})
    with pytest.raises(cx.ValidationError) as e:
        engine.upsert_customers(table)
    assert e.value.field == "blob"


def test_synthetic_world_loads() -> None:
    world = cx.synthetic.world(customers=50, touchpoints=1_000, seed=7)
    assert len(world.customers) == 50 and len(world.touchpoints) == 1_000
    assert world.touchpoints.occurred_at.is_monotonic_increasing
    engine = cx.Engine.in_memory(now=world.end)
    engine.upsert_customers(world.customers)
    assert engine.ingest(world.touchpoints)["inserted"] == 1_000
    again = cx.synthetic.world(customers=50, touchpoints=1_000, seed=7)
    pd.testing.assert_frame_equal(world.touchpoints, again.touchpoints)


def test_synthetic_telco_decides() -> None:
    telco = cx.synthetic.telco(offers=100, customers=20, touchpoints=30, contacts=5)
    assert telco.customers is not None and len(telco.customers) == 20
    batch = telco.engine.decide_batch(list(telco.customers.id), channel=telco.channel)
    assert set(batch.customer_id) == set(telco.customers.id)
    assert batch.groupby("customer_id").size().max() <= telco.k
