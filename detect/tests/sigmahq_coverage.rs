//! `docs/sigmahq-coverage.md` says, for every public SigmaHQ AWS CloudTrail
//! rule in `../shared/events/sigma/`, what covers its behaviour (issue #14).
//! A SigmaHQ file the list forgets, or a bundled rule it names that does not
//! exist, fails here. Without the samples folder (a fresh clone) only the
//! list's own references are checked.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

#[path = "../../tests/src/samples.rs"]
mod samples;
use samples::{project_root, shared_events};

/// The SigmaHQ folders the list covers.
const FOLDERS: &[&str] = &[
    "aws_cloudtrail",
    "aws_cloudtrail_placeholder",
    "aws_unsupported",
];

fn coverage_doc() -> String {
    let path = project_root().join("docs").join("sigmahq-coverage.md");
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The rows of the doc's tables: (SigmaHQ file, covered-by cell).
fn rows(doc: &str) -> Vec<(String, String)> {
    doc.lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.trim().strip_prefix('|')?.split('|').collect();
            let file = cells.first()?.trim().trim_matches('`');
            file.ends_with(".yml").then(|| {
                (
                    file.to_string(),
                    cells.get(1).unwrap_or(&"").trim().to_string(),
                )
            })
        })
        .collect()
}

/// The `rules/....yml` paths a cell names.
fn named_rules(cell: &str) -> Vec<&str> {
    cell.split('`')
        .filter(|s| s.starts_with("rules/") && s.ends_with(".yml"))
        .collect()
}

#[test]
fn every_row_says_what_covers_it_and_named_rules_exist() {
    let doc = coverage_doc();
    let rows = rows(&doc);
    assert!(rows.len() >= 60, "only {} rows", rows.len());
    let root = project_root();
    let mut seen = BTreeSet::new();
    for (file, cell) in &rows {
        assert!(seen.insert(file.clone()), "{file} listed twice");
        let named = named_rules(cell);
        let known = !named.is_empty() || cell == "SigmaHQ rule" || cell == "left out";
        assert!(
            known,
            "{file}: covered by {cell:?}: a rules/ path, SigmaHQ rule, or left out"
        );
        for rule in named {
            assert!(
                root.join(rule).is_file(),
                "{file}: names {rule}, which is not a bundled rule"
            );
        }
    }
}

#[test]
fn every_sigmahq_file_is_in_the_list() {
    let doc = coverage_doc();
    let listed: BTreeSet<String> = rows(&doc).into_iter().map(|(f, _)| f).collect();
    for folder in FOLDERS {
        let Some(dir) = shared_events(&format!("sigma/{folder}")) else {
            continue;
        };
        let files = yml_files(&dir);
        assert!(!files.is_empty(), "{} holds no rules", dir.display());
        let missing: Vec<_> = files.difference(&listed).collect();
        assert!(
            missing.is_empty(),
            "docs/sigmahq-coverage.md does not say what covers: {missing:?}"
        );
    }
}

#[test]
fn rows_parse_and_a_forgotten_file_would_show() {
    // The checks above must be able to fail: a table without a file, and a
    // cell naming nothing, are told apart.
    let doc = "| file | covered by | note |\n|---|---|---|\n| `a.yml` | `rules/x.yml` | n |\n| `b.yml` | left out | why |\n";
    let r = rows(doc);
    assert_eq!(r.len(), 2);
    assert_eq!(named_rules(&r[0].1), vec!["rules/x.yml"]);
    assert!(named_rules(&r[1].1).is_empty());
    let listed: BTreeSet<String> = r.into_iter().map(|(f, _)| f).collect();
    let present: BTreeSet<String> = ["a.yml", "c.yml"].map(String::from).into();
    assert_eq!(
        present.difference(&listed).collect::<Vec<_>>(),
        vec!["c.yml"]
    );
}

fn yml_files(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(String::from))
        .filter(|n| n.ends_with(".yml") || n.ends_with(".yaml"))
        .collect()
}
