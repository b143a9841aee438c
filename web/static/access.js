/* The access design page: a Leaflet map of the zone (data from /api/layers), design runs
 * started as background jobs (/planner/access/run), polled through /api/jobs/<id> with a
 * progress bar and a cancel button, the last two runs drawn and compared side by side, and
 * one committed as planned assets (/planner/access/commit).
 * No inline scripts (CSP); everything shown is built with textContent (no HTML from data).
 * window.zpAccess exposes the map and the runs for tests and the console. */
(function () {
  "use strict";

  var page = window.zp && zp.config("zp-access");
  if (!page || !window.L) { return; }
  var cfg = page.cfg;
  var T = cfg.text;
  var COLOURS = ["#d81b60", "#1e88e5"];

  var fmt = zp.fmt, el = zp.el, clear = zp.clear, api = zp.api;
  function url(name, values) { return zp.url(cfg.urls, name, values); }
  function number(value, digits) {
    if (value === null || value === undefined || !isFinite(value)) { return "—"; }
    return Number(value).toLocaleString(cfg.locale, { maximumFractionDigits: digits || 0 });
  }

  // ------------------------------------------------------------------ the map
  var map = L.map("zp-access-map", { zoomControl: false, maxZoom: 20, zoomSnap: 0.25 });
  var control = L.control.layers(null, null, { collapsed: true, position: "topright" }).addTo(map);
  zp.leafletTexts(map, cfg.leaflet, control);
  var bounds = null;
  cfg.layers.forEach(function (spec) {
    var group = L.geoJSON(null, {
      interactive: false,
      style: function () { return Object.assign({}, spec.style); },
      pointToLayer: function (feature, latlng) {
        return L.circleMarker(latlng, Object.assign({ radius: spec.radius || 5 }, spec.style));
      }
    }).addTo(map);
    control.addOverlay(group, spec.label);
    fetch(url("layer", { layer: spec.name }) + "?limit=10000", { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data) { return; }
        group.addData(data);
        if (spec.name === "expansion" || spec.name === "plots") {
          var b = group.getBounds();
          if (b.isValid()) { bounds = bounds ? bounds.extend(b) : b; map.fitBounds(bounds); }
        }
      });
  });

  // ------------------------------------------------------------------ the form
  var form = document.getElementById("zp-access-form");
  var areaSel = document.getElementById("zp-access-area");
  var kindSel = document.getElementById("zp-access-kind");
  var targetSel = document.getElementById("zp-access-targets");
  var runBtn = document.getElementById("zp-access-run");
  var cancelBtn = document.getElementById("zp-access-cancel");
  var bar = document.getElementById("zp-access-progress");
  var status = document.getElementById("zp-access-status");
  cfg.areas.forEach(function (a) {
    areaSel.appendChild(el("option", { value: a.id, text: a.id + (a.name ? " — " + a.name : "") }));
  });
  Object.keys(cfg.kinds).forEach(function (k) {
    kindSel.appendChild(el("option", { value: k, text: cfg.kinds[k] }));
  });
  Object.keys(cfg.targets).forEach(function (k) {
    targetSel.appendChild(el("option", { value: k, text: cfg.targets[k] }));
  });

  var runs = [];       // the last two finished runs: {n, job_id, doc, layer}
  var counter = 0;
  var current = null;  // the job being polled

  /* the cancel button shows once the job exists (a click before that would be lost) */
  function busy(on) {
    runBtn.disabled = on;
    bar.hidden = !on;
    if (on) { bar.value = 0; } else { cancelBtn.hidden = true; }
  }

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var body = { area: areaSel.value, kind: kindSel.value, targets: targetSel.value,
                 freight_years: form.freight_years.value || null,
                 time_limit: form.time_limit.value || null };
    busy(true);
    status.textContent = T.running;
    api("POST", cfg.urls.run, body).then(function (res) {
      if (res.status !== 202) { busy(false); status.textContent = T.failed + " " + (res.body.error || res.status); return; }
      current = { id: res.body.job_id, params: body };
      cancelBtn.hidden = false;
      poll();
    }, function () { busy(false); status.textContent = T.network; });
  });

  cancelBtn.addEventListener("click", function () {
    if (!current) { return; }
    api("POST", url("cancel", { id: current.id }));
  });

  function poll() {
    if (!current) { return; }
    var job = current;
    api("GET", url("job", { id: job.id })).then(function (res) {
      var j = res.body || {};
      if (j.state === "queued" || j.state === "running") {
        bar.value = j.progress || 0;
        status.textContent = T.running + " " + Math.round(100 * (j.progress || 0)) + "% " + (j.message || "");
        setTimeout(poll, 400);
        return;
      }
      current = null;
      busy(false);
      if (j.state === "done") { status.textContent = ""; addRun(job, j.result); }
      else if (j.state === "cancelled") { status.textContent = T.cancelled; }
      else { status.textContent = T.failed + " " + (j.error || j.state || res.status); }
    }, function () { current = null; busy(false); status.textContent = T.network; });
  }

  // ------------------------------------------------------------------ runs and comparison
  function addRun(job, doc) {
    counter += 1;
    var run = { n: counter, job_id: job.id, doc: doc };
    runs.push(run);
    if (runs.length > 2) { var old = runs.shift(); map.removeLayer(old.layer); }
    runs.forEach(function (r, i) {
      if (r.layer) { map.removeLayer(r.layer); }
      r.layer = L.geoJSON(r.doc, {
        style: function () { return { color: COLOURS[i], weight: 5, opacity: 0.9, dashArray: i ? "8 6" : null }; },
        onEachFeature: function (feature, layer) {
          var p = feature.properties;
          var span = document.createElement("span");
          span.textContent = fmt(T.run_label, { n: r.n }) + " · " + p.seg_id + ": " +
            number(p.length_m) + " m, " + number(p.cost) + " " + T.tenge + " · " + T.serves + " " +
            (p.targets.join(", ") || T.none);
          layer.bindTooltip(span, { sticky: true });
        }
      }).addTo(map);
    });
    var b = run.layer.getBounds();
    if (b.isValid()) { map.fitBounds(b.pad(0.3)); }
    render();
  }

  function render() {
    var s = runs.map(function (r) { return r.doc.summary; });
    var rows = [
      [T.method, function (x) { return x.method + (x.freight_years ? " · " + x.freight_years + " y" : ""); }],
      [T.cost, function (x) { return number(x.cost); }],
      [T.lowerBound, function (x) { return number(x.lower_bound); }],
      [T.gap, function (x) { return x.optimal ? T.optimal : (x.gap === null ? "—" : (100 * x.gap).toFixed(2) + " %"); }],
      [T.length, function (x) { var v = 0; Object.keys(x.length_m).forEach(function (k) { v += x.length_m[k]; }); return number(v); }],
      [T.segments, function (x) { return String(x.segments); }],
      [T.connected, function (x) { return x.connected.length + " / " + x.targets.length; }],
      [T.served, function (x) { return x.already_served.join(", ") || T.none; }],
      [T.unreachable, function (x) { return x.unreachable.join(", ") || T.none; }],
      [T.freight, function (x) { return x.freight_cost === undefined ? "—" : number(x.freight_cost); }],
      [T.total, function (x) { return x.total === undefined ? number(x.cost) : number(x.total); }],
      [T.saving, function (x) { return x.saving === undefined ? "—" : number(x.saving); }],
      [T.time, function (x) { return number(x.elapsed_s, 1); }]
    ];
    var table = document.getElementById("zp-access-table");
    clear(table);
    table.appendChild(el("tr", {}, [el("th", { text: "" })].concat(runs.map(function (r, i) {
      return el("th", { class: "zp-access-run-" + i, scope: "col",
                        text: fmt(T.run_label, { n: r.n }) + " · " + r.doc.summary.kind + " · " + r.doc.summary.area });
    }))));
    rows.forEach(function (row) {
      table.appendChild(el("tr", {}, [el("th", { scope: "row", text: row[0] })].concat(s.map(function (x) {
        return el("td", { text: row[1](x) });
      }))));
    });
    var commits = document.getElementById("zp-access-commits");
    clear(commits);
    runs.forEach(function (r) {
      if (!r.doc.features.length) { return; }
      commits.appendChild(el("button", { type: "button", class: "btn btn-sm btn-primary",
        "data-run": String(r.n), text: T.commit + " — " + fmt(T.run_label, { n: r.n }),
        onclick: function () { commitRun(r); } }));
    });
    document.getElementById("zp-access-runs").hidden = false;
    var latest = runs[runs.length - 1];
    var list = document.getElementById("zp-access-segments");
    clear(list);
    list.appendChild(el("h2", { text: fmt(T.run_label, { n: latest.n }) + " · " + T.segments }));
    list.appendChild(el("ol", { class: "zp-access-segments-list" }, latest.doc.features.map(function (f) {
      var p = f.properties;
      return el("li", { text: p.seg_id + ": " + number(p.length_m) + " m, " + number(p.cost) + " " +
                              T.tenge + " · " + T.serves + " " + (p.targets.join(", ") || T.none) });
    })));
    Object.keys(latest.doc.summary.unreachable_reasons || {}).forEach(function (pid) {
      list.appendChild(el("p", { class: "zp-help", text: T.unreachable + " " + pid + ": " +
                                 latest.doc.summary.unreachable_reasons[pid] }));
    });
    list.hidden = false;
  }

  function commitRun(run) {
    var due = document.getElementById("zp-access-due").value;
    var out = document.getElementById("zp-access-commit-status");
    if (!due) { out.textContent = T.dueNeeded; return; }
    api("POST", cfg.urls.commit, { job_id: run.job_id, due: due }).then(function (res) {
      if (res.status === 201) {
        out.textContent = fmt(T.committed, { layer: res.body.layer, ids: res.body.asset_ids.join(", ") });
      } else {
        out.textContent = T.notCommitted + " " + (res.body.error || res.status);
      }
    }, function () { out.textContent = T.network; });
  }

  window.zpAccess = { map: map, runs: runs };
})();
