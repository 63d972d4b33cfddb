use super::*;
use crate::model::{Attributes, Name, Value, ValueType};
use crate::{Error, Position};
use chrono::{TimeZone, Utc};
use std::sync::Arc;

const ALL: &[Namespace] = &[
    Namespace::Customer,
    Namespace::Context,
    Namespace::Offer,
    Namespace::Feature,
];

fn vocabulary() -> Arc<Vocabulary> {
    let mut v = Vocabulary::default();
    for (name, ty) in [
        ("plan", ValueType::String),
        ("data_cap_gb", ValueType::Number),
        ("tenure_months", ValueType::Number),
        ("frequent_traveller", ValueType::Bool),
        ("signed_up_at", ValueType::Timestamp),
        ("tags", ValueType::List),
        ("name", ValueType::String),
    ] {
        v.customer.add(Name::new(name), ty).unwrap();
    }
    v.context
        .add(Name::new("channel"), ValueType::String)
        .unwrap();
    v.offer.add(Name::new("price"), ValueType::Number).unwrap();
    v.features
        .add(Name::new("data_used_gb"), ValueType::Number)
        .unwrap();
    v.touchpoint
        .add(Name::new("kind"), ValueType::String)
        .unwrap();
    Arc::new(v)
}

fn customer() -> Attributes {
    Attributes::new()
        .with("plan", "S")
        .with("data_cap_gb", 10.0)
        .with("tenure_months", 7)
        .with("frequent_traveller", true)
        .with(
            "signed_up_at",
            Utc.with_ymd_and_hms(2026, 1, 10, 0, 0, 0).unwrap(),
        )
        .with("tags", vec!["vip", "student"])
        .with("name", "Ann")
}

/// Compiles and evaluates `rule` for the customer above, with 9.1 GB used and price 15.
fn check(rule: &str) -> Verdict {
    let v = vocabulary();
    let compiled = compile_rule(rule, &v, ALL, "offer \"o\" eligibility").unwrap();
    eval_with(&compiled, &v, &customer())
}

fn eval_with(rule: &CompiledRule, v: &Vocabulary, attrs: &Attributes) -> Verdict {
    let mut customer = Vec::new();
    v.customer.resolve(attrs, &mut customer);
    let context = [Some(Scalar::Str("sms"))];
    let offer = [Some(Value::Number(15.0))];
    let features = [Some(Scalar::Num(9.1))];
    let env = Env {
        customer: &customer,
        context: &context,
        offer: &offer,
        features: &features,
        ..Env::empty(Utc.with_ymd_and_hms(2026, 11, 22, 0, 0, 0).unwrap())
    };
    rule.eval(&env)
}

fn compile_error(rule: &str, allowed: &[Namespace]) -> (Position, String) {
    match compile_rule(rule, &vocabulary(), allowed, "offer \"o\" eligibility") {
        Err(Error::InvalidRule {
            item,
            position,
            message,
        }) => {
            assert_eq!(item, "offer \"o\" eligibility");
            (position, message)
        }
        other => panic!("expected a rule error for {rule:?}, got {other:?}"),
    }
}

#[test]
fn comparisons_logic_and_arithmetic() {
    assert!(check(r#"customer.plan == "S" && customer.tenure_months >= 3"#).holds());
    assert!(check("features.data_used_gb / customer.data_cap_gb > 0.8").holds());
    assert!(!check("features.data_used_gb / customer.data_cap_gb > 0.95").holds());
    assert!(check(r#"customer.plan != "S" || context.channel == "sms""#).holds());
    assert!(check("!(customer.tenure_months < 3)").holds());
    assert!(check("customer.tenure_months % 2 == 1 && -customer.tenure_months == -7").holds());
    assert!(check("customer.frequent_traveller").holds());
    assert!(check("customer.frequent_traveller == true").holds());
    assert!(check("(customer.tenure_months > 6 ? offer.price : 0) == 15").holds());
    assert!(check("int(customer.tenure_months) == 7 && double(2) * 3.5 == 7.0").holds());
}

#[test]
fn lists_strings_presence_and_time() {
    assert!(check(r#"customer.plan in ["S", "M"]"#).holds());
    assert!(!check(r#"customer.plan in ["L", "XL"]"#).holds());
    assert!(check(r#""vip" in customer.tags && size(customer.tags) == 2"#).holds());
    assert!(check("customer.tenure_months in [1, 7, 12]").holds());
    assert!(check(r#"customer.plan.startsWith("S") && customer.name.contains("n")"#).holds());
    assert!(check(r#"customer.name.endsWith("nn") && size(customer.name) == 3"#).holds());
    assert!(check("has(customer.plan) && !has(features.data_used_gb) == false").holds());
    assert!(check(r#"customer.signed_up_at < timestamp("2026-02-01T00:00:00Z")"#).holds());
    assert!(check(r#"now - customer.signed_up_at > duration("30d")"#).holds());
    assert!(check(r#"customer.signed_up_at + duration("365d") > now"#).holds());
    assert!(check(r#"now - duration("1h") < now"#).holds());
}

#[test]
fn the_false_clause_is_named_with_its_values() {
    let v = vocabulary();
    let rule = compile_rule(
        r#"customer.plan in ["S", "M"] && customer.tenure_months >= 12 && offer.price < 20"#,
        &v,
        ALL,
        "x",
    )
    .unwrap();
    assert_eq!(rule.clause_count(), 3);
    let verdict = eval_with(&rule, &v, &customer());
    assert_eq!(verdict, Verdict::False { clause: 1 });
    let attrs = customer();
    let mut slots = Vec::new();
    v.customer.resolve(&attrs, &mut slots);
    let env = Env {
        customer: &slots,
        ..Env::empty(Utc::now())
    };
    assert_eq!(
        rule.explain(verdict, &env, |_| false),
        "`customer.tenure_months >= 12` is false (customer.tenure_months = 7)"
    );
}

#[test]
fn missing_values_make_the_rule_false_and_are_named() {
    let v = vocabulary();
    let rule = compile_rule(
        "customer.data_cap_gb > 5 && customer.tenure_months > 1",
        &v,
        ALL,
        "x",
    )
    .unwrap();
    let attrs = Attributes::new().with("tenure_months", 3);
    let verdict = eval_with(&rule, &v, &attrs);
    assert!(!verdict.holds());
    let Verdict::Undecided {
        clause: 0,
        fault: Fault::Missing(slot),
    } = verdict
    else {
        panic!("expected a missing value, got {verdict:?}");
    };
    assert_eq!(v.slot_name(slot), "customer.data_cap_gb");
    // A false clause decides `&&` even when another value is missing (CEL's commutative logic).
    let rule = compile_rule(
        "customer.data_cap_gb > 5 && customer.tenure_months > 10",
        &v,
        ALL,
        "x",
    )
    .unwrap();
    assert_eq!(eval_with(&rule, &v, &attrs), Verdict::False { clause: 1 });
    // `||` is true if any term is true.
    let rule = compile_rule(
        "customer.data_cap_gb > 5 || customer.tenure_months > 1",
        &v,
        ALL,
        "x",
    )
    .unwrap();
    assert!(eval_with(&rule, &v, &attrs).holds());
    // A value of the wrong type counts as missing.
    let attrs = Attributes::new()
        .with("data_cap_gb", "ten")
        .with("tenure_months", 3);
    let rule = compile_rule("customer.data_cap_gb > 5", &v, ALL, "x").unwrap();
    assert!(matches!(
        eval_with(&rule, &v, &attrs),
        Verdict::Undecided { .. }
    ));
}

#[test]
fn division_by_zero_is_a_false_rule_not_a_panic() {
    let verdict = check("customer.tenure_months / (customer.tenure_months - 7) > 1");
    assert_eq!(
        verdict,
        Verdict::Undecided {
            clause: 0,
            fault: Fault::DivisionByZero
        }
    );
}

#[test]
fn redacted_values_are_not_printed() {
    let v = vocabulary();
    let rule = compile_rule(r#"customer.name == "Bob""#, &v, ALL, "x").unwrap();
    let attrs = customer();
    let mut slots = Vec::new();
    v.customer.resolve(&attrs, &mut slots);
    let env = Env {
        customer: &slots,
        ..Env::empty(Utc::now())
    };
    let verdict = rule.eval(&env);
    let text = rule.explain(verdict, &env, |s| v.slot_name(s) == "customer.name");
    assert_eq!(
        text,
        r#"`customer.name == "Bob"` is false (customer.name = <redacted>)"#
    );
    assert!(!text.contains("Ann"));
}

#[test]
fn unknown_names_are_errors_with_positions() {
    let (pos, msg) = compile_error("customer.plan == \"S\" &&\n  customer.planz == \"M\"", ALL);
    assert_eq!((pos.line, pos.column), (2, 3));
    let (pos, _) = compile_error("customer.planz == \"M\"", ALL);
    assert_eq!((pos.line, pos.column), (1, 1));
    assert!(msg.contains("unknown name `customer.planz`"), "{msg}");
    assert!(msg.contains("plan"), "{msg}");
    let (_, msg) = compile_error("features.nope > 1", ALL);
    assert!(msg.contains("features.nope"), "{msg}");
    let (_, msg) = compile_error("plan == \"S\"", ALL);
    assert!(msg.contains("unknown name `plan`"), "{msg}");
    let (_, msg) = compile_error("customer > 1", ALL);
    assert!(msg.contains("namespace"), "{msg}");
    let (_, msg) = compile_error("touchpoint.kind == \"x\"", ALL);
    assert!(msg.contains("not available here"), "{msg}");
}

#[test]
fn type_mismatches_are_errors() {
    let (pos, msg) = compile_error("customer.plan > 3", ALL);
    assert!(
        msg.contains("cannot compare a string with a number"),
        "{msg}"
    );
    assert_eq!((pos.line, pos.column), (1, 15));
    let (_, msg) = compile_error("customer.tenure_months && true", ALL);
    assert!(msg.contains("needs a bool"), "{msg}");
    let (_, msg) = compile_error("customer.tenure_months + 1", ALL);
    assert!(msg.contains("must be true or false"), "{msg}");
    let (_, msg) = compile_error("customer.plan.startsWith(1)", ALL);
    assert!(msg.contains("needs a string"), "{msg}");
    let (_, msg) = compile_error("customer.frequent_traveller < true", ALL);
    assert!(msg.contains("cannot compare"), "{msg}");
    let (_, msg) = compile_error("customer.plan in [1, 2]", ALL);
    assert!(msg.contains("cannot look for"), "{msg}");
}

#[test]
fn unsupported_constructs_and_syntax_errors_are_errors() {
    let (_, msg) = compile_error("customer.tags.exists(t, t == \"vip\")", ALL);
    assert!(msg.contains("not supported"), "{msg}");
    let (_, msg) = compile_error("customer.plan.matches(\"S.*\")", ALL);
    assert!(msg.contains("unsupported function"), "{msg}");
    let (_, msg) = compile_error("customer.tags[0] == \"vip\"", ALL);
    assert!(msg.contains("indexing"), "{msg}");
    let (_, msg) = compile_error("{\"a\": 1}.size() > 0", ALL);
    assert!(msg.contains("not supported"), "{msg}");
    let (_, msg) = compile_error("timestamp(\"yesterday\") < now", ALL);
    assert!(msg.contains("RFC 3339"), "{msg}");
    let (_, msg) = compile_error("duration(\"soon\") > duration(\"1h\")", ALL);
    assert!(msg.contains("duration"), "{msg}");
    let (pos, _) = compile_error("customer.plan == ", ALL);
    assert_eq!(pos.line, 1);
    let (_, msg) = compile_error("customer.plan == null", ALL);
    assert!(msg.contains("null"), "{msg}");
}

#[test]
fn clauses_print_back_as_cel() {
    let v = vocabulary();
    let rule = compile_rule(
        r#"(customer.plan == "S" && customer.tenure_months >= 3) && ("vip" in customer.tags || offer.price < 9.5)"#,
        &v,
        ALL,
        "x",
    )
    .unwrap();
    assert_eq!(rule.clause_count(), 3);
    assert_eq!(rule.clause_text(0), r#"customer.plan == "S""#);
    assert_eq!(
        rule.clause_text(2),
        r#""vip" in customer.tags || offer.price < 9.5"#
    );
    let slots: Vec<String> = rule
        .clause_slots(2)
        .iter()
        .map(|s| v.slot_name(*s))
        .collect();
    assert_eq!(slots, ["customer.tags", "offer.price"]);
}

#[test]
fn resolve_fills_slots_in_table_order() {
    let v = vocabulary();
    let mut out = vec![Some(Scalar::Bool(true)); 20];
    let attrs = Attributes::new().with("plan", "M").with("name", 3);
    v.customer.resolve(&attrs, &mut out);
    assert_eq!(out.len(), v.customer.len());
    assert_eq!(out[0], Some(Scalar::Str("M")));
    assert_eq!(out[1], None);
    assert_eq!(
        out[6], None,
        "a number where the schema says string is missing"
    );
    let _ = Value::Bool(true);
}

/// Rules made of clauses from one pool, as a catalogue's offers are: clause `i` of the pool
/// is shared by every rule that uses it, except those reading `offer.*`.
const POOL: &[&str] = &[
    r#"customer.plan in ["S", "M"]"#,
    "customer.tenure_months >= 6",
    "customer.tenure_months >= 12",
    "features.data_used_gb / customer.data_cap_gb > 0.8",
    r#"context.channel == "sms""#,
    "customer.frequent_traveller",
    r#"now - customer.signed_up_at > duration("30d")"#,
    r#""vip" in customer.tags"#,
    "customer.data_cap_gb / (customer.tenure_months - 7) > 1.0",
    "offer.price < customer.data_cap_gb * 2.0",
    r#"customer.name.startsWith("A") || customer.plan == "L""#,
    "3 < customer.tenure_months",
    r#""S" == customer.plan"#,
    r#"customer.plan != "M""#,
    r#"customer.signed_up_at < timestamp("2026-02-01T00:00:00Z")"#,
    r#"timestamp("2026-02-01T00:00:00Z") >= customer.signed_up_at"#,
    r#"duration("30d") < now - customer.signed_up_at"#,
    "customer.tenure_months / 0 > 1.0",
    r#"customer.plan in ["M", "L", "XL"]"#,
    r#"customer.plan < "M""#,
    r#""M" <= customer.plan"#,
    r#"customer.plan == "XL""#,
    "customer.tenure_months != 12",
    "12.0 >= customer.tenure_months",
];

fn pooled_rule(picks: &[usize]) -> String {
    picks
        .iter()
        .map(|&i| format!("({})", POOL[i % POOL.len()]))
        .collect::<Vec<_>>()
        .join(" && ")
}

fn env_for<'a>(
    customer: &'a [Option<Scalar<'a>>],
    features: &'a [Option<Scalar<'a>>],
    offer: &'a [Option<Value>],
) -> Env<'a> {
    const SMS: [Option<Scalar<'static>>; 1] = [Some(Scalar::Str("sms"))];
    Env {
        customer,
        context: &SMS,
        offer,
        features,
        ..Env::empty(Utc.with_ymd_and_hms(2026, 11, 22, 0, 0, 0).unwrap())
    }
}

/// Shares the clauses of `rules` and evaluates them all through one plan, as a decision does.
fn shared_results(
    v: &Vocabulary,
    rules: &mut [CompiledRule],
    env: &Env<'_>,
) -> (usize, ClauseResults) {
    let mut interner = ClauseInterner::new(v, &[Namespace::Offer, Namespace::Touchpoint]);
    for rule in rules.iter_mut() {
        interner.share_for_offer(rule, env.offer);
    }
    let plan = interner.plan(rules.iter().flat_map(|r| r.shared_ids().to_vec()));
    let mut results = ClauseResults::new(interner.count());
    plan.eval(env, &mut results);
    (interner.count(), results)
}

#[test]
fn shared_clauses_get_one_id_and_offer_clauses_none() {
    let v = vocabulary();
    let mut rules: Vec<CompiledRule> = [&[0, 1][..], &[1, 9, 0], &[2, 1], &[7, 6, 5, 4, 3]]
        .iter()
        .map(|picks| compile_rule(&pooled_rule(picks), &v, ALL, "offer \"o\" eligibility").unwrap())
        .collect();
    let attrs = customer();
    let mut slots = Vec::new();
    v.customer.resolve(&attrs, &mut slots);
    let features = [Some(Scalar::Num(9.1))];
    let offer = [Some(Value::Number(15.0))];
    let env = env_for(&slots, &features, &offer);
    let (count, shared) = shared_results(&v, &mut rules, &env);
    // Distinct clauses: pool 0 to 7, and pool 9 with the offer's price written in.
    assert_eq!(count, 9);
    assert_ne!(rules[1].shared_ids()[1], super::shared::UNSHARED);
    assert_eq!(rules[0].shared_ids()[1], rules[1].shared_ids()[0]);
    assert!(rules[0].eval_shared(&env, &shared).holds());
    // Rule 2 starts with pool 2 (tenure >= 12, false for this customer).
    assert_eq!(
        rules[2].eval_shared(&env, &shared),
        Verdict::False { clause: 0 }
    );
    for rule in &rules {
        assert_eq!(
            rule.eval_shared(&env, &shared),
            rule.eval(&env),
            "{}",
            rule.text()
        );
    }
    // An offer without the price: the clause reading it is evaluated per offer.
    let env = env_for(&slots, &features, &[None]);
    let (count, _) = shared_results(&v, &mut rules, &env);
    assert_eq!(count, 8);
    assert_eq!(rules[1].shared_ids()[1], super::shared::UNSHARED);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 200, ..Default::default() })]

    /// Evaluating through a decision's shared-clause results gives exactly the verdict (the
    /// same false or undecided clause) plain evaluation gives, whatever values are missing.
    #[test]
    fn shared_evaluation_gives_the_plain_verdict(
        rules in proptest::collection::vec(proptest::collection::vec(0..POOL.len(), 1..5), 1..12),
        tenure in proptest::option::of(0..24i64),
        plan in proptest::option::of(proptest::sample::select(vec!["S", "M", "L"])),
        used in proptest::option::of(0.0..20.0f64),
        price in proptest::option::of(0.0..40.0f64),
    ) {
        let v = vocabulary();
        let mut compiled: Vec<CompiledRule> = rules
            .iter()
            .map(|picks| compile_rule(&pooled_rule(picks), &v, ALL, "offer \"o\" eligibility").unwrap())
            .collect();
        let mut attrs = customer();
        match tenure {
            Some(t) => { attrs.insert("tenure_months", t); }
            None => { attrs.remove("tenure_months"); }
        }
        match plan {
            Some(p) => { attrs.insert("plan", p); }
            None => { attrs.remove("plan"); }
        }
        let mut slots = Vec::new();
        v.customer.resolve(&attrs, &mut slots);
        let features = [used.map(Scalar::Num)];
        let offer = [price.map(Value::Number)];
        let env = env_for(&slots, &features, &offer);
        let (_, shared) = shared_results(&v, &mut compiled, &env);
        for rule in &compiled {
            proptest::prop_assert_eq!(rule.eval_shared(&env, &shared), rule.eval(&env), "{}", rule.text());
        }
    }
}

proptest::proptest! {
    /// One set of hints carried across attribute sets that drop names, add others (which
    /// shifts every position after them) and change types: the same values as the plain
    /// lookup every time.
    #[test]
    fn hinted_resolution_matches_the_plain_lookup(
        sets in proptest::collection::vec(
            proptest::collection::vec((0..10usize, 0..3u8), 0..12),
            1..8,
        ),
    ) {
        let v = vocabulary();
        // The customer slots' names, two unknown ones sorting before and among them.
        let names = [
            "plan", "data_cap_gb", "tenure_months", "frequent_traveller", "signed_up_at", "tags",
            "name", "aaa", "n", "zzz",
        ];
        let mut hints = SlotHints::default();
        for set in &sets {
            let attrs: Attributes = set
                .iter()
                .map(|&(name, ty)| {
                    let value = match ty {
                        0 => Value::from("x"),
                        1 => Value::from(name as f64),
                        _ => Value::from(vec![1.0, 2.0]),
                    };
                    (names[name], value)
                })
                .collect();
            let (mut plain, mut hinted) = (Vec::new(), Vec::new());
            v.customer.resolve(&attrs, &mut plain);
            v.customer.resolve_hinted(&attrs, &mut hints, &mut hinted);
            proptest::prop_assert_eq!(&hinted, &plain);
        }
    }
}
