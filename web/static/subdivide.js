/* The subdivision page: the zone's layers from /api/layers, an area chosen in the form or
 * drawn with leaflet-draw, a preview job started by POST and polled at /api/jobs/<id>, the
 * preview (plots, streets, replaced plots) drawn over the map with its metrics, and a commit.
 * Everything shown is built with textContent (no HTML from data). window.zpSubdivide exposes
 * the map and the preview for tests and the console. */
(function () {
  "use strict";

  var root = document.getElementById("zp-subdivide");
  if (!root || !window.L || !L.Draw) { return; }
  var cfg = JSON.parse(root.getAttribute("data-config"));
  var T = cfg.text;
  var csrf = document.querySelector('meta[name="csrf-token"]').getAttribute("content");
  var form = document.getElementById("zp-sd-form");
  var areaSelect = document.getElementById("zp-sd-area");
  var previewButton = document.getElementById("zp-sd-preview");
  var commitButton = document.getElementById("zp-sd-commit");
  var progressBar = document.getElementById("zp-sd-progress");
  var statusLine = document.getElementById("zp-sd-status");
  var state = { jobId: null, preview: null, drawn: null, polling: null };

  function fmt(template, values) {
    return String(template).replace(/\{(\w+)\}/g, function (m, key) {
      return Object.prototype.hasOwnProperty.call(values, key) ? String(values[key]) : m;
    });
  }
  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) { node.setAttribute(key, attrs[key]); });
    if (text !== undefined) { node.textContent = text; }
    return node;
  }
  function clear(node) { while (node.firstChild) { node.removeChild(node.firstChild); } }
  function url(name, values) {
    var out = cfg.urls[name];
    Object.keys(values || {}).forEach(function (key) {
      out = out.replace("__" + key + "__", encodeURIComponent(values[key]));
    });
    return out;
  }
  function say(text, isError) {
    statusLine.textContent = text;
    statusLine.className = "zp-help" + (isError ? " zp-sd-error" : "");
  }
  function api(method, path, body) {
    var options = { method: method, credentials: "same-origin",
                    headers: { "Accept": "application/json" } };
    if (method !== "GET") {
      options.headers["X-CSRFToken"] = csrf;
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body || {});
    }
    return fetch(path, options).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        return { status: response.status, body: data };
      });
    });
  }

  // ------------------------------------------------------------------ the map
  var map = L.map("zp-sd-map", { maxZoom: 20, zoomSnap: 0.25, boxZoom: false });
  map.attributionControl.setPrefix(false);
  L.control.scale({ imperial: false, position: "bottomright" }).addTo(map);
  var layers = {};
  cfg.layers.forEach(function (spec) {
    layers[spec.name] = L.geoJSON(null, {
      interactive: false,
      style: function (feature) {
        var style = Object.assign({}, spec.style);
        if (spec.name === "plots") { style.fillColor = cfg.plotColours[feature.properties.status]; }
        return style;
      },
      pointToLayer: function (feature, latlng) {
        return L.circleMarker(latlng, Object.assign({ radius: 6 }, spec.style));
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
    drawControl.remove();
    if (!areaSelect.value) { drawControl.addTo(map); }
    focusArea();
  });

  // ------------------------------------------------------------------ drawing an area
  var drawnGroup = new L.FeatureGroup().addTo(map);
  var drawControl = new L.Control.Draw({
    position: "topleft",
    draw: { polygon: { allowIntersection: false, showArea: true }, rectangle: true,
            polyline: false, circle: false, marker: false, circlemarker: false },
    edit: { featureGroup: drawnGroup, remove: true }
  });
  if (!areaSelect.value) { drawControl.addTo(map); }
  map.on(L.Draw.Event.CREATED, function (e) {
    drawnGroup.clearLayers();
    drawnGroup.addLayer(e.layer);
    state.drawn = e.layer;
  });
  map.on(L.Draw.Event.DELETED, function () { state.drawn = null; });

  // ------------------------------------------------------------------ the preview
  var previewGroup = L.geoJSON(null, {
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
    else if (state.drawn) { body.geometry = state.drawn.toGeoJSON().geometry; }
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

  function poll(jobId) {
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
      if (job.state !== "done") { say(T.failed + " " + (job.error || job.state), true); return; }
      show(jobId, job.result.preview);
    }, function () { finish(); say(T.network, true); });
  }
  function finish() {
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
    (preview.warnings || []).forEach(function (text) { notes.appendChild(el("li", {}, text)); });
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
    head.appendChild(el("th", {}, ""));
    methods.forEach(function (m) {
      head.appendChild(el("th", { "class": m === metrics.method ? "zp-sd-chosen" : "",
                                  "data-method": m },
                          m + (m === metrics.method ? " (" + T.chosen + ")" : "")));
    });
    table.appendChild(head);
    cfg.metrics.forEach(function (row) {
      var tr = el("tr", { "data-metric": row[0] });
      tr.appendChild(el("th", {}, row[1]));
      methods.forEach(function (m) {
        tr.appendChild(el("td", { "class": m === metrics.method ? "zp-sd-chosen" : "" },
                          cell(row[0], metrics.compare[m][row[0]])));
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
