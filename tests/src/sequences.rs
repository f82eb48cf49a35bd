//! The test sequences of the bundled correlations (`vigil_tests:
//! sequences:` in rules/correlations/*.yml), read for end-to-end tests that
//! send them through the real functions and `vigil replay`.
//!
//! Each event is written on one line as a JSON flow mapping (`- {...}`), so
//! the events are read line by line without a YAML parser.

use std::path::PathBuf;

use serde_json::Value;

/// One sequence: whether it must fire, and its events in order.
#[derive(Debug, Clone)]
pub struct Sequence {
    pub fires: bool,
    pub events: Vec<Value>,
}

/// The bundled correlation file `rules/correlations/<name>.yml`.
pub fn correlation_file(name: &str) -> PathBuf {
    crate::project_root()
        .join("rules")
        .join("correlations")
        .join(format!("{name}.yml"))
}

/// The sequences of the file `name`, in file order.
pub fn sequences(name: &str) -> Vec<Sequence> {
    let text = std::fs::read_to_string(correlation_file(name)).expect("correlation file");
    let Some((_, tests)) = text.split_once("    sequences:") else {
        return Vec::new();
    };
    let mut out: Vec<Sequence> = Vec::new();
    for line in tests.lines().map(str::trim) {
        if let Some(fires) = line.strip_prefix("- fires:") {
            out.push(Sequence {
                fires: fires.trim() == "true",
                events: Vec::new(),
            });
        } else if let (Some(event), Some(seq)) = (line.strip_prefix("- {"), out.last_mut()) {
            let json: Value = serde_json::from_str(&format!("{{{event}")).expect("event JSON");
            seq.events.push(json);
        }
    }
    out
}

/// The first sequence that fires and the first that must not.
pub fn firing_and_near_miss(name: &str) -> (Sequence, Sequence) {
    let all = sequences(name);
    let pick = |fires: bool| {
        all.iter()
            .find(|s| s.fires == fires)
            .cloned()
            .unwrap_or_else(|| panic!("{name}: no sequence with fires: {fires}"))
    };
    (pick(true), pick(false))
}
