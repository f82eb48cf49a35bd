// The alert table of Vigil's replay report: rows from the JSON data block,
// filters (severity, rule, actor, account, text) kept in the URL's hash so a
// filtered view can be shared, and a detail view per row. Every value is
// event text written by whoever made the API call: it is only ever set with
// textContent or as a property, never parsed as HTML.
(function () {
  "use strict";
  var body = document.body;
  var errors = 0;
  // The browser test reads these attributes: errors thrown, and done.
  window.addEventListener("error", function () {
    errors += 1;
    body.setAttribute("data-js-errors", String(errors));
  });

  var data = JSON.parse(document.getElementById("vigil-data").textContent);
  var alerts = data.alerts;
  var SEVERITIES = ["CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL"];
  var FILTERS = ["severity", "rule", "actor", "account", "q"];
  var state = { severity: "", rule: "", actor: "", account: "", q: "" };
  var rows = [];

  function el(tag, className, text) {
    var e = document.createElement(tag);
    if (className) e.className = className;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function consoleLink(url) {
    // The report only passes AWS console links; check again before linking.
    try {
      var u = new URL(url);
      return u.protocol === "https:" && /(^|\.)console\.(aws\.amazon\.com|amazonaws\.cn|amazonaws-us-gov\.com)$/.test(u.hostname);
    } catch (e) {
      return false;
    }
  }

  function fillDetail(td, a) {
    var dl = el("dl", "facts");
    function fact(name, value, node) {
      if (!node && !value) return;
      dl.appendChild(el("dt", null, name));
      var dd = el("dd", null, node ? null : value);
      if (node) dd.appendChild(node);
      dl.appendChild(dd);
    }
    fact("What happened", a.description);
    fact("Resource", a.resource);
    fact("Source IP", a.source_ip);
    fact("User agent", a.user_agent);
    fact("Access key", a.access_key);
    fact("Source", a.source);
    if (a.console_url && consoleLink(a.console_url)) {
      var link = el("a", "console", "Open in the AWS console");
      link.href = a.console_url;
      link.rel = "noopener noreferrer";
      link.target = "_blank";
      fact("Console", null, link);
    }
    fact("Trace id", a.trace_id ? a.trace_id + (a.xray_trace_id ? "  (X-Ray " + a.xray_trace_id + ")" : "") : "");
    fact("Finding id", a.finding_id);
    fact("Fingerprint", a.fingerprint);
    fact("Event id", a.event_id);
    td.appendChild(dl);
    if (a.evidence.length) {
      td.appendChild(el("h3", null, "Evidence"));
      var table = el("table", "evidence");
      var tbody = el("tbody");
      a.evidence.forEach(function (kv) {
        var tr = el("tr");
        tr.appendChild(el("td", null, kv[0]));
        tr.appendChild(el("td", null, kv[1]));
        tbody.appendChild(tr);
      });
      table.appendChild(tbody);
      td.appendChild(table);
    }
  }

  function toggle(row) {
    var td = row.detail.firstChild;
    if (!td.firstChild) fillDetail(td, row.alert);
    row.detail.hidden = !row.detail.hidden;
    row.tr.classList.toggle("open", !row.detail.hidden);
    row.tr.setAttribute("aria-expanded", String(!row.detail.hidden));
  }

  function buildRow(a) {
    var tr = el("tr", "alert");
    tr.tabIndex = 0;
    tr.setAttribute("aria-expanded", "false");
    tr.appendChild(el("td", "time", a.time.replace("T", " ").replace("Z", "")));
    var sev = el("td");
    sev.appendChild(el("span", "sev sev-" + a.severity, a.severity));
    tr.appendChild(sev);
    ["title", "rule", "actor", "account", "region"].forEach(function (k) {
      tr.appendChild(el("td", k, a[k]));
    });
    var detail = el("tr", "detail");
    detail.hidden = true;
    var td = el("td");
    td.colSpan = 7;
    detail.appendChild(td);
    var row = { alert: a, tr: tr, detail: detail, text: [a.title, a.rule, a.rule_id, a.actor, a.account, a.region, a.resource, a.source_ip, a.access_key].join("\n").toLowerCase() };
    tr.addEventListener("click", function () { toggle(row); });
    tr.addEventListener("keydown", function (e) {
      if (e.key === "Enter" || e.key === " ") {
        e.preventDefault();
        toggle(row);
      }
    });
    return row;
  }

  function countBy(key) {
    var counts = new Map();
    alerts.forEach(function (a) {
      if (a[key]) counts.set(a[key], (counts.get(a[key]) || 0) + 1);
    });
    return Array.from(counts.entries()).sort(function (x, y) {
      return y[1] - x[1] || (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0);
    });
  }

  function fillSelect(key) {
    var select = document.getElementById("filter-" + key);
    countBy(key).forEach(function (entry) {
      var option = el("option", null, entry[0] + " (" + entry[1] + ")");
      option.value = entry[0];
      select.appendChild(option);
    });
    select.addEventListener("change", function () { set(key, select.value); });
  }

  function severityButtons() {
    var group = document.getElementById("severity-filter");
    var counts = new Map(countBy("severity"));
    ["", "CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL"].forEach(function (s) {
      if (s && !counts.get(s)) return;
      var b = el("button", null, s ? s + " " + counts.get(s) : "All " + alerts.length);
      b.type = "button";
      b.setAttribute("data-severity", s);
      b.addEventListener("click", function () { set("severity", state.severity === s ? "" : s); });
      group.appendChild(b);
    });
  }

  function matches(row) {
    var a = row.alert;
    return (!state.severity || a.severity === state.severity) &&
      (!state.rule || a.rule === state.rule) &&
      (!state.actor || a.actor === state.actor) &&
      (!state.account || a.account === state.account) &&
      (!state.q || row.text.indexOf(state.q.toLowerCase()) !== -1);
  }

  function apply() {
    var shown = 0;
    rows.forEach(function (row) {
      var ok = matches(row);
      row.tr.hidden = !ok;
      if (!ok) row.detail.hidden = true;
      if (ok) shown += 1;
    });
    document.getElementById("shown-count").textContent = String(shown);
    document.querySelectorAll("#severity-filter button").forEach(function (b) {
      b.setAttribute("aria-pressed", String(b.getAttribute("data-severity") === state.severity));
    });
    ["rule", "actor", "account"].forEach(function (k) {
      document.getElementById("filter-" + k).value = state[k];
    });
    var q = document.getElementById("filter-q");
    if (q.value !== state.q) q.value = state.q;
  }

  function writeHash() {
    var params = new URLSearchParams();
    FILTERS.forEach(function (k) { if (state[k]) params.set(k, state[k]); });
    var hash = params.toString();
    try {
      history.replaceState(null, "", hash ? "#" + hash : location.pathname + location.search);
    } catch (e) {
      location.hash = hash;
    }
  }

  function set(key, value) {
    state[key] = value;
    apply();
    writeHash();
  }

  function readHash() {
    var params = new URLSearchParams(location.hash.replace(/^#/, ""));
    FILTERS.forEach(function (k) { state[k] = params.get(k) || ""; });
    if (SEVERITIES.indexOf(state.severity) === -1) state.severity = "";
    apply();
  }

  var tbody = document.getElementById("alert-rows");
  var fragment = document.createDocumentFragment();
  alerts.forEach(function (a) {
    var row = buildRow(a);
    rows.push(row);
    fragment.appendChild(row.tr);
    fragment.appendChild(row.detail);
  });
  if (!alerts.length) {
    var empty = el("tr");
    var cell = el("td", "empty", "No alerts.");
    cell.colSpan = 7;
    empty.appendChild(cell);
    fragment.appendChild(empty);
  }
  tbody.appendChild(fragment);
  severityButtons();
  ["rule", "actor", "account"].forEach(fillSelect);
  document.getElementById("filter-q").addEventListener("input", function (e) { set("q", e.target.value); });
  document.getElementById("filter-clear").addEventListener("click", function () {
    FILTERS.forEach(function (k) { state[k] = ""; });
    apply();
    writeHash();
  });
  window.addEventListener("hashchange", readHash);
  readHash();
  body.setAttribute("data-ready", "1");
})();
