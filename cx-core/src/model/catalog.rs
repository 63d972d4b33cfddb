//! The catalogue: every definition (owners, offers, budgets, contact policy, journeys, KPIs,
//! segments, features) in one document, loaded from YAML, JSON or TOML and validated as a whole.

use super::arbitration::ArbitrationConfig;
use super::check::{self, FieldError};
use super::follow_up::FollowUpRule;
use super::journey::Journey;
use super::kpi::Kpi;
use super::offer::{Budget, ContactRule, Offer};
use super::owner::Owner;
use super::schema::Schema;
use super::segment::{Feature, Segment};
use super::trigger::Trigger;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::Path;

/// Every definition `cx` works from. One document, versioned as a whole in the store.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    /// The typed names rules may read (`customer.*`, `context.*`, `touchpoint.*`).
    #[serde(default, skip_serializing_if = "Schema::is_empty")]
    pub schema: Schema,
    /// People and teams that answer for stages and KPIs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owners: Vec<Owner>,
    /// Offers and actions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub offers: Vec<Offer>,
    /// Budgets offers draw on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub budgets: Vec<Budget>,
    /// Contact-policy rules that apply to every offer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contact_policy: Vec<ContactRule>,
    /// Journeys.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub journeys: Vec<Journey>,
    /// KPIs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kpis: Vec<Kpi>,
    /// Segments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segments: Vec<Segment>,
    /// Features.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<Feature>,
    /// Real-time triggers: touchpoint patterns that start a decision.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub triggers: Vec<Trigger>,
    /// The closed loop: which survey answers open a follow-up case.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub follow_ups: Vec<FollowUpRule>,
    /// How arbitration scores, explores and falls back.
    #[serde(default)]
    pub arbitration: ArbitrationConfig,
}

/// The format of a catalogue document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// YAML (also accepts JSON, which is YAML).
    Yaml,
    /// JSON.
    Json,
    /// TOML.
    Toml,
}

impl Format {
    fn name(self) -> &'static str {
        match self {
            Format::Yaml => "yaml",
            Format::Json => "json",
            Format::Toml => "toml",
        }
    }

    /// The format a file name's extension says (`.yaml`/`.yml`, `.json`, `.toml`).
    pub fn from_path(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "yaml" | "yml" => Some(Format::Yaml),
            "json" => Some(Format::Json),
            "toml" => Some(Format::Toml),
            _ => None,
        }
    }
}

impl Catalog {
    /// Parses and validates a YAML document.
    pub fn from_yaml(text: &str) -> Result<Catalog> {
        Catalog::parse(text, Format::Yaml, "<string>")
    }

    /// Parses and validates a JSON document.
    pub fn from_json(text: &str) -> Result<Catalog> {
        Catalog::parse(text, Format::Json, "<string>")
    }

    /// Parses and validates a TOML document.
    pub fn from_toml(text: &str) -> Result<Catalog> {
        Catalog::parse(text, Format::Toml, "<string>")
    }

    /// Reads, parses and validates a file; the format comes from the extension.
    pub fn from_path(path: impl AsRef<Path>) -> Result<Catalog> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        let format = Format::from_path(path).ok_or_else(|| {
            Error::validation(
                format!("catalogue file {shown}"),
                "extension",
                "must be .yaml, .yml, .json or .toml",
            )
        })?;
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: shown.clone(),
            source,
        })?;
        Catalog::parse(&text, format, &shown)
    }

    /// Parses `text` as `format` and validates it; `source_name` names the document in errors.
    pub fn parse(text: &str, format: Format, source_name: &str) -> Result<Catalog> {
        let parse_error = |path: String, message: String| {
            // serde_norway starts its messages with the path; it is in `path` already.
            let message = message
                .strip_prefix(&format!("{path}: "))
                .map(str::to_owned)
                .unwrap_or(message);
            Error::Parse {
                source_name: source_name.to_owned(),
                format: format.name(),
                path,
                message,
            }
        };
        let catalog: Catalog = match format {
            Format::Yaml => {
                let de = serde_norway::Deserializer::from_str(text);
                serde_path_to_error::deserialize(de)
                    .map_err(|e| parse_error(e.path().to_string(), e.inner().to_string()))?
            }
            Format::Json => {
                let mut de = serde_json::Deserializer::from_str(text);
                serde_path_to_error::deserialize(&mut de)
                    .map_err(|e| parse_error(e.path().to_string(), e.inner().to_string()))?
            }
            Format::Toml => {
                let de = toml::Deserializer::parse(text)
                    .map_err(|e| parse_error(String::new(), e.to_string()))?;
                serde_path_to_error::deserialize(de)
                    .map_err(|e| parse_error(e.path().to_string(), e.inner().to_string()))?
            }
        };
        catalog.validate()?;
        Ok(catalog)
    }

    /// The catalogue as YAML.
    pub fn to_yaml(&self) -> Result<String> {
        serde_norway::to_string(self).map_err(|e| Error::validation("catalogue", "", e.to_string()))
    }

    /// Checks every definition and every reference between them. The error names the item
    /// (`kpi "nps"`, `stage "activation" of journey "onboarding"`) and the field.
    pub fn validate(&self) -> Result<()> {
        self.schema.check().map_err(|e| e.at("schema"))?;
        self.arbitration
            .check()
            .map_err(|e| e.at("arbitration settings"))?;
        let owners = ids_of(&self.owners, |o| o.id.as_str(), "owner")?;
        for owner in &self.owners {
            owner
                .check()
                .map_err(|e| e.at(item("owner", owner.id.as_str())))?;
        }
        let budgets = ids_of(&self.budgets, |b| b.id.as_str(), "budget")?;
        for budget in &self.budgets {
            budget
                .check()
                .map_err(|e| e.at(item("budget", budget.id.as_str())))?;
        }
        ids_of(&self.offers, |o| o.id.as_str(), "offer")?;
        for offer in &self.offers {
            let at = || item("offer", offer.id.as_str());
            offer.check().map_err(|e| e.at(at()))?;
            defined(&budgets, offer.budget.as_ref(), "budget").map_err(|e| e.at(at()))?;
        }
        for (i, rule) in self.contact_policy.iter().enumerate() {
            rule.check()
                .map_err(|e| e.at(format!("contact-policy rule #{i} ({rule})")))?;
        }
        let segments = ids_of(&self.segments, |s| s.id.as_str(), "segment")?;
        for segment in &self.segments {
            segment
                .check()
                .map_err(|e| e.at(item("segment", segment.id.as_str())))?;
        }
        let offers: HashSet<&str> = self.offers.iter().map(|o| o.id.as_str()).collect();
        defined(&offers, self.arbitration.fallback.as_ref(), "fallback")
            .map_err(|e| e.at("arbitration settings"))?;
        for (i, segment) in self.arbitration.propensity_segments.iter().enumerate() {
            defined(&segments, Some(segment), "segment").map_err(|e| {
                e.under(&format!("propensity_segments[{i}]"))
                    .at("arbitration settings")
            })?;
        }
        ids_of(&self.features, |f| f.id.as_str(), "feature")?;
        for feature in &self.features {
            feature
                .check()
                .map_err(|e| e.at(item("feature", feature.id.as_str())))?;
        }
        ids_of(&self.journeys, |j| j.id.as_str(), "journey")?;
        for journey in &self.journeys {
            journey
                .check()
                .map_err(|e| e.at(item("journey", journey.id.as_str())))?;
            defined(&owners, journey.owner.as_ref(), "owner")
                .map_err(|e| e.at(item("journey", journey.id.as_str())))?;
            for stage in &journey.stages {
                defined(&owners, stage.owner.as_ref(), "owner").map_err(|e| {
                    e.at(format!(
                        "stage {:?} of journey {:?}",
                        stage.id.as_str(),
                        journey.id.as_str()
                    ))
                })?;
            }
        }
        ids_of(&self.kpis, |k| k.id.as_str(), "kpi")?;
        for kpi in &self.kpis {
            let at = || item("kpi", kpi.id.as_str());
            kpi.check().map_err(|e| e.at(at()))?;
            defined(&owners, kpi.owner.as_ref(), "owner").map_err(|e| e.at(at()))?;
            defined(&segments, kpi.segment.as_ref(), "segment").map_err(|e| e.at(at()))?;
            if let Some(journey_id) = &kpi.journey {
                let journey = self
                    .journeys
                    .iter()
                    .find(|j| &j.id == journey_id)
                    .ok_or_else(|| unknown("journey", "journey", journey_id.as_str()).at(at()))?;
                let stage_refs = kpi
                    .stage
                    .iter()
                    .map(|s| ("stage", s))
                    .chain(kpi.measure.stage_refs());
                for (field, stage) in stage_refs {
                    if journey.stage(stage.as_str()).is_none() {
                        return Err(FieldError::new(
                            field,
                            format!(
                                "names stage {:?}, which journey {:?} does not have",
                                stage.as_str(),
                                journey_id.as_str()
                            ),
                        )
                        .at(at()));
                    }
                }
            }
        }
        ids_of(&self.triggers, |t| t.id.as_str(), "trigger")?;
        for trigger in &self.triggers {
            trigger
                .check()
                .map_err(|e| e.at(item("trigger", trigger.id.as_str())))?;
        }
        ids_of(&self.follow_ups, |f| f.id.as_str(), "follow-up rule")?;
        let journeys: HashSet<&str> = self.journeys.iter().map(|j| j.id.as_str()).collect();
        for rule in &self.follow_ups {
            let at = || item("follow-up rule", rule.id.as_str());
            rule.check().map_err(|e| e.at(at()))?;
            defined(&owners, rule.owner.as_ref(), "owner").map_err(|e| e.at(at()))?;
            defined(&journeys, rule.journey.as_ref(), "journey").map_err(|e| e.at(at()))?;
        }
        Ok(())
    }

    /// The segment with id `id`.
    pub fn segment(&self, id: &str) -> Option<&Segment> {
        self.segments.iter().find(|s| s.id.as_str() == id)
    }

    /// The offer with id `id`.
    pub fn offer(&self, id: &str) -> Option<&Offer> {
        self.offers.iter().find(|o| o.id.as_str() == id)
    }

    /// The owner with id `id`.
    pub fn owner(&self, id: &str) -> Option<&Owner> {
        self.owners.iter().find(|o| o.id.as_str() == id)
    }

    /// The KPI with id `id`.
    pub fn kpi(&self, id: &str) -> Option<&Kpi> {
        self.kpis.iter().find(|k| k.id.as_str() == id)
    }

    /// The journey with id `id`.
    pub fn journey(&self, id: &str) -> Option<&Journey> {
        self.journeys.iter().find(|j| j.id.as_str() == id)
    }
}

fn item(kind: &str, id: &str) -> String {
    format!("{kind} {id:?}")
}

fn unknown(field: &str, kind: &str, id: &str) -> FieldError {
    FieldError::new(
        field,
        format!("names {kind} {id:?}, which the catalogue does not define"),
    )
}

/// Checks that the reference in field `kind` (if any) names one of `ids`.
fn defined(
    ids: &HashSet<&str>,
    reference: Option<&impl AsRef<str>>,
    kind: &str,
) -> Result<(), FieldError> {
    match reference {
        Some(id) if !ids.contains(id.as_ref()) => Err(unknown(kind, kind, id.as_ref())),
        _ => Ok(()),
    }
}

/// The set of ids of `items`, or an error naming the first id defined twice.
fn ids_of<'a, T>(
    items: &'a [T],
    id: impl Fn(&'a T) -> &'a str,
    kind: &str,
) -> Result<HashSet<&'a str>> {
    let mut seen = HashSet::with_capacity(items.len());
    for (i, it) in items.iter().enumerate() {
        let id = id(it);
        check::id("id", id).map_err(|e| e.at(format!("{kind} #{i}")))?;
        if !seen.insert(id) {
            return Err(Error::validation(
                item(kind, id),
                "id",
                format!("is defined twice (the second time at #{i})"),
            ));
        }
    }
    Ok(seen)
}
