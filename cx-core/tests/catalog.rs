//! Loading catalogues: the example file loads, and every kind of invalid definition is rejected
//! with an error that names the item and the field.

use cx_core::Error;
use cx_core::model::{Catalog, Format, Measure, Span};
use std::path::PathBuf;

fn example_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/catalog/telecom.yaml")
}

fn example_yaml() -> String {
    std::fs::read_to_string(example_path()).expect("the example catalogue is readable")
}

/// The YAML of the example catalogue with `from` replaced by `to` (once, and it must be there).
fn edited(from: &str, to: &str) -> String {
    let yaml = example_yaml();
    assert!(
        yaml.contains(from),
        "the example catalogue no longer contains {from:?}"
    );
    yaml.replacen(from, to, 1)
}

fn validation_error(yaml: &str) -> (String, String, String) {
    match Catalog::from_yaml(yaml) {
        Err(Error::Validation {
            item,
            field,
            reason,
        }) => (item, field, reason),
        other => panic!("expected a validation error, got {other:?}"),
    }
}

#[test]
fn the_example_catalogue_loads_from_its_file() {
    let catalog = Catalog::from_path(example_path()).expect("valid");
    assert_eq!(catalog.owners.len(), 6);
    assert_eq!(catalog.offers.len(), 5);
    assert_eq!(catalog.journeys[0].stages.len(), 4);
    assert_eq!(catalog.journeys[1].stages.len(), 3);
    assert_eq!(catalog.kpis.len(), 14);
    assert_eq!((catalog.triggers.len(), catalog.follow_ups.len()), (2, 2));
    let nps = catalog.kpi("onboarding-nps").expect("defined");
    assert_eq!(nps.window, Span::days(30));
    assert!(matches!(nps.measure, Measure::Nps { .. }));
    assert_eq!(
        catalog
            .offer("billing-reminder")
            .map(|o| o.consent_purpose.as_str()),
        Some("service")
    );
    assert_eq!(catalog.offer("data-boost-5gb").map(|o| o.lever), Some(1.0));
}

#[test]
fn every_rule_of_the_example_catalogue_compiles() {
    let catalog = Catalog::from_path(example_path()).expect("valid");
    let compiled =
        cx_core::arbitration::CompiledCatalog::compile(catalog, 1).expect("rules compile");
    assert_eq!(compiled.offer_ids().len(), 5);
    assert_eq!(compiled.contact_lookback(), Span::days(44));
    assert_eq!(compiled.touchpoint_lookback(), Span::days(90));
}

#[test]
fn yaml_json_and_toml_carry_the_same_catalogue() {
    let catalog = Catalog::from_yaml(&example_yaml()).expect("valid");
    let json = serde_json::to_string_pretty(&catalog).expect("serialises");
    assert_eq!(Catalog::from_json(&json).expect("valid json"), catalog);
    let yaml = catalog.to_yaml().expect("serialises");
    assert_eq!(Catalog::from_yaml(&yaml).expect("valid yaml"), catalog);
    let toml = toml::to_string(&catalog).expect("serialises");
    assert_eq!(
        Catalog::parse(&toml, Format::Toml, "t.toml").expect("valid toml"),
        catalog
    );
}

#[test]
fn a_kpi_without_an_owner_is_rejected_by_name() {
    let (item, field, reason) = validation_error(&edited("    owner: cx-office\n", ""));
    assert_eq!(item, "kpi \"onboarding-nps\"");
    assert_eq!(field, "owner");
    assert!(reason.contains("accountable owner"), "{reason}");
}

#[test]
fn a_stage_without_an_owner_is_rejected_by_name() {
    let (item, field, _) = validation_error(&edited(
        "name: SIM activation, owner: onboarding,",
        "name: SIM activation,",
    ));
    assert_eq!(item, "journey \"onboarding\"");
    assert_eq!(field, "stages[1].owner");
}

#[test]
fn references_to_undefined_owners_budgets_segments_and_stages_are_rejected() {
    let (item, field, reason) = validation_error(&edited("owner: care\n", "owner: carr\n"));
    assert_eq!(
        (item.as_str(), field.as_str()),
        ("kpi \"care-csat\"", "owner")
    );
    assert!(reason.contains("\"carr\""), "{reason}");

    let (item, field, _) = validation_error(&edited("budget: upgrade-daily", "budget: nope"));
    assert_eq!(
        (item.as_str(), field.as_str()),
        ("offer \"upgrade-plan-l\"", "budget")
    );

    let (item, field, _) = validation_error(&edited("segment: new_customers", "segment: old"));
    assert_eq!(
        (item.as_str(), field.as_str()),
        ("kpi \"onboarding-nps\"", "segment")
    );

    let (item, field, _) = validation_error(&edited("to: activation }", "to: activated }"));
    assert_eq!(
        (item.as_str(), field.as_str()),
        ("kpi \"activation-conversion\"", "measure.to")
    );

    let (item, field, _) = validation_error(&edited(
        "{ id: first-bill, name: First bill, owner: billing",
        "{ id: first-bill, name: First bill, owner: finance",
    ));
    assert_eq!(item, "stage \"first-bill\" of journey \"onboarding\"");
    assert_eq!(field, "owner");
}

#[test]
fn nan_and_infinite_numbers_are_rejected() {
    let (item, field, reason) = validation_error(&edited("value: 6.0", "value: .nan"));
    assert_eq!(
        (item.as_str(), field.as_str()),
        ("offer \"data-boost-5gb\"", "value")
    );
    assert!(reason.contains("finite"), "{reason}");

    let (item, field, _) = validation_error(&edited("lever: 1.2", "lever: .inf"));
    assert_eq!(
        (item.as_str(), field.as_str()),
        ("offer \"upgrade-plan-l\"", "lever")
    );

    let (item, field, _) = validation_error(&edited("price: 8.0", "price: -.inf"));
    assert_eq!(
        (item.as_str(), field.as_str()),
        ("offer \"data-boost-5gb\"", "attributes.price")
    );

    let (item, field, _) = validation_error(&edited("{ value: 30,", "{ value: .nan,"));
    assert_eq!(
        (item.as_str(), field.as_str()),
        ("kpi \"onboarding-nps\"", "target.value")
    );
}

#[test]
fn duplicate_ids_are_rejected() {
    let (item, field, reason) =
        validation_error(&edited("id: loyalty-discount", "id: upgrade-plan-l"));
    assert_eq!(
        (item.as_str(), field.as_str()),
        ("offer \"upgrade-plan-l\"", "id")
    );
    assert!(reason.contains("twice"), "{reason}");
}

#[test]
fn nonsense_definitions_are_rejected() {
    let (item, field, _) = validation_error(&edited("window: 10m", "window: 0s"));
    assert_eq!(
        (item.as_str(), field.as_str()),
        ("feature \"product_page_views_10m\"", "window")
    );

    let (item, field, _) = validation_error(&edited(
        "aggregate: sum, attribute: data_gb,",
        "aggregate: sum,",
    ));
    assert_eq!(
        (item.as_str(), field.as_str()),
        ("feature \"data_used_gb_cycle\"", "attribute")
    );

    let (item, field, _) = validation_error(&edited(
        "channels: [sms, app]\n    eligibility: features",
        "channels: []\n    eligibility: features",
    ));
    assert_eq!(
        (item.as_str(), field.as_str()),
        ("offer \"data-boost-5gb\"", "channels")
    );

    let (item, _, _) = validation_error(&edited(
        "valid_until: 2027-06-01T00:00:00Z",
        "valid_until: 2026-01-01T00:00:00Z",
    ));
    assert_eq!(item, "offer \"roaming-pack\"");

    let (item, field, _) = validation_error(&edited(
        "eligibility: customer.frequent_traveller",
        "eligibility: \"  \"",
    ));
    assert_eq!(
        (item.as_str(), field.as_str()),
        ("offer \"roaming-pack\"", "eligibility")
    );

    let (_, field, _) = validation_error(&edited(
        "{ rule: suppress, id: cool-off-after-two-noes, scope: all, after: 2,",
        "{ rule: suppress, id: cool-off-after-two-noes, scope: all, after: 0,",
    ));
    assert_eq!(field, "after");

    let (item, field, _) = validation_error(&edited(
        "{ type: csat, question: csat_support }",
        "{ type: csat, question: csat_support, top_box: 5 }",
    ));
    assert_eq!(
        (item.as_str(), field.as_str()),
        ("kpi \"care-csat\"", "measure.top_box")
    );
}

#[test]
fn unknown_fields_and_wrong_types_are_parse_errors_with_a_path() {
    match Catalog::from_yaml(&edited("    lever: 1.2", "    levr: 1.2")) {
        Err(Error::Parse {
            path,
            message,
            format,
            ..
        }) => {
            assert_eq!(format, "yaml");
            assert_eq!(path, "offers[1].levr");
            assert!(message.contains("levr"), "{message}");
        }
        other => panic!("expected a parse error, got {other:?}"),
    }
    match Catalog::from_yaml(&edited("limit: 5000", "limit: lots")) {
        Err(Error::Parse { path, .. }) => assert_eq!(path, "budgets[0].limit"),
        other => panic!("expected a parse error, got {other:?}"),
    }
    match Catalog::from_yaml(&edited(
        "window: 7d\n  - id: follow-up-sla",
        "window: soon\n  - id: follow-up-sla",
    )) {
        Err(Error::Parse { path, message, .. }) => {
            assert_eq!(path, "kpis[3].window");
            assert!(message.contains("soon"), "{message}");
        }
        other => panic!("expected a parse error, got {other:?}"),
    }
}

#[test]
fn files_with_unknown_extensions_or_missing_files_get_clear_errors() {
    assert!(matches!(
        Catalog::from_path("catalog.ini"),
        Err(Error::Validation { field, .. }) if field == "extension"
    ));
    assert!(matches!(
        Catalog::from_path("/nonexistent/catalog.yaml"),
        Err(Error::Io { path, .. }) if path.contains("nonexistent")
    ));
}

#[test]
fn error_messages_read_well() {
    let err = Catalog::from_yaml(&edited("    owner: cx-office\n", "")).expect_err("invalid");
    assert_eq!(
        err.to_string(),
        "invalid kpi \"onboarding-nps\": `owner` is missing: every KPI has an accountable owner"
    );
}
