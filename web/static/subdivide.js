/* The subdivision page: the zone's layers from /api/layers, an area chosen in the form or
 * drawn with geoman (snapping to the zone's plots), a preview job started by POST and polled at /api/jobs/<id>, the
 * preview (plots, streets, replaced plots) drawn over the map with its metrics, and a commit.
 * Everything shown is built with textContent (no HTML from data). window.zpSubdivide exposes
 * the map and the preview for tests and the console. */
(function () {
  "use strict";

  var page = window.zp && zp.config("zp-subdivide");
  if (!page || !window.L || !L.PM) { return; }
  var root = page.root;
  var cfg = page.cfg;
  var T = cfg.text;
  var form = document.getElementById("zp-sd-form");
  var areaSelect = document.getElementById("zp-sd-area");
  var previewButton = document.getElementById("zp-sd-preview");
  var commitButton = document.getElementById("zp-sd-commit");
  var cancelButton = document.getElementById("zp-sd-cancel");
  var progressBar = document.getElementById("zp-sd-progress");
  var statusLine = document.getElementById("zp-sd-status");
  var state = { jobId: null, preview: null, drawn: null, polling: null };

  var fmt = zp.fmt, el = zp.el, clear = zp.clear, api = zp.api;
  function url(name, values) { return zp.url(cfg.urls, name, values); }
  function say(text, isError) {
    statusLine.textContent = text;
    statusLine.className = "zp-help" + (isError ? " zp-sd-error" : "");
  }

  // ------------------------------------------------------------------ the map
  var map = L.map("zp-sd-map", { zoomControl: false, maxZoom: 20, zoomSnap: 0.25, boxZoom: false });
  zp.leafletTexts(map, cfg.leaflet);
  var layers = {};
  cfg.layers.forEach(function (spec) {
    layers[spec.name] = L.geoJSON(null, {
      interactive: false, pmIgnore: true, snapIgnore: spec.name !== "plots",
      style: function (feature) {
        var style = Object.assign({}, spec.style);
        if (spec.name === "plots") { style.fillColor = cfg.plotColours[feature.properties.status]; }
        return style;
      },
      pointToLayer: function (feature, latlng) {
        return L.circleMarker(latlng, Object.assign({ radius: 6, pmIgnore: true, snapIgnore: true },
                                                    spec.style));
      }
    }).addTo(map);
  });
  function loadLayer(name) {
    return fetch(url("layer", { layer: name }) + "?limit=10000", { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : { features: [] }; })
      .then(function (data) {
        layers[name].clearLayers();
        layers[name].addData(data);
        return data;
      });
  }
  var expansion = {};
  Promise.all(cfg.layers.map(function (spec) { return loadLayer(spec.name); })).then(function () {
    layers.expansion.eachLayer(function (layer) {
      expansion[layer.feature.properties.exp_id] = layer;
    });
    focusArea();
    root.setAttribute("data-ready", "true");
  });
  function focusArea() {
    var layer = expansion[areaSelect.value];
    if (layer) { map.fitBounds(layer.getBounds(), { padding: [20, 20] }); }
    else if (layers.zone.getLayers().length) { map.fitBounds(layers.zone.getBounds()); }
  }
  areaSelect.addEventListener("change", function () {
    drawTools(!areaSelect.value);
    focusArea();
  });

  // ------------------------------------------------------------------ drawing an area
  map.pm.setLang("zp", cfg.geoman, "en");
  map.pm.setGlobalOptions({ snappable: true, snapDistance: 15, continueDrawing: false });
  function drawTools(on) {
    if (!on) { map.pm.removeControls(); return; }
    map.pm.addControls({
      position: "topleft", drawPolygon: true, drawRectangle: true, editMode: true,
      removalMode: true, drawMarker: false, drawCircleMarker: false, drawPolyline: false,
      drawCircle: false, drawText: false, dragMode: false, cutPolygon: false, rotateMode: false
    });
  }
  drawTools(!areaSelect.value);
  map.on("pm:create", function (e) {
    if (state.drawn) { map.removeLayer(state.drawn); }
    state.drawn = e.layer;
  });
  map.on("pm:remove", function (e) { if (e.layer === state.drawn) { state.drawn = null; } });

  // ------------------------------------------------------------------ the preview
  var previewGroup = L.geoJSON(null, {
    pmIgnore: true,
    style: function (feature) {
      var p = feature.properties;
      if (p.kind === "street") {
        return { color: p.existing ? "#555555" : "#d9480f", weight: p.existing ? 3 : 4,
                 opacity: 0.9 };
      }
      if (p.kind === "removed") {
        return { color: "#c62828", weight: 2, dashArray: "6 4", fill: false };
      }
      return { color: "#3a2a55", weight: 1.2, fillColor: p.in_range ? "#b8a9c9" : "#f0ad1e",
               fillOpacity: 0.6 };
    },
    onEachFeature: function (feature, layer) {
      layer.bindTooltip(function () { return tooltip(feature.properties); }, { sticky: true });
    }
  }).addTo(map);
  function tooltip(p) {
    var span = document.createElement("span");  // text, never HTML
    if (p.kind === "plot") {
      span.textContent = T.plot + " " + p.plot + " · " + Number(p.area_ha).toFixed(2) + " " +
        T.ha + " · " + T.frontage + " " + Math.round(p.frontage_m) + " " + T.m +
        (p.in_range ? "" : " · " + T.outOfRange);
    } else if (p.kind === "street") {
      span.textContent = (p.existing ? T.existingStreet : T.street) + " " + p.street_id +
        " · " + T.rightOfWay + " " + p.row_m + " " + T.m;
    } else {
      span.textContent = T.removed + " " + p.plot_id;
    }
    return span;
  }

  function formParams() {
    var params = {};
    Array.prototype.forEach.call(form.querySelectorAll("input[type=number]"), function (input) {
      if (input.value !== "") { params[input.name] = input.value; }
    });
    params.method = form.elements.method.value;
    params.keep_existing = form.elements.keep_existing.checked;
    return params;
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var body = { params: formParams() };
    if (areaSelect.value) { body.exp_id = areaSelect.value; }
    else if (state.drawn) { body.geometry = state.drawn.toGeoJSON(false).geometry; }
    else { say(T.drawFirst, true); return; }
    previewButton.disabled = true;
    commitButton.disabled = true;
    state.jobId = null;
    say(T.queued);
    api("POST", cfg.urls.preview, body).then(function (response) {
      if (response.status !== 202) {
        previewButton.disabled = false;
        say(T.failed + " " + (response.body.error || response.status), true);
        return;
      }
      poll(response.body.job_id);
    }, function () { previewButton.disabled = false; say(T.network, true); });
  });

  cancelButton.addEventListener("click", function () {
    if (state.running) { api("POST", url("cancel", { id: state.running })); }
  });

  function poll(jobId) {
    state.running = jobId;
    cancelButton.hidden = false;
    progressBar.hidden = false;
    progressBar.value = 0;
    api("GET", url("job", { id: jobId })).then(function (response) {
      var job = response.body;
      if (response.status !== 200) { finish(); say(T.failed + " " + job.error, true); return; }
      if (job.state === "queued" || job.state === "running") {
        progressBar.value = job.progress || 0;
        say(job.state === "queued" ? T.queued : (job.message || T.running));
        state.polling = setTimeout(function () { poll(jobId); }, 300);
        return;
      }
      finish();
      if (job.state === "cancelled") { say(T.cancelled); return; }
      if (job.state !== "done") { say(T.failed + " " + (job.error || job.state), true); return; }
      show(jobId, job.result.preview);
    }, function () { finish(); say(T.network, true); });
  }
  function finish() {
    state.running = null;
    cancelButton.hidden = true;
    progressBar.hidden = true;
    previewButton.disabled = false;
  }

  function show(jobId, preview) {
    state.jobId = jobId;
    state.preview = preview;
    previewGroup.clearLayers();
    previewGroup.addData(preview);
    previewGroup.bringToFront();
    if (previewGroup.getLayers().length) { map.fitBounds(previewGroup.getBounds()); }
    commitButton.disabled = false;
    say(T.ready);
    metricsTable(preview.metrics);
    var notes = document.getElementById("zp-sd-notes");
    clear(notes);
    (preview.warnings || []).forEach(function (text) { notes.appendChild(el("li", { text: text })); });
    document.getElementById("zp-sd-metrics").hidden = false;
  }

  function cell(key, value) {
    if (value === null || value === undefined) { return "–"; }
    if (key === "utilisation" || key === "frontage_share" || key.indexOf("deviation") === 0) {
      return (100 * value).toFixed(1) + " %";
    }
    return Number(value).toLocaleString(cfg.locale, { maximumFractionDigits: 3 });
  }
  function metricsTable(metrics) {
    var table = document.getElementById("zp-sd-table");
    clear(table);
    var methods = Object.keys(metrics.compare);
    var head = el("tr");
    head.appendChild(el("th", { text: "" }));
    methods.forEach(function (m) {
      head.appendChild(el("th", { class: m === metrics.method ? "zp-sd-chosen" : "",
                                  "data-method": m,
                                  text: m + (m === metrics.method ? " (" + T.chosen + ")" : "") }));
    });
    table.appendChild(head);
    cfg.metrics.forEach(function (row) {
      var tr = el("tr", { "data-metric": row[0] });
      tr.appendChild(el("th", { text: row[1] }));
      methods.forEach(function (m) {
        tr.appendChild(el("td", { class: m === metrics.method ? "zp-sd-chosen" : "",
                                  text: cell(row[0], metrics.compare[m][row[0]]) }));
      });
      table.appendChild(tr);
    });
  }

  // ------------------------------------------------------------------ the commit
  commitButton.addEventListener("click", function () {
    if (!state.jobId) { return; }
    commitButton.disabled = true;
    api("POST", cfg.urls.commit, { job_id: state.jobId }).then(function (response) {
      if (response.status !== 201) {
        say(T.notCommitted + " " + (response.body.error || response.status), true);
        return;
      }
      var done = response.body;
      state.jobId = null;
      state.committed = done;
      root.setAttribute("data-committed", String(done.plots.length));
      previewGroup.clearLayers();
      say(fmt(T.committed, { plots: done.plots.length, roads: done.roads.length,
                             removed: done.removed.length }));
      loadLayer("plots");
      loadLayer("roads");
    }, function () { commitButton.disabled = false; say(T.network, true); });
  });

  window.zpSubdivide = { map: map, state: state, layers: layers, preview: previewGroup };
}());
