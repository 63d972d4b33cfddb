#!/usr/bin/env python3
"""The pandas baseline of `cargo bench --bench analytics`: the same 5-stage funnel and the same
12 KPIs, computed with pandas on the data the bench wrote, checked against cx's answers, timed
(median of 7 runs, reading the CSV not included) and compared with criterion's medians.

Usage (from the repository root, after `cargo bench --bench analytics`):

    python3 -m venv .venv && .venv/bin/pip install pandas numpy   # once
    .venv/bin/python benches/analytics_pandas.py

The funnel is the ordered, greedy funnel: a customer reaches stage k if, after the first event
that reached stage k-1, they have an event of stage k's kind (events ordered by time, then id;
the bench's `seq` column). With no optional stage and no timeout this is exactly what cx's
journey tracking counts. pandas runs on one core, as cx does in the bench.
"""

import glob
import json
import math
import os
import statistics
import sys
import time

import numpy as np
import pandas as pd

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "target", "analytics-bench")
STAGES = ["product_view", "add_to_cart", "purchase", "support_contact", "survey_response"]
WINDOW_US = 30 * 86_400 * 1_000_000


def funnel(df):
    reached = []
    first = df[df["kind"] == STAGES[0]].groupby("customer", sort=False)["seq"].min()
    reached.append(len(first))
    prev = first
    for kind in STAGES[1:]:
        events = df.loc[df["kind"] == kind, ["customer", "seq"]]
        m = events.merge(prev.rename("prev"), left_on="customer", right_index=True)
        m = m[m["seq"] > m["prev"]]
        prev = m.groupby("customer", sort=False)["seq"].min()
        reached.append(len(prev))
    return reached


def scorecard(df, end_us):
    w = df[(df["occurred_us"] >= end_us - WINDOW_US) & (df["occurred_us"] < end_us)]
    kind = w["kind"]
    purchases = w.loc[kind == "purchase", "amount"].dropna()
    dwell = w.loc[kind.isin(["page_view", "product_view"]), "dwell_seconds"].dropna()
    handle = w.loc[kind.isin(["support_contact", "complaint"]), "handle_seconds"].dropna()
    active = w["customer"].nunique()
    complaints = int((kind == "complaint").sum())
    scores = w.loc[w["question"].notna(), ["question", "score"]]
    by_q = {q: s["score"].to_numpy() for q, s in scores.groupby("question")}

    def nps(s):
        return 100.0 * ((s >= 9).sum() - (s <= 6).sum()) / len(s) if len(s) else None

    def top2(s):
        return float((s >= 4).sum()) / len(s) if len(s) else None

    empty = np.array([])
    return {
        "views": float((kind == "product_view").sum()),
        "active": float(active),
        "revenue": float(purchases.sum()),
        "aov": float(purchases.mean()) if len(purchases) else None,
        "dwell-p50": float(np.percentile(dwell, 50)) if len(dwell) else None,
        "handle-p90": float(np.percentile(handle, 90)) if len(handle) else None,
        "complaint-rate": complaints / active if active else None,
        "complaints": float(complaints),
        "nps": nps(by_q.get("nps", empty)),
        "csat-support": top2(by_q.get("csat_support", empty)),
        "csat-purchase": top2(by_q.get("csat_purchase", empty)),
        "ces": float(by_q["ces_support"].mean()) if len(by_q.get("ces_support", empty)) else None,
    }


def timed(f, *args, runs=7):
    times, out = [], None
    for _ in range(runs):
        start = time.perf_counter()
        out = f(*args)
        times.append(time.perf_counter() - start)
    return out, statistics.median(times)


def criterion_median(name):
    for path in glob.glob(os.path.join(ROOT, "target", "criterion", "analytics", "*", "new", "estimates.json")):
        if os.path.basename(os.path.dirname(os.path.dirname(path))) == name:
            with open(path) as f:
                return json.load(f)["median"]["point_estimate"] / 1e9
    return None


def main():
    csv = os.path.join(DATA, "touchpoints.csv")
    if not os.path.exists(csv):
        sys.exit(f"{csv} is missing: run `cargo bench --bench analytics` first")
    with open(os.path.join(DATA, "cx.json")) as f:
        cx = json.load(f)
    df = pd.read_csv(
        csv,
        dtype={"customer": "category", "kind": "category", "channel": "category", "question": "category"},
    )
    print(f"pandas {pd.__version__}, {len(df):,} touchpoints, {df['customer'].nunique():,} customers")

    reached, funnel_s = timed(funnel, df)
    card, card_s = timed(scorecard, df, cx["end_us"])

    ok = True
    if reached != cx["funnel"]:
        ok = False
        print(f"funnel MISMATCH: pandas {reached}, cx {cx['funnel']}")
    for kpi, mine in card.items():
        theirs = cx["kpis"].get(kpi)
        same = (mine is None and theirs is None) or (
            mine is not None and theirs is not None and math.isclose(mine, theirs, rel_tol=1e-9, abs_tol=1e-9)
        )
        if not same:
            ok = False
            print(f"kpi {kpi} MISMATCH: pandas {mine}, cx {theirs}")
    print("answers agree with cx" if ok else "answers DIFFER from cx")
    print(f"funnel stages reached: {reached}")

    for name, pandas_s in [("funnel-1m_cx", funnel_s), ("scorecard-1m_cx", card_s)]:
        cx_s = criterion_median(name)
        ratio = f"{pandas_s / cx_s:.1f}x" if cx_s else "n/a (no criterion result)"
        cx_ms = f"{cx_s * 1e3:.1f} ms" if cx_s else "-"
        print(f"{name:<16} pandas {pandas_s * 1e3:8.1f} ms   cx {cx_ms:>10}   cx is {ratio} faster")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
