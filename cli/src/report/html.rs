//! The report page: one self-contained HTML file. Everything but the alert
//! table is plain HTML and inline SVG, readable without script; the table
//! is built by the page's inline script from a JSON data block. No network:
//! the Content-Security-Policy allows nothing to load.

use std::fmt::Write as _;

use serde_json::json;
use vigil::model::{Severity, Tactic};

use super::data::{sev_index, AlertRow, Counter, ReportData};
use super::escape::{html, json_for_script};
use super::svg;
use super::ReportFacts;

const CSS: &str = include_str!("page.css");
const SCRIPT: &str = include_str!("page.js");

/// Nothing loads from anywhere; only the page's own inline style and script run.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; \
                   img-src data:; base-uri 'none'; form-action 'none'";

/// Top lists show this many entries.
const TOP_N: usize = 10;

/// The whole page.
pub(crate) fn page(data: &ReportData, facts: &ReportFacts) -> Result<String, serde_json::Error> {
    let mut rows: Vec<&AlertRow> = data.rows.iter().collect();
    rows.sort_by(|a, b| a.time.cmp(&b.time));
    let script_data = json_for_script(&json!({
        "alerts": rows,
        "alerts_cut": data.rows_cut,
    }))?;
    let mut s = String::with_capacity(64 * 1024 + script_data.len());
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"referrer\" content=\"no-referrer\">\n\
         <title>Vigil replay report</title>\n<style>\n{CSS}</style>\n</head>\n<body>\n"
    );
    header(&mut s, data, facts);
    summary(&mut s, data, facts);
    let undrawn = match data.undrawn {
        0 => String::new(),
        n => {
            format!("<p class=\"note\">{n} findings at other times are counted but not drawn.</p>")
        }
    };
    let _ = writeln!(
        s,
        "<section id=\"over-time\"><h2>Findings over time</h2>{}{}{undrawn}</section>",
        svg::findings_over_time(&data.per_minute),
        legend()
    );
    attack_matrix(&mut s, data);
    tops(&mut s, data);
    alert_table(&mut s, data);
    outcomes(&mut s, data, facts);
    let _ = write!(
        s,
        "<script type=\"application/json\" id=\"vigil-data\">{script_data}</script>\n\
         <script>\n{SCRIPT}</script>\n</body>\n</html>\n"
    );
    Ok(s)
}

fn header(s: &mut String, data: &ReportData, facts: &ReportFacts) {
    let inputs: Vec<String> = facts.inputs.iter().map(|i| html(i)).collect();
    let range = match (data.first, data.last) {
        (Some(a), Some(b)) => format!(
            "<time data-range=\"first\">{}</time> to <time data-range=\"last\">{}</time>",
            html(&a.format("%Y-%m-%d %H:%M:%S UTC").to_string()),
            html(&b.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        ),
        _ => "no findings".to_string(),
    };
    let _ = writeln!(
        s,
        "<header><h1>Vigil replay report</h1>\
         <p class=\"meta\">Replayed <code>{}</code> · findings from {range}</p></header>",
        inputs.join("</code>, <code>")
    );
}

fn count_card(s: &mut String, key: &str, label: &str, n: impl std::fmt::Display, class: &str) {
    let _ = write!(
        s,
        "<div class=\"card {class}\"><span class=\"n\" data-count=\"{key}\">{n}</span><span class=\"label\">{label}</span></div>"
    );
}

fn summary(s: &mut String, data: &ReportData, facts: &ReportFacts) {
    s.push_str("<section id=\"summary\"><h2>Summary</h2><div class=\"cards\">");
    count_card(s, "events", "events", facts.events, "");
    count_card(s, "files", "files", facts.files, "");
    count_card(s, "findings", "findings", data.findings, "");
    count_card(s, "alerts", "alerts", data.alerts, "accent");
    count_card(
        s,
        "storm-summaries",
        "storm summaries",
        data.storms_alerted,
        "",
    );
    let errors_class = if facts.errors_total > 0 { "bad" } else { "" };
    count_card(
        s,
        "errors",
        "events failed",
        facts.errors_total,
        errors_class,
    );
    s.push_str("</div><div class=\"split\"><table class=\"sevtable\"><thead><tr><th>Severity</th><th>Findings</th><th>Alerts</th><th></th></tr></thead><tbody>");
    let max = data.by_severity.iter().copied().max().unwrap_or(0).max(1);
    for sev in Severity::ALL.into_iter().rev() {
        let (n, a) = (
            data.by_severity[sev_index(sev)],
            data.alerts_by_severity[sev_index(sev)],
        );
        let _ = write!(
            s,
            "<tr><td><span class=\"sev sev-{0}\">{0}</span></td><td data-count=\"severity-{0}\">{n}</td>\
             <td data-count=\"alerts-{0}\">{a}</td><td class=\"barcell\"><span class=\"bar sev-{0}\" style=\"width:{1:.1}%\"></span></td></tr>",
            sev.as_str(),
            n as f64 * 100.0 / max as f64
        );
    }
    s.push_str("</tbody></table><table class=\"sources\"><thead><tr><th>Source</th><th>Findings</th></tr></thead><tbody>");
    for (source, n) in &data.by_source {
        let _ = write!(
            s,
            "<tr><td>{}</td><td data-count=\"source-{0}\">{n}</td></tr>",
            html(source)
        );
    }
    s.push_str("</tbody></table></div></section>\n");
}

fn legend() -> String {
    let mut s = String::from("<p class=\"legend\">");
    for sev in Severity::ALL.into_iter().rev() {
        let _ = write!(s, "<span class=\"sev sev-{0}\">{0}</span> ", sev.as_str());
    }
    s.push_str("</p>");
    s
}

/// Shading for a count: light for few, strong for the most.
fn shade(n: u64, max: u64) -> String {
    if n == 0 {
        return String::new();
    }
    let alpha = 0.15 + 0.75 * (n as f64 / max.max(1) as f64);
    format!(" style=\"background:rgba(190,40,30,{alpha:.2})\"")
}

fn attack_matrix(s: &mut String, data: &ReportData) {
    s.push_str("<section id=\"attack\"><h2>MITRE ATT&amp;CK tactics and techniques</h2><div class=\"matrix\">");
    let max_tactic = data.tactics.values().copied().max().unwrap_or(1);
    let max_tech = data.techniques.values().copied().max().unwrap_or(1);
    for tactic in Tactic::ALL {
        let n = data.tactics.get(&tactic).copied().unwrap_or(0);
        let _ = write!(
            s,
            "<div class=\"tactic{}\"><div class=\"tactic-head\" data-tactic=\"{}\"{}><span class=\"tname\">{}</span><span class=\"tid\">{}</span><span class=\"tn\">{n}</span></div>",
            if n == 0 { " none" } else { "" },
            tactic.id(),
            shade(n, max_tactic),
            html(tactic.name()),
            tactic.id()
        );
        let mut techs: Vec<(&str, u64)> = data
            .techniques
            .range((tactic, String::new())..)
            .take_while(|((t, _), _)| *t == tactic)
            .map(|((_, id), n)| (id.as_str(), *n))
            .collect();
        techs.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        for (id, n) in techs {
            let name = data
                .technique_names
                .get(id)
                .map(String::as_str)
                .unwrap_or("");
            let _ = write!(
                s,
                "<div class=\"tech\"{} title=\"{} {}: {n}\"><span class=\"techid\">{}</span> {}<span class=\"tn\">{n}</span></div>",
                shade(n, max_tech),
                html(id),
                html(name),
                html(id),
                html(name)
            );
        }
        s.push_str("</div>");
    }
    s.push_str("</div>");
    let untactical = data.untactical.top(20);
    if !untactical.is_empty() {
        let list: Vec<String> = untactical
            .iter()
            .map(|(id, n)| format!("{} ({n})", html(id)))
            .collect();
        let _ = write!(
            s,
            "<p class=\"note\">Techniques without a tactic: {}</p>",
            list.join(", ")
        );
    }
    s.push_str("</section>\n");
}

fn top_table(s: &mut String, key: &str, title: &str, counter: &Counter) {
    let top = counter.top(TOP_N);
    let max = top.first().map_or(1, |(_, n)| *n);
    let _ = write!(s, "<div class=\"top\" data-top=\"{key}\"><h3>{title}</h3>");
    if top.is_empty() {
        s.push_str("<p class=\"empty\">None.</p></div>");
        return;
    }
    s.push_str("<table><tbody>");
    for (label, n) in top {
        let _ = write!(
            s,
            "<tr><td class=\"label\" title=\"{0}\">{0}</td><td class=\"n\">{n}</td><td class=\"barcell\"><span class=\"bar\" style=\"width:{1:.1}%\"></span></td></tr>",
            html(label),
            n as f64 * 100.0 / max as f64
        );
    }
    s.push_str("</tbody></table>");
    let more = counter.distinct().saturating_sub(TOP_N);
    if more > 0 || counter.other > 0 {
        let _ = write!(s, "<p class=\"note\">and {more} more</p>");
    }
    s.push_str("</div>");
}

fn tops(s: &mut String, data: &ReportData) {
    s.push_str("<section id=\"tops\"><h2>Top rules, actors, accounts and regions</h2><p class=\"note\">Counted over every finding, alerted or not.</p><div class=\"tops\">");
    top_table(s, "rules", "Rules and finding types", &data.rules);
    top_table(s, "principals", "Principals", &data.principals);
    top_table(s, "access-keys", "Access keys", &data.access_keys);
    top_table(s, "source-ips", "Source IPs", &data.source_ips);
    top_table(s, "accounts", "Accounts", &data.accounts);
    top_table(s, "regions", "Regions", &data.regions);
    s.push_str("</div></section>\n");
}

fn alert_table(s: &mut String, data: &ReportData) {
    let _ = writeln!(
        s,
        "<section id=\"alerts\"><h2>Alerts</h2>\
         <div class=\"filters\" id=\"filters\">\
         <div class=\"sevfilter\" id=\"severity-filter\" role=\"group\" aria-label=\"Severity\"></div>\
         <label>Rule <select id=\"filter-rule\"><option value=\"\">all</option></select></label>\
         <label>Actor <select id=\"filter-actor\"><option value=\"\">all</option></select></label>\
         <label>Account <select id=\"filter-account\"><option value=\"\">all</option></select></label>\
         <label>Search <input id=\"filter-q\" type=\"search\" placeholder=\"title, actor, IP, resource\"></label>\
         <button type=\"button\" id=\"filter-clear\">Clear</button></div>\
         <p class=\"shown\"><span id=\"shown-count\">{0}</span> of <span id=\"total-count\">{1}</span> alerts shown{2} · click a row for its evidence, console link and trace id</p>\
         <noscript><p class=\"note\">The alert table needs JavaScript; everything else on this page is plain HTML.</p></noscript>\
         <table class=\"alerts\"><thead><tr><th>Time (UTC)</th><th>Severity</th><th>Title</th><th>Rule or type</th><th>Actor</th><th>Account</th><th>Region</th></tr></thead>\
         <tbody id=\"alert-rows\"></tbody></table></section>",
        data.rows.len(),
        data.rows.len(),
        match data.rows_cut {
            0 => String::new(),
            n => format!(" ({n} more alerts not in this page: use --output json)"),
        }
    );
}

/// What each decision means, for the outcome table.
fn decision_meaning(name: &str) -> &'static str {
    match name {
        "alerted" => "sent as an alert",
        "suppressed" => "a repeat within its suppression window: counted into the next alert",
        "aggregated" => "past the storm threshold: counted into a storm summary",
        "suppressed_by_rule" => "matched a suppression rule",
        "below_threshold" => "below the minimum severity",
        "sample" => "a sample finding the source generated",
        "inactive" => "archived or resolved at the source",
        "from_other_source" => "a Security Hub copy of a finding received directly",
        "failed" => "delivery failed",
        _ => "",
    }
}

fn outcomes(s: &mut String, data: &ReportData, facts: &ReportFacts) {
    s.push_str("<section id=\"outcomes\"><h2>What did not alert, and why</h2><div class=\"split\"><table class=\"decisions\"><thead><tr><th>Outcome</th><th>Findings</th><th>Meaning</th></tr></thead><tbody>");
    for (name, n) in &data.by_decision {
        let _ = write!(
            s,
            "<tr><td><code>{0}</code></td><td data-count=\"decision-{0}\">{n}</td><td>{1}</td></tr>",
            html(name),
            decision_meaning(name)
        );
    }
    s.push_str("</tbody></table>");
    top_table(
        s,
        "suppression-rules",
        "Suppression rules that matched",
        &data.suppression_rules,
    );
    s.push_str("</div>");
    storms(s, data);
    errors(s, facts);
    s.push_str("</section>\n");
}

fn storms(s: &mut String, data: &ReportData) {
    let _ = write!(s, "<h3>Storm summaries</h3>");
    if data.storms.is_empty() {
        s.push_str("<p class=\"empty\">No alert storm: every alert went out on its own.</p>");
        return;
    }
    s.push_str("<table class=\"storms\"><thead><tr><th>Window (UTC)</th><th>Severity</th><th>Alerts replaced</th><th>Summary</th><th>Outcome</th></tr></thead><tbody>");
    for st in &data.storms {
        let _ = write!(
            s,
            "<tr><td>{} to {}</td><td><span class=\"sev sev-{2}\">{2}</span></td><td>{3}</td><td>{4}</td><td><code>{5}</code></td></tr>",
            html(&st.from),
            html(&st.to),
            st.severity.as_str(),
            st.replaced,
            html(&st.title),
            st.decision
        );
    }
    s.push_str("</tbody></table>");
}

fn errors(s: &mut String, facts: &ReportFacts) {
    if facts.errors.is_empty() {
        return;
    }
    let _ = write!(
        s,
        "<h3>Events that failed ({})</h3><ul class=\"errors\">",
        facts.errors_total
    );
    for e in &facts.errors {
        let _ = write!(s, "<li><code>{}</code></li>", html(e));
    }
    s.push_str("</ul>");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay::walk::{Kind, Seen};
    use vigil::model::{Actor, Finding, Source};
    use vigil::pipeline::{Decision, Processed};

    fn facts() -> ReportFacts {
        ReportFacts {
            events: 2,
            files: 1,
            errors_total: 1,
            errors: vec!["<b>bad.json</b>: expected value".into()],
            inputs: vec!["<i>events</i>".into()],
        }
    }

    fn page_with(title: &str, user: &str) -> String {
        let mut f = Finding::new(Source::GuardDuty, "f-1", title);
        f.title = title.into();
        f.severity = Severity::High;
        f.actor = Some(Actor {
            user_name: Some(user.into()),
            ..Actor::default()
        });
        let processed = Processed {
            finding: f,
            decision: Decision::Alerted(vec![]),
        };
        let mut data = ReportData::default();
        data.add(&Seen {
            processed: &processed,
            kind: Kind::Finding,
            file: None,
        });
        page(&data, &facts()).unwrap()
    }

    #[test]
    fn event_text_is_escaped_everywhere_the_page_shows_it() {
        let page = page_with(
            "<script>alert(1)</script>",
            "\"><img src=x onerror=alert(2)>",
        );
        assert!(!page.contains("<script>alert(1)"));
        assert!(!page.contains("<img"));
        assert!(!page.contains("<b>bad.json") && !page.contains("<i>events"));
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains("\\u003cscript\\u003ealert(1)"));
        assert_eq!(page.matches("<script").count(), 2);
    }

    #[test]
    fn the_page_loads_nothing_from_anywhere() {
        let page = page_with("t", "u");
        assert!(page.contains(&format!(
            "http-equiv=\"Content-Security-Policy\" content=\"{CSP}\""
        )));
        assert!(CSP.starts_with("default-src 'none';"));
        // No absolute URL at all (inline SVG needs no namespace either).
        for needle in [
            " src=", " href=", "url(", "@import", "http://", "https://", "//cdn",
        ] {
            assert!(!page.contains(needle), "{needle}");
        }
        // Inline assets cannot end their own element early.
        assert!(!SCRIPT.to_ascii_lowercase().contains("</script"));
        assert!(!CSS.to_ascii_lowercase().contains("</style"));
        assert!(
            !SCRIPT.contains("innerHTML")
                && !SCRIPT.contains("insertAdjacentHTML")
                && !SCRIPT.contains("document.write")
        );
    }

    #[test]
    fn counts_carry_their_names_for_the_browser_test() {
        let page = page_with("t", "u");
        for key in [
            "events\">2",
            "files\">1",
            "findings\">1",
            "alerts\">1",
            "errors\">1",
            "severity-HIGH\">1",
            "alerts-HIGH\">1",
            "decision-alerted\">1",
        ] {
            assert!(page.contains(&format!("data-count=\"{key}")), "{key}");
        }
    }
}
