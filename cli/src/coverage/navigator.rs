//! The coverage as a MITRE ATT&CK Navigator layer (layer format 4.5): load it
//! at mitre-attack.github.io/attack-navigator ("Open Existing Layer") to see
//! which techniques the rules cover, coloured by how many rules do.

use serde_json::{json, Value};

use super::Coverage;
use vigil::model::Tactic;

/// The Navigator's tactic shortname: `Command and Control` -> `command-and-control`.
pub(crate) fn shortname(tactic: Tactic) -> String {
    tactic.name().to_ascii_lowercase().replace(' ', "-")
}

/// One technique entry per (technique, tactic) the rules cover; the score is
/// the number of rules, the comment their titles.
pub(crate) fn layer(coverage: &Coverage, name: &str) -> Value {
    let mut techniques = Vec::new();
    let mut max_score = 1;
    for t in &coverage.tactics {
        for (id, rules) in &t.techniques {
            let Some(id) = id else { continue };
            max_score = max_score.max(rules.len());
            let titles: Vec<&str> = rules.iter().map(|r| r.title.as_str()).collect();
            techniques.push(json!({
                "techniqueID": id,
                "tactic": shortname(t.tactic),
                "score": rules.len(),
                "comment": titles.join("; "),
                "enabled": true,
                "showSubtechniques": id.contains('.'),
            }));
        }
    }
    json!({
        "name": name,
        "versions": {"layer": "4.5", "navigator": "5.1.0", "attack": "16"},
        "domain": "enterprise-attack",
        "description": format!(
            "Vigil detection coverage: {} rules, {} techniques",
            coverage.rule_count,
            coverage.technique_count()
        ),
        "filters": {"platforms": ["IaaS", "Identity Provider", "SaaS"]},
        "sorting": 3,
        "layout": {"layout": "side", "showName": true, "showID": true},
        "hideDisabled": false,
        "techniques": techniques,
        "gradient": {
            "colors": ["#d6eaf8", "#1f618d"],
            "minValue": 1,
            "maxValue": max_score,
        },
        "legendItems": [
            {"label": "covered by one rule", "color": "#d6eaf8"},
            {"label": format!("covered by {max_score} rules"), "color": "#1f618d"},
        ],
        "showTacticRowBackground": false,
        "selectTechniquesAcrossTactics": true,
        "selectSubtechniquesWithParent": false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortnames_are_the_navigators() {
        assert_eq!(shortname(Tactic::CommandAndControl), "command-and-control");
        assert_eq!(shortname(Tactic::DefenseEvasion), "defense-evasion");
        assert_eq!(shortname(Tactic::InitialAccess), "initial-access");
    }
}
