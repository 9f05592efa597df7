//! Traceability: every rule of `RULES.md` is named by at least one test function
//! (`fn trf_2_...`), so an auditor can go from the procedure to its tests.

use std::path::Path;

use tousu_domain::rule::RuleId;

fn test_sources(dir: &Path, out: &mut String) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            test_sources(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push_str(&std::fs::read_to_string(&path).unwrap_or_default());
        }
    }
}

#[test]
fn every_rule_of_the_catalogue_is_named_by_a_test() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut sources = String::new();
    test_sources(&crate_dir.join("tests"), &mut sources);
    test_sources(&crate_dir.join("src"), &mut sources);
    let missing: Vec<&str> = RuleId::ALL
        .into_iter()
        .map(RuleId::as_str)
        .filter(|id| {
            let prefix = format!("fn {}_", id.to_lowercase().replace('-', "_"));
            !sources.contains(&prefix)
        })
        .collect();
    assert!(missing.is_empty(), "rules without a test named after them: {missing:?}");
}

#[test]
fn rule_ids_round_trip_through_text() {
    for rule in RuleId::ALL {
        assert_eq!(rule.as_str().parse::<RuleId>(), Ok(rule));
    }
    assert!("TRF-9".parse::<RuleId>().is_err());
}
