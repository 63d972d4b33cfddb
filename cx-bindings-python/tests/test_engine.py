"""The engine end to end on both backends: decisions, outcomes, KPIs, funnels, forgetting."""

from __future__ import annotations

import datetime as dt
import os
import threading

import pandas as pd
import pytest

import cx
from conftest import NOW, catalog, customers, touchpoints


def test_decide_explains_and_learns(loaded: cx.Engine) -> None:
    d = loaded.decide("c-1", channel="sms", seed=7)
    # c-1 is on plan S with page views: both offers are eligible, one per category, k=2.
    assert [o.offer_id for o in d.offers] == ["upgrade", "boost"]
    assert d.offers[0].rank == 0 and d.offers[0].probability == 1.0
    assert d.customer_id == "c-1" and d.channel == "sms" and d.at == NOW
    why = d.why_not("upgrade")
    assert "chosen" in why
    table = d.explain()
    assert list(table.offer_id) == ["upgrade", "boost"]
    assert set(table.stage) == {"selected"}
    assert (table.score > 0).all()
    assert loaded.record_outcome(d.id, "upgrade", "accepted") is True
    assert loaded.record_outcome(d.id, "upgrade", "accepted") is False  # counted once


def test_decide_says_why_not(loaded: cx.Engine) -> None:
    d = loaded.decide("c-2", channel="sms")
    assert [o.offer_id for o in d.offers] == ["boost"]
    why = d.why_not("upgrade")
    assert "not eligible" in why and "customer.plan = \"L\"" in why
    table = d.explain().set_index("offer_id")
    assert table.loc["upgrade", "stage"] == "eligibility"
    # c-3 has no consent on sms.
    d3 = loaded.decide("c-3", channel="sms")
    assert d3.offers == []
    assert set(d3.explain().stage) == {"consent"}


def test_contact_policy_applies_between_decisions(loaded: cx.Engine) -> None:
    first = loaded.decide("c-1", channel="sms", k=1)
    loaded.record_outcome(first.id, first.offers[0].offer_id, "shown")
    second = loaded.decide("c-1", channel="sms", k=1)
    assert second.offers == []
    table = second.explain()
    assert set(table.stage) == {"contact_policy"}
    assert table.lifts_at.notna().all()


def test_decide_batch_is_a_dry_run_by_default(loaded: cx.Engine) -> None:
    batch = loaded.decide_batch(["c-1", "c-2", "c-3"], channel="sms", seed=1)
    assert list(batch.columns) == ["customer_id", "decision_id", "rank", "offer_id",
                                   "category", "score", "probability"]
    assert list(batch.customer_id) == ["c-1", "c-1", "c-2", "c-3"]
    assert batch.offer_id.iloc[3] is None or pd.isna(batch.offer_id.iloc[3])
    # Nothing was recorded: no outcome can be recorded against a dry-run decision.
    with pytest.raises(cx.NotFound):
        loaded.record_outcome(batch.decision_id[0], "upgrade", "shown")
    recorded = loaded.decide_batch(["c-2"], channel="sms", record=True)
    assert loaded.record_outcome(recorded.decision_id[0], "boost", "shown") is True


def test_decide_batch_keeps_the_order_of_the_ids_across_its_runs(loaded: cx.Engine) -> None:
    # 1,200 ids are decided in several runs (of 512 at least), tabulated apart and joined.
    ids = ["c-3", "c-1", "c-2"] * 400
    batch = loaded.decide_batch(ids, channel="sms", seed=3)
    decisions = batch.drop_duplicates("decision_id")
    assert list(decisions.customer_id) == ids
    alone = loaded.decide_batch(["c-3", "c-1", "c-2"], channel="sms", seed=3)
    chosen = {c: list(g.offer_id.fillna("")) for c, g in alone.groupby("customer_id")}
    for _, rows in batch.groupby("decision_id"):
        assert list(rows.offer_id.fillna("")) == chosen[rows.customer_id.iloc[0]]


def test_decide_batch_chooses_the_same_with_or_without_kept_feature_inputs() -> None:
    # A dry run keeps each customer's feature inputs; the next decisions compute from them.
    chosen = []
    for keep in (True, False):
        engine = cx.Engine.in_memory(now=NOW, keep_feature_inputs=keep)
        engine.load_catalog(catalog())
        engine.upsert_customers(customers())
        engine.ingest(touchpoints())
        runs = [engine.decide_batch(["c-1", "c-2", "c-3"], channel="sms", seed=1)
                for _ in range(2)]
        picks = [list(run.offer_id.fillna("")) for run in runs]
        assert picks[0] == picks[1]
        first = runs[0]
        alone = engine.decide("c-1", channel="sms", seed=1)
        assert [o.offer_id for o in alone.offers] == list(
            first[first.customer_id == "c-1"].offer_id.dropna())
        chosen.append(picks[0])
    assert chosen[0] == chosen[1]


def test_decide_batch_names_an_unknown_customer(loaded: cx.Engine) -> None:
    with pytest.raises(cx.NotFound) as e:
        loaded.decide_batch(["c-1", "nobody"], channel="sms")
    assert e.value.id == "nobody"


def test_scorecard_series_and_funnel(loaded: cx.Engine) -> None:
    card = loaded.kpis.scorecard()
    assert list(card.kpi_id) == ["views", "nps"]
    assert list(card.owner) == ["growth", "care"]
    views = card.set_index("kpi_id").loc["views"]
    assert views.value == 6 and views.n == 6
    nps = card.set_index("kpi_id").loc["nps"]
    assert nps.value == 100.0 and nps.n == 1  # one promoter
    assert nps.status == "insufficient_data"
    over = loaded.kpis.scorecard(NOW - dt.timedelta(hours=6), NOW)
    assert over.set_index("kpi_id").loc["views", "value"] == 2  # t-4 and t-5
    series = loaded.kpis.series("views", freq="D", start=NOW - dt.timedelta(days=2), end=NOW)
    assert series.value.fillna(0).sum() == 6
    funnel = loaded.journeys.funnel("shop")
    assert list(funnel.stage) == ["look", "buy"]
    assert list(funnel.reached) == [3, 1]
    assert funnel.conversion.iloc[1] == pytest.approx(1 / 3)
    # c-2 and c-3 have been looking for hours (max 30 minutes); c-1 bought.
    assert list(funnel.overdue) == [2, 0]
    by_channel = loaded.journeys.funnel("shop", by="channel")
    assert set(by_channel.group.dropna()) == {"web"}
    moments = loaded.journeys.moments("shop", "nps")
    assert list(moments.stage) == ["look"] and moments["mean"].iloc[0] == 9.0


def test_forget_erases_the_customer(loaded: cx.Engine) -> None:
    loaded.decide("c-1", channel="sms")
    report = loaded.forget("c-1")
    assert report["profile"] is True and report["touchpoints"] == 3
    assert report["decisions"] == 1
    with pytest.raises(cx.NotFound):
        loaded.decide("c-1", channel="sms")
    assert "c-1" not in set(loaded.touchpoints().customer_id)


def test_ingest_is_idempotent(engine: cx.Engine) -> None:
    engine.load_catalog(catalog())
    engine.upsert_customers(customers())
    first = engine.ingest(touchpoints())
    assert first["inserted"] == 8 and first["duplicates"] == 0
    assert first["journey_events"] == 7  # 6 page views and a purchase meet stage criteria
    again = engine.ingest(touchpoints())
    assert again["inserted"] == 0 and again["duplicates"] == 8


def test_threads_share_the_engine(loaded: cx.Engine) -> None:
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            batch = loaded.decide_batch(["c-1", "c-2"] * 50, channel="sms", seed=3)
            results.append(list(batch.offer_id))
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(results) == 4 and all(r == results[0] for r in results)


def test_safe_after_fork(loaded: cx.Engine) -> None:
    before = [o.offer_id for o in loaded.decide("c-2", channel="sms").offers]
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: the same engine must work with a fresh runtime
        code = 1
        try:
            d = loaded.decide("c-1", channel="sms", k=1)
            card = loaded.kpis.scorecard()
            ok = [o.offer_id for o in d.offers] == ["upgrade"] and len(card) == 2
            code = 0 if ok else 2
        except BaseException:
            code = 3
        os.write(write, bytes([code]))
        os._exit(0)
    os.close(write)
    status = os.read(read, 1)
    os.waitpid(pid, 0)
    assert status == bytes([0])
    # The parent is unaffected.
    assert [o.offer_id for o in loaded.decide("c-2", channel="sms").offers] == before
