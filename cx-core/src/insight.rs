//! The `Engine`'s journey, segment, KPI and follow-up methods: they build store queries from the
//! catalogue in use and turn the answers into funnels, scorecards and series.

use crate::arbitration::features::{FeatureScratch, compute};
use crate::engine::{Engine, Loaded};
use crate::error::{Error, Result};
use crate::kpi::{self, Answers, KpiResult, OtherAnswer, OtherQuery, Scorecard};
use crate::model::{
    CaseId, Catalog, CustomerId, FollowUpCase, JourneyTrack, Kpi, SegmentId, Span, TimeRange,
    Timestamp,
};
use crate::rules::{Env, Namespace};
use crate::store::{
    Breakdown, Bucket, CaseQuery, CatalogVersion, Funnel, FunnelQuery, FunnelStep, MomentsQuery,
    StageScore,
};
use std::collections::HashMap;

/// One version of a KPI's definition in the registry (the catalogue's history).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct KpiVersion {
    /// The catalogue version that introduced this definition (who, when, why).
    pub version: CatalogVersion,
    /// The definition; `None` where the KPI was removed.
    pub kpi: Option<Kpi>,
}

impl Engine {
    fn require_loaded(&self) -> Result<Loaded> {
        self.loaded()
            .ok_or_else(|| Error::not_found("catalog", "current (load one first)"))
    }

    /// The customer's journey tracks (instances, stage by stage), ordered by journey id.
    pub async fn journey_tracks(&self, customer: &CustomerId) -> Result<Vec<JourneyTrack>> {
        self.store().journey_tracks(customer).await
    }

    /// The funnel query of journey `id` over every stage, for instances started in `started`,
    /// with the journey's inactivity timeout, at now. Adjust it (conversion windows, customers,
    /// breakdown) and run it with [`Engine::run_funnel`].
    pub fn funnel_query(&self, id: &str, started: TimeRange) -> Result<FunnelQuery> {
        let loaded = self.require_loaded()?;
        let journey = loaded
            .stored
            .catalog
            .journey(id)
            .ok_or_else(|| Error::not_found("journey", id))?;
        let steps = journey
            .stages
            .iter()
            .enumerate()
            .map(|(i, s)| {
                FunnelStep::new(
                    s.id.clone(),
                    u16::try_from(i).unwrap_or(u16::MAX),
                    s.optional,
                )
                .max_time(s.max_time)
            })
            .collect();
        Ok(
            FunnelQuery::new(journey.id.clone(), steps, started, self.now())
                .timeout(journey.inactivity_timeout),
        )
    }

    /// The funnel of journey `id` for instances started in `started`.
    pub async fn funnel(&self, id: &str, started: TimeRange) -> Result<Funnel> {
        let query = self.funnel_query(id, started)?;
        self.store().funnel(&query).await
    }

    /// Runs a funnel query.
    pub async fn run_funnel(&self, query: &FunnelQuery) -> Result<Funnel> {
        self.store().funnel(query).await
    }

    /// The funnel broken down by segment: one group per segment id, in the order given.
    pub async fn funnel_by_segment(
        &self,
        id: &str,
        started: TimeRange,
        segments: &[&str],
    ) -> Result<Funnel> {
        let mut groups = Vec::with_capacity(segments.len());
        for segment in segments {
            groups.push(((*segment).to_owned(), self.segment_members(segment).await?));
        }
        let query = self
            .funnel_query(id, started)?
            .breakdown(Breakdown::Groups(groups));
        self.store().funnel(&query).await
    }

    /// Journey `id`'s stages ranked by the mean answer to `question` given in them during
    /// `range`, best first (the worst moments of truth are at the end).
    pub async fn moments_of_truth(
        &self,
        id: &str,
        question: &str,
        range: TimeRange,
    ) -> Result<Vec<StageScore>> {
        let loaded = self.require_loaded()?;
        let journey = loaded
            .stored
            .catalog
            .journey(id)
            .ok_or_else(|| Error::not_found("journey", id))?;
        let query = MomentsQuery::new(journey.id.clone(), question, range)
            .timeout(journey.inactivity_timeout);
        self.store().moments_of_truth(&query).await
    }

    /// The ids of the customers in segment `id` now, in id order: its rule evaluated over each
    /// profile and, if the rule reads features, the customer's touchpoints.
    pub async fn segment_members(&self, id: &str) -> Result<Vec<CustomerId>> {
        let loaded = self.require_loaded()?;
        let catalog = loaded.arbitrator.catalog();
        let segment = catalog
            .segments
            .iter()
            .find(|s| s.id.as_str() == id)
            .ok_or_else(|| Error::not_found("segment", id))?;
        let needs_features = segment
            .rule
            .slots()
            .any(|s| s.namespace == Namespace::Feature);
        let now = self.now();
        let lookback = TimeRange::new(
            TimeRange::ending_at(now, catalog.touchpoint_lookback()).start,
            now + chrono::TimeDelta::microseconds(1),
        );
        let mut members = Vec::new();
        let mut after: Option<CustomerId> = None;
        loop {
            let page = self.store().customer_page(after.as_ref(), 2048).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.id.clone());
            for customer in &page {
                let (mut customer_slots, mut features) = (Vec::new(), Vec::new());
                let touchpoints = if needs_features {
                    self.store()
                        .customer_touchpoints(&customer.id, lookback)
                        .await?
                } else {
                    Vec::new()
                };
                catalog
                    .vocabulary()
                    .customer
                    .resolve(&customer.attributes, &mut customer_slots);
                let mut scratch = FeatureScratch::default();
                if needs_features {
                    compute(
                        &catalog.features,
                        catalog.vocabulary(),
                        &touchpoints,
                        lookback.end.timestamp_micros(),
                        &mut scratch,
                        &mut features,
                    );
                } else {
                    features.clear();
                }
                let env = Env {
                    customer: &customer_slots,
                    features: &features,
                    ..Env::empty(now)
                };
                if segment.rule.eval(&env).holds() {
                    members.push(customer.id.clone());
                }
            }
        }
        Ok(members)
    }

    /// Whether customer `customer` is in segment `id` now.
    pub async fn in_segment(&self, customer: &CustomerId, id: &str) -> Result<bool> {
        let loaded = self.require_loaded()?;
        let catalog = loaded.arbitrator.catalog();
        let segment = catalog
            .segments
            .iter()
            .find(|s| s.id.as_str() == id)
            .ok_or_else(|| Error::not_found("segment", id))?;
        let state = self.customer_state(customer).await?;
        let now = self.now();
        let (mut customer_slots, mut features) = (Vec::new(), Vec::new());
        catalog
            .vocabulary()
            .customer
            .resolve(&state.customer.attributes, &mut customer_slots);
        compute(
            &catalog.features,
            catalog.vocabulary(),
            &state.touchpoints,
            now.timestamp_micros() + 1,
            &mut FeatureScratch::default(),
            &mut features,
        );
        let env = Env {
            customer: &customer_slots,
            features: &features,
            ..Env::empty(now)
        };
        Ok(segment.rule.eval(&env).holds())
    }

    /// Evaluates KPI `id` of the catalogue in use over its window ending at `at`.
    pub async fn evaluate_kpi(&self, id: &str, at: Timestamp) -> Result<KpiResult> {
        let loaded = self.require_loaded()?;
        let catalog = &loaded.stored.catalog;
        let kpi = catalog.kpi(id).ok_or_else(|| Error::not_found("kpi", id))?;
        let window = TimeRange::ending_at(at, kpi.window);
        let mut results = self
            .evaluate_kpis(catalog, loaded.stored.version.version, &[(kpi, window)], at)
            .await?;
        results.pop().ok_or_else(|| Error::not_found("kpi", id))
    }

    /// Evaluates KPI `id` as defined in catalogue version `version` (a past report, reproduced),
    /// over its window ending at `at`.
    pub async fn evaluate_kpi_at(
        &self,
        id: &str,
        version: u64,
        at: Timestamp,
    ) -> Result<KpiResult> {
        let stored = self
            .store()
            .catalog(Some(version))
            .await?
            .ok_or_else(|| Error::not_found("catalog version", version.to_string()))?;
        let kpi = stored
            .catalog
            .kpi(id)
            .ok_or_else(|| Error::not_found("kpi", id))?;
        let window = TimeRange::ending_at(at, kpi.window);
        let mut results = self
            .evaluate_kpis(&stored.catalog, version, &[(kpi, window)], at)
            .await?;
        results.pop().ok_or_else(|| Error::not_found("kpi", id))
    }

    /// Every KPI of the catalogue in use over its window ending at `at`, grouped by owner. The
    /// touchpoint measures of all KPIs are answered in one store pass.
    pub async fn scorecard(&self, at: Timestamp) -> Result<Scorecard> {
        let loaded = self.require_loaded()?;
        let catalog = &loaded.stored.catalog;
        let kpis: Vec<(&Kpi, TimeRange)> = catalog
            .kpis
            .iter()
            .map(|k| (k, TimeRange::ending_at(at, k.window)))
            .collect();
        let results = self
            .evaluate_kpis(catalog, loaded.stored.version.version, &kpis, at)
            .await?;
        Ok(Scorecard::group(&catalog.owners, results))
    }

    /// Every KPI of the catalogue in use over the one window `range` (instead of each KPI's
    /// own window), evaluated as of `range.end`, grouped by owner.
    pub async fn scorecard_over(&self, range: TimeRange) -> Result<Scorecard> {
        let loaded = self.require_loaded()?;
        let catalog = &loaded.stored.catalog;
        let kpis: Vec<(&Kpi, TimeRange)> = catalog.kpis.iter().map(|k| (k, range)).collect();
        let results = self
            .evaluate_kpis(catalog, loaded.stored.version.version, &kpis, range.end)
            .await?;
        Ok(Scorecard::group(&catalog.owners, results))
    }

    /// KPI `id` evaluated per day or week over `range`: one result per bucket that starts in
    /// the range, each over that bucket (not the KPI's window), oldest first.
    pub async fn kpi_series(
        &self,
        id: &str,
        range: TimeRange,
        bucket: Bucket,
    ) -> Result<Vec<KpiResult>> {
        let loaded = self.require_loaded()?;
        let catalog = &loaded.stored.catalog;
        let kpi = catalog.kpi(id).ok_or_else(|| Error::not_found("kpi", id))?;
        let step = match bucket {
            Bucket::Hour => Span::hours(1),
            Bucket::Day => Span::days(1),
            Bucket::Week => Span::days(7),
        };
        let mut windows = Vec::new();
        let mut start = bucket.start_of(range.start);
        if start < range.start {
            start += step.as_delta();
        }
        while start < range.end && windows.len() < 10_000 {
            windows.push((kpi, TimeRange::new(start, start + step.as_delta())));
            start += step.as_delta();
        }
        let mut out = Vec::with_capacity(windows.len());
        for window in windows {
            let mut r = self
                .evaluate_kpis(
                    catalog,
                    loaded.stored.version.version,
                    &[window],
                    window.1.end,
                )
                .await?;
            out.append(&mut r);
        }
        Ok(out)
    }

    /// The registry's history of KPI `id`: each catalogue version where its definition changed
    /// (appeared, changed, was removed), oldest first, with who changed it, when and why.
    pub async fn kpi_history(&self, id: &str) -> Result<Vec<KpiVersion>> {
        let mut out: Vec<KpiVersion> = Vec::new();
        for version in self.store().catalog_history().await? {
            let Some(stored) = self.store().catalog(Some(version.version)).await? else {
                continue;
            };
            let kpi = stored.catalog.kpi(id).cloned();
            let previous = out.last().map(|v| &v.kpi);
            let changed = match previous {
                None => kpi.is_some(),
                Some(prev) => prev != &kpi,
            };
            if changed {
                out.push(KpiVersion { version, kpi });
            }
        }
        if out.is_empty() {
            return Err(Error::not_found("kpi", id));
        }
        Ok(out)
    }

    /// Evaluates `kpis` (each with its window) of `catalog`: segment members resolved once per
    /// segment, touchpoint measures in one store pass, the rest one query each.
    async fn evaluate_kpis(
        &self,
        catalog: &Catalog,
        version: u64,
        kpis: &[(&Kpi, TimeRange)],
        at: Timestamp,
    ) -> Result<Vec<KpiResult>> {
        let mut members: HashMap<&SegmentId, Vec<CustomerId>> = HashMap::new();
        for (kpi, _) in kpis {
            if let Some(segment) = &kpi.segment
                && !members.contains_key(segment)
            {
                members.insert(segment, self.segment_members(segment.as_str()).await?);
            }
        }
        let (mut touch, mut others) = (Vec::new(), Vec::new());
        let roots: Vec<kpi::Node> = kpis
            .iter()
            .map(|(k, window)| {
                let customers = k.segment.as_ref().and_then(|s| members.get(s));
                kpi::plan(catalog, k, *window, at, customers, &mut touch, &mut others)
            })
            .collect();
        let mut answers = Answers {
            touch: if touch.is_empty() {
                Vec::new()
            } else {
                self.store().measure_touchpoints(&touch).await?
            },
            others: Vec::with_capacity(others.len()),
        };
        for query in &others {
            answers.others.push(match query {
                OtherQuery::Funnel(q) => OtherAnswer::Funnel(self.store().funnel(q).await?),
                OtherQuery::StageTimes(q) => {
                    OtherAnswer::StageTimes(self.store().stage_times(q).await?)
                }
                OtherQuery::Sla(q) => OtherAnswer::Sla(self.store().case_sla(q).await?),
            });
        }
        Ok(kpis
            .iter()
            .zip(&roots)
            .map(|((k, window), root)| {
                KpiResult::new(k, *window, kpi::compute(root, &answers), version)
            })
            .collect())
    }

    /// Follow-up cases matching `query`.
    pub async fn cases(&self, query: &CaseQuery) -> Result<Vec<FollowUpCase>> {
        self.store().cases(query).await
    }

    /// Closes follow-up case `id` now, with what was done.
    pub async fn close_case(&self, id: &CaseId, note: Option<String>) -> Result<FollowUpCase> {
        self.store().close_case(id, self.now(), note).await
    }
}
