/* The allocation page: the zone as vector tiles, runs started through /api/allocations and
 * polled (progress, best value and gap while the solver works), the proposal drawn on the map
 * (each plot coloured and labelled with its application) beside a comparison with first come,
 * first served and the reasons for every application left out; accept all or a selection in
 * one request; recent runs reopened; applications imported from a CSV file.
 * No inline scripts (CSP); all text is set with textContent through zp.el (no HTML from data).
 * window.zpAllocate exposes the map and the current run for tests and the console. */
(function () {
  "use strict";

  var conf = window.zp && window.zp.config("zp-allocate");
  if (!conf || !window.L) { return; }
  var cfg = conf.cfg, root = conf.root, T = cfg.text;
  var el = zp.el, clear = zp.clear, fmt = zp.fmt;
  var PALETTE = ["#d81b60", "#1e88e5", "#8e24aa", "#f4511e", "#00897b", "#3949ab", "#c0ca33",
                 "#6d4c41", "#00acc1", "#5e35b1", "#fb8c00", "#43a047"];

  function url(name, values) { return zp.url(cfg.urls, name, values); }
  function number(value, digits) {
    if (value === null || value === undefined || !isFinite(value)) { return "—"; }
    return Number(value).toLocaleString(cfg.locale, { maximumFractionDigits: digits === undefined ? 0 : digits });
  }
  function percent(gap) {
    if (gap === null || gap === undefined || !isFinite(gap)) { return "—"; }
    return Number(100 * gap).toLocaleString(cfg.locale, { maximumFractionDigits: 2 }) + " %";
  }
  function $(id) { return document.getElementById(id); }

  // ------------------------------------------------------------------ the map
  var map = L.map("zp-al-map", { zoomControl: false, maxZoom: 20 });  // whole zooms: tiles exist at those only
  zp.leafletTexts(map, cfg.leaflet);
  map.setView([43.3, 76.85], 13);
  if (cfg.basemap) {
    L.tileLayer(cfg.basemap.url, { attribution: cfg.basemap.attribution, maxZoom: 20 }).addTo(map);
  }
  var styles = {};
  cfg.layers.forEach(function (spec) {
    styles[spec.name] = function (props) {
      var style = Object.assign({}, spec.style);
      style.fill = spec.geometry === "Polygon" || spec.geometry === "Point";
      if (spec.name === "plots") { style.fillColor = cfg.plotColours[props.status] || "#cccccc"; style.fillOpacity = 0.45; }
      if (spec.name === "plots" && props.plots) { style.stroke = false; }  // a block of small plots
      if (spec.asset) { Object.assign(style, cfg.statusStrokes[props.status] || {}); }
      if (spec.geometry === "Point") { style.radius = 5; }
      return style;
    };
  });
  var grid = L.vectorGrid.protobuf(cfg.urls.tiles, {
    rendererFactory: L.canvas.tile, vectorTileLayerStyles: styles, interactive: false, maxZoom: 22
  }).addTo(map);
  zp.api("GET", cfg.urls.bounds + "?limit=10").then(function (res) {
    if (res.status !== 200 || !res.body.features || !res.body.features.length) { return; }
    var b = L.geoJSON(res.body).getBounds();
    if (b.isValid()) { map.fitBounds(b); }
  });
  var proposalLayer = L.layerGroup().addTo(map);
  var plotLayers = {};   // app_id -> the proposed plot's Leaflet layer

  // ------------------------------------------------------------------ the form and the job
  var form = $("zp-al-form"), runBtn = $("zp-al-run"), cancelBtn = $("zp-al-cancel");
  var bar = $("zp-al-progress"), status = $("zp-al-status");
  var current = null;    // the job being polled: {id}
  var shown = null;      // the run whose proposal is shown: {id, doc}

  function busy(on) {
    runBtn.disabled = on;
    bar.hidden = !on;
    if (on) { bar.value = 0; } else { cancelBtn.hidden = true; }
  }

  function request() {
    var body = { objective: form.querySelector("input[name=objective]:checked").value,
                 time_limit: form.time_limit.value ? Number(form.time_limit.value) : null,
                 area: form.area.value || null };
    if (form.querySelector("input[name=apps]:checked").value === "chosen") {
      body.app_ids = Array.prototype.map.call(
        form.querySelectorAll("input[name=app_id]:checked"), function (box) { return box.value; });
    }
    return body;
  }

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var body = request();
    if (body.app_ids && !body.app_ids.length) { status.textContent = T.noApps; return; }
    busy(true);
    status.textContent = T.queued;
    zp.api("POST", cfg.urls.start, body).then(function (res) {
      if (res.status !== 202) {
        busy(false);
        status.textContent = (res.status === 409 ? T.busy : T.failed) + " " + (res.body.error || res.status);
        return;
      }
      follow(res.body.job_id);
      loadRuns();
    }, function () { busy(false); status.textContent = T.network; });
  });

  cancelBtn.addEventListener("click", function () {
    if (current) { zp.api("POST", url("cancel", { id: current.id })); }
  });

  function follow(jobId) {
    current = { id: jobId };
    busy(true);
    cancelBtn.hidden = false;
    poll();
  }

  function poll() {
    if (!current) { return; }
    var job = current;
    zp.api("GET", url("poll", { id: job.id })).then(function (res) {
      if (current !== job) { return; }
      var j = res.body || {};
      if (j.state === "queued" || j.state === "running") {
        bar.value = j.progress || 0;
        var best = j.result && j.result.objective !== undefined
          ? fmt(T.best, { value: number(j.result.objective, 4), gap: percent(j.result.gap) }) : "";
        status.textContent = (j.state === "queued" ? T.queued : T.running) + " " + best;
        root.setAttribute("data-state", j.state);
        setTimeout(poll, 400);
        return;
      }
      current = null;
      busy(false);
      root.setAttribute("data-state", j.state || "failed");
      loadRuns();
      if (j.state === "done") { status.textContent = ""; open(job.id); }
      else if (j.state === "cancelled") { status.textContent = T.cancelled; }
      else { status.textContent = T.failed + " " + (j.error || j.state || res.status); }
    }, function () { current = null; busy(false); status.textContent = T.network; });
  }

  // ------------------------------------------------------------------ the proposal
  function open(jobId) {
    return zp.api("GET", url("result", { id: jobId })).then(function (res) {
      if (res.status !== 200) { status.textContent = T.failed + " " + (res.body.error || res.status); return; }
      shown = { id: jobId, doc: res.body };
      draw(res.body);
      render(res.body);
      root.setAttribute("data-shown", jobId);
    });
  }

  function colourOf(i) { return PALETTE[i % PALETTE.length]; }

  function draw(doc) {
    proposalLayer.clearLayers();
    plotLayers = {};
    var order = {};
    doc.proposals.forEach(function (p, i) { order[p.app_id] = i; });
    var layer = L.geoJSON(doc.features, {
      style: function (f) {
        return { color: colourOf(order[f.properties.app_id]), weight: 3, fillOpacity: 0.55,
                 fillColor: colourOf(order[f.properties.app_id]) };
      },
      onEachFeature: function (f, lyr) {
        var label = document.createElement("span");
        label.textContent = f.properties.app_id + " → " + f.properties.plot_id;
        lyr.bindTooltip(label, { permanent: true, direction: "center", className: "zp-al-label" });
        lyr.on("click", function () { if (!map.zpMeasuring) { highlight(f.properties.app_id); } });
        plotLayers[f.properties.app_id] = lyr;
      }
    });
    proposalLayer.addLayer(layer);
    var b = layer.getBounds();
    if (b.isValid()) { map.fitBounds(b.pad(0.25)); }
  }

  function highlight(appId) {
    Array.prototype.forEach.call(document.querySelectorAll(".zp-al-row"), function (row) {
      row.classList.toggle("zp-al-hit", row.getAttribute("data-app") === appId);
    });
    var lyr = plotLayers[appId];
    if (lyr) { map.fitBounds(lyr.getBounds().pad(1.5)); lyr.openTooltip(); }
  }

  function render(doc) {
    var s = doc.summary, c = doc.comparison;
    var table = $("zp-al-compare");
    clear(table);
    table.appendChild(el("tr", {}, [el("th", { text: "" }), el("th", { scope: "col", text: T.optimised }),
                                    el("th", { scope: "col", text: T.fcfs })]));
    [[T.value, "value", 4], [T.count, "count", 0], [T.jobs, "jobs", 0], [T.investment, "investment", 0]]
      .forEach(function (row) {
        table.appendChild(el("tr", { "data-row": row[1] }, [
          el("th", { scope: "row", text: row[0] }),
          el("td", { text: number(c.optimised[row[1]], row[2]) }),
          el("td", { text: number(c.fcfs[row[1]], row[2]) })]));
      });
    table.appendChild(el("tr", { "data-row": "gap" }, [el("th", { scope: "row", text: T.gap }),
      el("td", { text: s.gap === 0 || s.status === "optimal" ? T.optimal + " (" + percent(s.gap) + ")" : percent(s.gap) }),
      el("td", { text: "—" })]));
    table.appendChild(el("tr", {}, [el("th", { scope: "row", text: T.seconds }),
      el("td", { text: number(s.total_s, 1) + " (" + T.firstProposal + " " + number(s.first_proposal_s, 1) + ")" }),
      el("td", { text: "" })]));

    var list = $("zp-al-proposals");
    clear(list);
    list.appendChild(el("tr", {}, [el("th", { text: "" }), el("th", { text: T.application }),
      el("th", { text: T.plot }), el("th", { text: T.investment }), el("th", { text: T.jobs })]));
    doc.proposals.forEach(function (p, i) {
      var pending = p.status_now === "submitted";
      var box = el("input", { type: "checkbox", name: "accept", value: p.app_id, checked: pending,
                              disabled: !pending, "aria-label": p.app_id + " → " + p.plot_id });
      var chip = el("span", { class: "zp-al-chip zp-al-c" + (i % PALETTE.length) });
      var who = el("td", {}, [chip, el("strong", { text: p.app_id }), " ",
        (p.company || "") + " — " + (p.project || "")]);
      if (!pending) { who.appendChild(el("em", { text: " · " + fmt(T.nowStatus, { status: p.status_now || "?" }) })); }
      list.appendChild(el("tr", { class: "zp-al-row", "data-app": p.app_id,
                                  onclick: function (e) { if (e.target !== box) { highlight(p.app_id); } } }, [
        el("td", {}, [box]), who,
        el("td", { text: p.plot_id + (p.requested && p.requested !== p.plot_id ? " (" + T.appliedFor + " " + p.requested + ")" : "") }),
        el("td", { text: number(p.invest) }), el("td", { text: number(p.jobs) })]));
    });

    var out = $("zp-al-leftout");
    clear(out);
    doc.left_out.forEach(function (a) {
      var item = el("li", { "data-app": a.app_id }, [el("strong", { text: a.app_id }), " ",
        (a.company || "") + " — " + (a.project || "") + ": " + (a.reason || "")]);
      if (a.requested_note) { item.appendChild(el("div", { class: "zp-help", text: a.requested_note })); }
      if (a.rules && a.rules.length) {
        item.appendChild(el("div", { class: "zp-help", text: T.ruleLabel + " " +
          a.rules.map(function (r) { return r.message; }).join("; ") }));
      }
      out.appendChild(item);
    });
    $("zp-al-accept-status").textContent = "";
    $("zp-al-result").hidden = false;
  }

  // ------------------------------------------------------------------ accepting
  function accept(all) {
    if (!shown) { return; }
    var out = $("zp-al-accept-status");
    // "all" is every proposal still pending; those accepted since are left out
    var boxes = document.querySelectorAll(all ? "input[name=accept]:not([disabled])" : "input[name=accept]:checked");
    var ids = Array.prototype.map.call(boxes, function (b) { return b.value; });
    if (!ids.length) { out.textContent = T.noneSelected; return; }
    var run = shown;
    clear(out);
    zp.api("POST", url("accept", { id: run.id }), { app_ids: ids }).then(function (res) {
      if (res.status === 200) {
        open(run.id).then(function () {
          $("zp-al-accept-status").textContent = fmt(T.accepted, { n: res.body.accepted.length });
        });
        grid.redraw();
        return;
      }
      // a stale selection's message already says nothing was reserved
      out.appendChild(el("p", { class: "zp-pl-verdict zp-pl-bad",
        text: res.body.stale ? res.body.error : T.notAccepted + " " + (res.body.error || res.status) }));
      if (res.body.stale) {
        out.appendChild(el("p", { text: T.stale }));
        out.appendChild(el("ul", { class: "zp-al-stale" }, res.body.stale.map(function (part) {
          var box = document.querySelector("input[name=accept][value='" + CSS.escape(part.app_id) + "']");
          if (box) { box.checked = false; }
          return el("li", { "data-app": part.app_id, text: part.message });
        })));
        out.appendChild(el("button", { type: "button", class: "btn btn-sm btn-outline-primary", text: T.rerun,
                                       onclick: function () { form.requestSubmit(); } }));
      }
    }, function () { out.textContent = T.network; });
  }
  $("zp-al-accept").addEventListener("click", function () { accept(false); });
  $("zp-al-accept-all").addEventListener("click", function () { accept(true); });

  // ------------------------------------------------------------------ recent runs
  var objectiveLabel = {};
  cfg.objectives.forEach(function (o) { objectiveLabel[o.key] = o.label; });

  function loadRuns() {
    zp.api("GET", cfg.urls.runs).then(function (res) {
      var list = $("zp-al-runlist");
      clear(list);
      var runs = (res.body && res.body.runs) || [];
      if (!runs.length) { list.appendChild(el("li", { class: "zp-help", text: T.noRuns })); return; }
      runs.forEach(function (r) {
        var when = r.created ? new Date(r.created).toLocaleString(cfg.locale) : "";
        var label = fmt(T.runLabel, { when: when, objective: objectiveLabel[r.params.objective] || r.params.objective,
                                      state: r.state });
        var item = el("li", { "data-job": r.job_id }, [label + (r.username ? " · " + r.username : "")]);
        if (r.state === "done") {
          item.appendChild(el("button", { type: "button", class: "btn btn-sm btn-link", text: T.open,
                                          onclick: function () { open(r.job_id); } }));
        } else if ((r.state === "running" || r.state === "queued") && !current) {
          follow(r.job_id);
        }
        list.appendChild(item);
      });
    });
  }
  loadRuns();

  // ------------------------------------------------------------------ CSV intake
  var importForm = $("zp-al-import");
  importForm.addEventListener("submit", function (e) {
    e.preventDefault();
    var out = $("zp-al-import-status");
    clear(out);
    var file = $("zp-al-file").files[0];
    if (!file) { out.textContent = T.chooseFile; return; }
    var data = new FormData();
    data.append("file", file);
    fetch(cfg.urls["import"], { method: "POST", body: data, credentials: "same-origin",
                                headers: { "X-CSRFToken": zp.csrf, "Accept": "application/json" } })
      .then(function (r) { return r.json().then(function (b) { return { status: r.status, body: b }; }); })
      .then(function (res) {
        if (res.status === 201) {
          out.appendChild(el("p", { class: "zp-pl-verdict zp-pl-good",
            text: fmt(T.imported, { n: res.body.imported, ids: res.body.app_ids.join(", ") }) }));
          var apps = $("zp-al-apps");
          res.body.app_ids.forEach(function (id) {
            apps.appendChild(el("label", { class: "zp-al-app" }, [
              el("input", { type: "checkbox", name: "app_id", value: id, checked: true }),
              el("span", { class: "zp-al-id", text: id })]));
          });
          importForm.reset();
          return;
        }
        out.appendChild(el("p", { class: "zp-pl-verdict zp-pl-bad", text: T.notImported }));
        var problems = res.body.problems || [{ index: null, reason: res.body.error || String(res.status) }];
        out.appendChild(el("ul", { class: "zp-al-problems" }, problems.map(function (p) {
          return el("li", { text: (p.index ? fmt(T.line, { n: p.index }) + ": " : "") + p.reason });
        })));
      }, function () { out.textContent = T.network; });
  });

  window.zpAllocate = { map: map, grid: grid, shown: function () { return shown; }, open: open };
})();
