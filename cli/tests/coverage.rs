//! `vigil rules coverage`: the listing and the ATT&CK Navigator layer, from
//! the binary as a user runs it.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use serde_json::Value;
use vigil::detect::RuleSet;

fn vigil(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(args)
        .output()
        .expect("run vigil");
    assert!(
        out.status.success(),
        "vigil {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

fn layer_of(args: &[&str], dir: &Path) -> Value {
    let path = dir.join("layer.json");
    let mut all = vec!["rules", "coverage", "--navigator", path.to_str().unwrap()];
    all.extend_from_slice(args);
    vigil(&all);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).expect("the layer is JSON")
}

/// The tactic shortnames the ATT&CK Navigator knows (enterprise matrix).
const SHORTNAMES: [&str; 14] = [
    "reconnaissance",
    "resource-development",
    "initial-access",
    "execution",
    "persistence",
    "privilege-escalation",
    "defense-evasion",
    "credential-access",
    "discovery",
    "lateral-movement",
    "collection",
    "command-and-control",
    "exfiltration",
    "impact",
];

#[test]
fn the_layer_holds_every_technique_the_bundled_rules_cover() {
    let dir = tempdir();
    let layer = layer_of(&[], &dir);
    assert_eq!(layer["domain"], "enterprise-attack");
    assert_eq!(layer["versions"]["layer"], "4.5");
    let entries = layer["techniques"].as_array().expect("techniques");
    let mut ids = BTreeSet::new();
    for e in entries {
        let id = e["techniqueID"].as_str().expect("techniqueID");
        let ok_id = id.len() >= 5
            && id.starts_with('T')
            && id[1..5].chars().all(|c| c.is_ascii_digit())
            && (id.len() == 5 || (id.len() == 9 && &id[5..6] == "."));
        assert!(ok_id, "{id} is not an ATT&CK technique id");
        let tactic = e["tactic"].as_str().expect("tactic");
        assert!(SHORTNAMES.contains(&tactic), "{tactic}");
        assert!(e["score"].as_u64().unwrap() >= 1);
        ids.insert(id.to_string());
    }
    let expected: BTreeSet<String> = RuleSet::bundled()
        .unwrap()
        .rules()
        .iter()
        .map(|r| r.meta())
        .filter(|m| !m.tactics.is_empty())
        .flat_map(|m| m.techniques.iter().map(|t| t.id.clone()))
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(ids, expected);
    let max = entries.iter().filter_map(|e| e["score"].as_u64()).max();
    assert_eq!(layer["gradient"]["maxValue"].as_u64(), max);
}

#[test]
fn a_users_rule_is_in_the_listing_the_table_and_the_layer() {
    let dir = tempdir();
    let rules = dir.join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(
        rules.join("wipe.yml"),
        "title: Backups wiped | all\nid: 0c4d1c53-3b1e-4c55-9b8e-6f0d2c1a7e11\nstatus: test\n\
         tags: [attack.impact, attack.t1490]\nlogsource: {product: aws, service: cloudtrail}\n\
         detection:\n  sel: {eventName: DeleteRecoveryPoint}\n  condition: sel\nlevel: high\n",
    )
    .unwrap();
    let only = ["--no-bundled", "--rules-dir", rules.to_str().unwrap()];
    let layer = layer_of(&only, &dir);
    let entries = layer["techniques"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{layer}");
    assert_eq!(entries[0]["techniqueID"], "T1490");
    assert_eq!(entries[0]["tactic"], "impact");
    assert_eq!(entries[0]["comment"], "Backups wiped | all");

    let mut args = vec!["rules", "coverage"];
    args.extend_from_slice(&only);
    let text = vigil(&args);
    assert!(text.starts_with("1 rules cover 1 of 14 ATT&CK tactics and 1 techniques"));
    assert!(text.contains("T1490 Inhibit System Recovery"), "{text}");
    args.push("--markdown");
    let md = vigil(&args);
    assert!(
        md.contains("| Impact | T1490 | 1 | Backups wiped \\| all |"),
        "{md}"
    );
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "vigil-coverage-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The README's "What Vigil detects" table is `vigil rules coverage
/// --markdown` of the bundled rules as they are now.
#[test]
fn the_readme_table_is_the_coverage_of_the_bundled_rules() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    let start = "<!-- coverage:start -->\n";
    let end = "\n<!-- coverage:end -->";
    let from = readme.find(start).expect("coverage start marker") + start.len();
    let to = readme[from..].find(end).expect("coverage end marker") + from;
    let now = vigil(&["rules", "coverage", "--markdown"]);
    assert_eq!(
        readme[from..to].trim_end(),
        now.trim_end(),
        "README.md is stale: put the output of `vigil rules coverage --markdown` between the coverage markers"
    );
}
