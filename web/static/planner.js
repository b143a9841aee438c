/* The planner's workspace: a Leaflet map of the zone (data from /api/layers), leaflet-draw
 * to outline parcels, live checks through /api/check, and writes through /api/plots and
 * /api/assets with the version each feature was loaded at (409 -> "reload").
 * No inline scripts (CSP); everything shown is built with textContent (no HTML from data).
 * window.zpPlanner exposes the map and the feature index for tests and the console. */
(function () {
  "use strict";

  var root = document.getElementById("zp-planner");
  if (!root || !window.L || !L.Draw) { return; }
  var cfg = JSON.parse(root.getAttribute("data-config"));
  var T = cfg.text;
  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var csrf = csrfMeta ? csrfMeta.getAttribute("content") : "";
  var specs = {};
  cfg.layers.forEach(function (spec) { specs[spec.name] = spec; });

  // ------------------------------------------------------------------ small helpers
  function fmt(template, values) {
    return String(template).replace(/\{(\w+)\}/g, function (m, key) {
      return Object.prototype.hasOwnProperty.call(values, key) ? String(values[key]) : m;
    });
  }
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      var value = attrs[key];
      if (value === null || value === undefined || value === false) { return; }
      if (key === "text") { node.textContent = value; }
      else if (key === "class") { node.className = value; }
      else if (key.slice(0, 2) === "on") { node.addEventListener(key.slice(2), value); }
      else { node.setAttribute(key, value === true ? "" : value); }
    });
    (children || []).forEach(function (child) {
      if (child === null || child === undefined) { return; }
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
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
  function hectares(value) {
    return (Math.round(Number(value || 0) * 100) / 100).toLocaleString(cfg.locale, {
      minimumFractionDigits: 2, maximumFractionDigits: 2 });
  }
  function round7(coords) {
    if (typeof coords[0] === "number") {
      return [Math.round(coords[0] * 1e7) / 1e7, Math.round(coords[1] * 1e7) / 1e7];
    }
    return coords.map(round7);
  }
  function geometryOf(layer) {
    var geometry = layer.toGeoJSON().geometry;
    geometry.coordinates = round7(geometry.coordinates);
    return geometry;
  }

  /* fetch JSON; resolves {status, body} for any HTTP answer, rejects on network failure */
  function api(method, path, body) {
    var options = { method: method, credentials: "same-origin",
                    headers: { "Accept": "application/json" } };
    if (method !== "GET") { options.headers["X-CSRFToken"] = csrf; }
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    return fetch(path, options).then(function (response) {
      if (response.status === 204) { return { status: 204, body: null }; }
      return response.json().catch(function () { return {}; }).then(function (data) {
        return { status: response.status, body: data };
      });
    });
  }

  // ------------------------------------------------------------------ the message on the map
  var messageBox = document.getElementById("zp-pl-message");
  var messageTimer = null;
  /* kind: ok | error | info; lines: extra sentences; actions: [{label, run}] */
  function showMessage(kind, title, lines, actions) {
    clearTimeout(messageTimer);
    clear(messageBox);
    messageBox.className = "zp-pl-message zp-pl-message-" + kind;
    messageBox.appendChild(el("button", { type: "button", class: "zp-pl-close",
      "aria-label": "×", text: "×", onclick: hideMessage }));
    messageBox.appendChild(el("p", { class: "zp-pl-message-title", text: title }));
    if (lines && lines.length) {
      messageBox.appendChild(el("ul", {}, lines.map(function (line) {
        return el("li", { text: line });
      })));
    }
    (actions || []).forEach(function (action) {
      messageBox.appendChild(el("button", { type: "button", class: "btn btn-sm btn-primary",
        text: action.label, onclick: function () { hideMessage(); action.run(); } }));
    });
    messageBox.hidden = false;
    if (kind === "ok") { messageTimer = setTimeout(hideMessage, 7000); }
  }
  function hideMessage() { messageBox.hidden = true; }
  function problemLines(body) {
    if (body && body.problems && body.problems.length) {
      return body.problems.map(function (p) { return p.reason || p.message; });
    }
    return [body && body.error ? body.error : String(body)];
  }
  function refused(response, reload) {
    var error = (response.body && response.body.error) || "";
    var versions = /now version (\d+), your copy is version (\d+)/.exec(error);
    if (response.status === 409 && versions) {
      showMessage("error", T.stale, [fmt(T.staleDetail, { now: versions[1], mine: versions[2] })],
                  reload ? [{ label: T.reload, run: reload }] : []);
    } else {
      showMessage("error", response.status === 422 ? T.not_saved : T.failed,
                  problemLines(response.body));
    }
  }
  function offline() { showMessage("error", T.network, []); }

  // ------------------------------------------------------------------ the map and its layers
  var map = L.map("zp-planner-map", { zoomControl: true, maxZoom: 20, zoomSnap: 0.25,
                                      boxZoom: false });
  map.attributionControl.setPrefix(false);
  if (cfg.tiles) {
    L.tileLayer(cfg.tiles.url, { attribution: cfg.tiles.attribution, maxZoom: 20 }).addTo(map);
  }
  L.control.scale({ imperial: false, position: "bottomright" }).addTo(map);

  var groups = {};
  var index = {};
  var control = L.control.layers(null, null, { collapsed: true, position: "topright" });
  // Areas under the plots, then the plots' vector tiles (every plot, at any zoom and store
  // size), then the editable outlines and the networks in Leaflet's overlay pane.
  var UNDER = { zone: 1, expansion: 1, prot_zones: 1 };
  map.createPane("zpUnder").style.zIndex = 360;
  map.createPane("zpPlotTiles").style.zIndex = 380;

  function styleFor(name, props) {
    var spec = specs[name];
    var style = Object.assign({}, spec.style);
    if (name === "plots") {
      style.fillColor = cfg.plotColours[props.status] || "#cccccc";
    } else if (name === "roads") {
      style.weight = cfg.roadWeights[props["class"]] || style.weight;
    }
    if (spec.asset && name !== "prot_zones") {
      Object.assign(style, cfg.statusStrokes[props.status] || {});
      if (spec.radius && props.status !== "operational") { style.fillColor = "#ffd6d6"; }
    }
    if (selected && selected.name === name && selected.id === String(props[spec.key])) {
      style = Object.assign(style, { color: "#0b5d8f", weight: spec.geometry === "Polygon" ? 4 : 7,
                                     opacity: 1, dashArray: null });
    }
    return style;
  }

  function tooltip(name, props) {
    var spec = specs[name];
    var head = props.name || props[spec.key];
    var span = document.createElement("span");  // text, never HTML: names are user input
    span.textContent = tooltipText(name, props, spec, head);
    return span;
  }

  function tooltipText(name, props, spec, head) {
    if (name === "plots") {
      return props.plot_id + " — " + (cfg.plotStatuses[props.status] || props.status) +
        " · " + hectares(props.area_ha) + " " + T.ha;
    }
    if (props.status) { return head + " — " + (cfg.assetStatuses[props.status] || props.status); }
    return String(head);
  }

  function interactive(name) { return name === "plots" || specs[name].asset; }

  cfg.layers.forEach(function (spec) {
    var name = spec.name;
    index[name] = {};
    var group = L.geoJSON(null, {
      pane: UNDER[name] ? "zpUnder" : "overlayPane",
      interactive: interactive(name),
      style: function (feature) { return styleFor(name, feature.properties); },
      pointToLayer: function (feature, latlng) {
        return L.circleMarker(latlng, Object.assign({ radius: spec.radius || 6 },
                                                    styleFor(name, feature.properties)));
      },
      onEachFeature: function (feature, layer) {
        var id = String(feature.properties[spec.key]);
        index[name][id] = layer;
        layer.zpName = name;
        if (interactive(name)) {
          layer.bindTooltip(function () { return tooltip(name, layer.feature.properties); },
                            { sticky: true, direction: "top" });
          layer.on("click", function (e) {
            if (drawing) { return; }
            L.DomEvent.stopPropagation(e);
            select(name, id);
          });
        }
      }
    });
    groups[name] = group;
    if (spec.show) { group.addTo(map); }
    control.addOverlay(group, spec.label);
  });
  control.addTo(map);

  function loadLayer(name) {
    return fetch(url("layer", { layer: name }) + "?limit=" + cfg.pageSize, { credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) { throw new Error(name + ": HTTP " + response.status); }
        return response.json();
      })
      .then(function (data) {
        groups[name].clearLayers();
        index[name] = {};
        groups[name].addData(data);
        return data;
      });
  }

  // ------------------------------------------------------------------ plots near the view
  /* Plots come as vector tiles at every zoom; from cfg.plotZoom on, the plots in view (plus a
     margin) are also loaded as GeoJSON, one page of at most cfg.pageSize, so they can be
     selected, reshaped and moved along their lifecycle whatever the store holds. */
  var plotTiles = L.vectorGrid.protobuf(cfg.urls.tiles, {
    pane: "zpPlotTiles", rendererFactory: L.canvas.tile, interactive: false, maxZoom: 22,
    vectorTileLayerStyles: { plots: function (props) {
      return Object.assign(styleFor("plots", props), { fill: true });
    } }
  });
  var plotSeq = 0;
  var plotLoad = Promise.resolve(null);  // the latest load: what a superseded one waits for
  var hint = document.getElementById("zp-pl-zoom-hint");
  function keptPlots() {
    var keep = {};
    if (selected && selected.name === "plots") { keep[selected.id] = true; }
    if (editing) { keep[editing.id] = true; }
    return keep;
  }
  function showPlotTiles(on) {
    on = on && map.hasLayer(groups.plots);
    if (on && !map.hasLayer(plotTiles)) { plotTiles.addTo(map); }
    if (!on && map.hasLayer(plotTiles)) { map.removeLayer(plotTiles); }
  }
  /* keep exactly the plots of `features` (and the selected or edited one) in the group */
  function syncPlots(features) {
    var keep = keptPlots();
    var fresh = {};
    features.forEach(function (f) { fresh[String(f.properties.plot_id)] = f; });
    Object.keys(index.plots).forEach(function (id) {
      var old = index.plots[id];
      var now = fresh[id];
      if (keep[id] || (now && now.properties.version === old.feature.properties.version)) {
        delete fresh[id];
        return;
      }
      groups.plots.removeLayer(old);
      delete index.plots[id];
    });
    groups.plots.addData(Object.keys(fresh).map(function (id) { return fresh[id]; }));
  }
  function loadPlots() {
    var seq = ++plotSeq;
    if (map.getZoom() < cfg.plotZoom) {
      syncPlots([]);
      showPlotTiles(true);
      hint.hidden = false;
      root.setAttribute("data-plots", "tiles");
      // every call replaces plotLoad, so a stale answer below hands on the newest, never itself
      plotLoad = Promise.resolve(null);
      return plotLoad;
    }
    var b = map.getBounds().pad(0.25);
    var bbox = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map(function (v) {
      return v.toFixed(6); }).join(",");
    plotLoad = fetch(url("layer", { layer: "plots" }) + "?limit=" + cfg.pageSize + "&bbox=" + bbox,
                     { credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) { throw new Error("plots: HTTP " + response.status); }
        return response.json();
      })
      .then(function (data) {
        if (seq !== plotSeq) { return plotLoad; }
        syncPlots(data.features);
        var complete = data.numberReturned >= data.numberMatched;
        // every plot in view is an outline now; tiles only while some are not
        showPlotTiles(!complete);
        hint.hidden = complete;
        root.setAttribute("data-plots", complete ? "outlines" : "tiles");
        ensureOnTop();
        map.fire("zp:plots");
        return data;
      });
    return plotLoad;
  }
  var moveTimer = null;
  map.on("moveend", function () {
    clearTimeout(moveTimer);
    moveTimer = setTimeout(function () {
      loadPlots().catch(function (err) { showMessage("error", T.loadFailed, [String(err.message || err)]); });
    }, 120);
  });
  map.on("overlayadd overlayremove", function (e) {
    if (e.layer === groups.plots) { loadPlots(); }
  });

  function replaceFeature(name, feature) {
    var id = String(feature.properties[specs[name].key]);
    var old = index[name][id];
    if (old) { groups[name].removeLayer(old); delete index[name][id]; }
    if (feature.geometry) { groups[name].addData(feature); }
    if (name === "plots") { ensureOnTop(); updateCounts(); plotTiles.redraw(); }
  }
  function removeFeature(name, id) {
    var old = index[name][id];
    if (old) { groups[name].removeLayer(old); delete index[name][id]; }
    if (name === "plots") { updateCounts(); plotTiles.redraw(); }
  }
  function ensureOnTop() {
    ["roads", "power_lines", "rail_lines", "gates", "rail_stations", "substations"]
      .forEach(function (name) {
        if (map.hasLayer(groups[name])) { groups[name].bringToFront(); }
      });
  }

  // ------------------------------------------------------------------ counts by status
  var counts = document.getElementById("zp-pl-counts");
  /* counts of the whole store (the map holds only the plots near the view) */
  function updateCounts() {
    return Promise.all(cfg.plotStatusOrder.map(function (status) {
      return api("GET", cfg.urls.catalogue + "?limit=1&status=" + status).then(function (r) {
        return r.status === 200 ? r.body.numberMatched : "?";
      });
    })).then(function (n) {
      clear(counts);
      cfg.plotStatusOrder.forEach(function (status, i) {
        counts.appendChild(el("li", { "data-status": status }, [
          el("span", { class: "zp-pl-chip zp-pl-fill-" + status }),
          el("span", { class: "zp-pl-count", text: String(n[i]) }),
          el("span", { text: cfg.plotStatuses[status] })
        ]));
      });
    }, function () {});
  }

  // ------------------------------------------------------------------ drawing and checking
  var drawn = new L.FeatureGroup().addTo(map);
  var draft = null;
  var drawing = false;
  var checkSeq = 0;
  var checkPanel = document.getElementById("zp-pl-check");
  var intro = document.getElementById("zp-pl-intro");
  var DRAFT = { color: "#0b5d8f", weight: 3, dashArray: "6 4", fillColor: "#7fb8dc",
                fillOpacity: 0.35 };
  var GOOD = { color: "#1b7f3b", weight: 3, fillColor: "#5cc47a", fillOpacity: 0.45, dashArray: null };
  var BAD = { color: "#c62828", weight: 3, fillColor: "#e53935", fillOpacity: 0.4, dashArray: "8 5" };
  var shape = { shapeOptions: DRAFT };

  /* outline in red the plots and protection zones a drawing collides with */
  var flagged = [];
  function highlight(problems) {
    unflag();
    (problems || []).forEach(function (p) {
      var name = p.code === "overlaps_plot" ? "plots"
        : p.code === "overlaps_protection" ? "prot_zones" : null;
      if (!name) { return; }
      p.ids.forEach(function (id) {
        var layer = index[name][id];
        if (!layer) { return; }
        layer.setStyle({ color: "#c62828", weight: 4, dashArray: null, opacity: 1 });
        flagged.push({ name: name, id: id });
      });
    });
  }
  function unflag() {
    var old = flagged;
    flagged = [];
    old.forEach(function (f) { restyle(f); });
  }

  var drawControl = new L.Control.Draw({
    position: "topleft",
    draw: {
      polygon: Object.assign({ allowIntersection: true, showArea: false, metric: true }, shape),
      rectangle: Object.assign({ showArea: false, metric: true }, shape),
      polyline: false, circle: false, circlemarker: false, marker: false
    },
    edit: false
  });
  map.addControl(drawControl);

  map.on(L.Draw.Event.DRAWSTART, function () {
    drawing = true;
    hideMessage();
    discardDraft();
    endEdit(true);
  });
  map.on(L.Draw.Event.DRAWSTOP, function () { drawing = false; });
  map.on(L.Draw.Event.CREATED, function (e) {
    drawing = false;
    draft = e.layer;
    draft.setStyle(DRAFT);
    drawn.addLayer(draft);
    if (draft.editing) {
      draft.editing.enable();
      draft.on("edit", function () { scheduleCheck(); });
    }
    deselect();
    runCheck();
  });

  var checkTimer = null;
  function scheduleCheck() {
    clearTimeout(checkTimer);
    checkTimer = setTimeout(runCheck, 250);
  }

  function runCheck() {
    if (!draft) { return; }
    var seq = ++checkSeq;
    renderCheck({ pending: true });
    api("POST", cfg.urls.check, { geometry: geometryOf(draft) }).then(function (response) {
      if (seq !== checkSeq || !draft) { return; }
      if (response.status !== 200) {
        renderCheck({ error: response.body });
        showMessage("error", T.invalid, problemLines(response.body));
        return;
      }
      var result = response.body;
      renderCheck({ result: result });
      draft.setStyle(result.valid ? GOOD : BAD);
      highlight(result.problems);
      if (result.valid) {
        showMessage("ok", T.valid, [T.area + ": " + hectares(result.area_ha) + " " + T.ha]);
      } else {
        showMessage("error", T.invalid, result.problems.map(function (p) { return p.message; }));
      }
    }, function () { if (seq === checkSeq) { offline(); } });
  }

  function explainList(lines) {
    return el("ul", { class: "zp-pl-explain" }, lines.map(function (line) {
      var cut = line.indexOf(": ");
      if (cut > 0 && cut < 40) {
        return el("li", {}, [el("strong", { text: line.slice(0, cut) }), ": " + line.slice(cut + 2)]);
      }
      return el("li", { text: line });
    }));
  }

  function renderCheck(state) {
    clear(checkPanel);
    checkPanel.hidden = false;
    intro.hidden = true;
    checkPanel.appendChild(el("h2", { text: T.drawn }));
    if (state.pending && !checkPanel.zpLast) {
      checkPanel.appendChild(el("p", { class: "zp-help", text: T.checking }));
      return;
    }
    var result = state.result || checkPanel.zpLast;
    if (state.error) {
      checkPanel.appendChild(el("div", { class: "zp-pl-verdict zp-pl-bad" }, [
        el("p", { text: T.invalid }), el("ul", {}, problemLines(state.error).map(function (l) {
          return el("li", { text: l });
        }))]));
    }
    if (!result) { return; }
    checkPanel.zpLast = result;
    checkPanel.appendChild(el("div", { class: "zp-pl-area" }, [
      el("span", { class: "zp-pl-area-value", id: "zp-pl-area", text: hectares(result.area_ha) }),
      el("span", { class: "zp-pl-area-unit", text: " " + T.ha })
    ]));
    var verdict = el("div", { class: "zp-pl-verdict " + (result.valid ? "zp-pl-good" : "zp-pl-bad"),
                              id: "zp-pl-verdict" },
                     [el("p", { text: result.valid ? T.valid : T.invalid })]);
    if (!result.valid) {
      verdict.appendChild(el("ul", { class: "zp-pl-problems" }, result.problems.map(function (p) {
        return el("li", { "data-code": p.code, text: p.message });
      })));
    }
    if (result.exp_id) {
      checkPanel.appendChild(facts([[T.expansion, result.exp_id]]));
    }
    checkPanel.appendChild(verdict);
    if (result.warnings && result.warnings.length) {
      checkPanel.appendChild(el("div", { class: "zp-pl-verdict zp-pl-warn" }, [
        el("p", { text: T.warnings }),
        el("ul", {}, result.warnings.map(function (w) { return el("li", { text: w.message }); }))
      ]));
    }
    if (result.explain && result.explain.length) {
      checkPanel.appendChild(el("h3", { text: T.servicing }));
      checkPanel.appendChild(explainList(result.explain));
    }
    var buttons = el("div", { class: "zp-pl-buttons" }, [
      el("button", { type: "button", id: "zp-pl-save", class: "btn btn-primary",
                     disabled: !result.valid || state.pending, text: T.save, onclick: saveDraft }),
      el("button", { type: "button", id: "zp-pl-discard", class: "btn btn-outline-secondary",
                     text: T.discard, onclick: function () { discardDraft(); hideMessage(); } })
    ]);
    checkPanel.appendChild(buttons);
  }

  function discardDraft() {
    if (draft) {
      if (draft.editing) { draft.editing.disable(); }
      drawn.removeLayer(draft);
    }
    draft = null;
    unflag();
    checkSeq++;
    checkPanel.hidden = true;
    checkPanel.zpLast = null;
    intro.hidden = !!selected;
  }

  function saveDraft() {
    if (!draft) { return; }
    var button = document.getElementById("zp-pl-save");
    if (button) { button.disabled = true; }
    var body = { type: "Feature", geometry: geometryOf(draft), properties: {} };
    api("POST", cfg.urls.plots, body).then(function (response) {
      if (response.status !== 201) {
        refused(response);
        if (button) { button.disabled = false; }
        return;
      }
      var feature = response.body;
      discardDraft();
      replaceFeature("plots", feature);
      select("plots", feature.id);
      showMessage("ok", fmt(T.saved, { id: feature.id }),
                  [T.area + ": " + hectares(feature.properties.area_ha) + " " + T.ha]);
    }, function () { if (button) { button.disabled = false; } offline(); });
  }

  // ------------------------------------------------------------------ selection
  var selected = null;
  var selPanel = document.getElementById("zp-pl-selected");

  function select(name, id) {
    endEdit(true);
    var previous = selected;
    selected = { name: name, id: String(id) };
    restyle(previous);
    restyle(selected);
    var layer = index[name][selected.id];
    if (layer && layer.bringToFront && name !== "plots") { layer.bringToFront(); }
    intro.hidden = true;
    renderSelected();
  }
  function deselect() {
    var previous = selected;
    selected = null;
    restyle(previous);
    selPanel.hidden = true;
    intro.hidden = !!draft;
  }
  function restyle(sel) {
    if (!sel) { return; }
    var layer = index[sel.name] && index[sel.name][sel.id];
    if (layer && layer.setStyle) { layer.setStyle(styleFor(sel.name, layer.feature.properties)); }
  }
  map.on("click", function (e) {
    if (drawing || editing) { return; }
    if (map.getZoom() < cfg.plotZoom && map.hasLayer(groups.plots)) { pickPlot(e.latlng); return; }
    if (selected) { deselect(); }
  });
  /* a plot drawn only as tiles: ask the server which it is, zoom to it and select it */
  function pickPlot(latlng) {
    var query = "at=" + latlng.lng.toFixed(7) + "," + latlng.lat.toFixed(7) +
      "&zoom=" + Math.round(map.getZoom()) + "&layers=plots";
    return api("GET", cfg.urls.pick + "?" + query).then(function (response) {
      var found = response.body;
      if (response.status !== 200 || !found || !found.id) { if (selected) { deselect(); } return; }
      var bb = found.bbox;
      var tries = 0;
      function selectWhenLoaded() {
        if (index.plots[found.id]) { select("plots", found.id); }
        else if (tries++ < 3) { map.once("zp:plots", selectWhenLoaded); }
      }
      map.once("zp:plots", selectWhenLoaded);
      map.fitBounds([[bb[1], bb[0]], [bb[3], bb[2]]],
                    { maxZoom: Math.max(cfg.plotZoom + 2, map.getZoom()), animate: false });
    }, offline);
  }

  function badge(name, status) {
    var label = name === "plots" ? cfg.plotStatuses[status] : cfg.assetStatuses[status];
    return el("span", { class: "zp-pl-badge zp-pl-status-" + status, text: label || status });
  }

  function facts(rows) {
    var dl = el("dl", { class: "zp-pl-facts" });
    rows.forEach(function (row) {
      if (row[1] === null || row[1] === undefined || row[1] === "") { return; }
      dl.appendChild(el("dt", { text: row[0] }));
      dl.appendChild(el("dd", { text: String(row[1]) }));
    });
    return dl;
  }

  function renderSelected() {
    var layer = selected && index[selected.name][selected.id];
    if (!layer) { deselect(); return; }
    var name = selected.name;
    var props = layer.feature.properties;
    clear(selPanel);
    selPanel.hidden = false;
    var spec = specs[name];
    selPanel.appendChild(el("p", { class: "zp-pl-kicker", text: spec.noun }));
    selPanel.appendChild(el("h2", { id: "zp-pl-title" }, [
      String(props.name || props[spec.key]) + " ", badge(name, props.status)]));
    if (name === "plots") { renderPlot(props); } else { renderAsset(name, props); }
    selPanel.appendChild(el("p", { class: "zp-pl-more" }, [
      el("a", { href: url("feature", { layer: name, id: selected.id }), text: T.details })]));
  }

  function renderPlot(props) {
    selPanel.appendChild(facts([
      [T.area, hectares(props.area_ha) + " " + T.ha], [T.cadastre, props.cadastre],
      [T.expansion, props.exp_id], [T.version, props.version]
    ]));
    var moves = cfg.transitions[props.status] || [];
    var actions = el("div", { class: "zp-pl-actions" });
    if (moves.length) {
      actions.appendChild(el("p", { class: "zp-pl-label", text: T.moveTo }));
      var row = el("div", { class: "zp-pl-buttons" });
      moves.forEach(function (status) {
        row.appendChild(el("button", { type: "button", class: "btn btn-sm zp-pl-move",
          "data-status": status, text: "→ " + cfg.plotStatuses[status],
          onclick: function () { movePlot(props.plot_id, status); } }));
      });
      actions.appendChild(row);
    } else {
      actions.appendChild(el("p", { class: "zp-help", text: T.noMoves }));
    }
    var tools = el("div", { class: "zp-pl-buttons" });
    if (cfg.reshape.indexOf(props.status) >= 0) {
      tools.appendChild(el("button", { type: "button", id: "zp-pl-edit",
        class: "btn btn-sm btn-outline-primary", text: T.editOutline,
        onclick: function () { startEdit(props.plot_id); } }));
    }
    if (cfg.deletable.indexOf(props.status) >= 0) {
      tools.appendChild(el("button", { type: "button", id: "zp-pl-delete",
        class: "btn btn-sm btn-outline-danger", text: T["delete"],
        onclick: function (e) { confirmDelete(e.target, props.plot_id); } }));
    }
    actions.appendChild(tools);
    selPanel.appendChild(actions);
    var box = el("div", { class: "zp-pl-servicing", id: "zp-pl-servicing" }, [
      el("h3", { text: T.servicingPlot }), el("p", { class: "zp-help", text: T.loading })]);
    selPanel.appendChild(box);
    var asked = selected.id;
    api("GET", url("servicing", { id: props.plot_id })).then(function (response) {
      if (!selected || selected.id !== asked) { return; }
      box.removeChild(box.lastChild);
      if (response.status === 200 && response.body.explain.length) {
        box.appendChild(explainList(response.body.explain));
      } else {
        box.appendChild(el("p", { class: "zp-help", text: T.noServicing }));
      }
    }, function () {});
  }

  function reloadAndSelect(name, id) {
    return function () {
      (name === "plots" ? forgetPlot(id) : loadLayer(name)).then(function () {
        if (name === "plots") { updateCounts(); ensureOnTop(); }
        if (index[name][id]) { select(name, id); } else { deselect(); }
        showMessage("info", T.reloaded, []);
      }, function (err) { showMessage("error", T.loadFailed, [String(err)]); });
    };
  }

  /* drop our copy of a plot, then load the view's plots again (the current version comes back) */
  function forgetPlot(id) {
    var old = index.plots[id];
    if (old) { groups.plots.removeLayer(old); delete index.plots[id]; }
    if (selected && selected.id === id) { selected = null; }
    return loadPlots();
  }

  function movePlot(id, status, confirmed) {
    var props = index.plots[id].feature.properties;
    var body = { version: props.version, status: status };
    if (confirmed) { body.confirm = true; }
    api("PATCH", url("plot", { id: id }), body)
      .then(function (response) {
        if (response.status === 409 && response.body && response.body.field === "confirm") {
          // publishing a plot without road or water: show why, publish only when asked again
          showMessage("error", fmt(T.publishGaps, { id: id }), problemLines(response.body),
                      [{ label: T.publishAnyway, run: function () { movePlot(id, status, true); } }]);
          return;
        }
        if (response.status !== 200) { refused(response, reloadAndSelect("plots", id)); return; }
        replaceFeature("plots", response.body);
        select("plots", id);
        showMessage("ok", fmt(T.moved, { id: id, status: cfg.plotStatuses[status] }), []);
      }, offline);
  }

  function confirmDelete(button, id) {
    if (!button.classList.contains("zp-pl-armed")) {
      button.classList.add("zp-pl-armed", "btn-danger");
      button.classList.remove("btn-outline-danger");
      button.textContent = fmt(T.confirmDelete, { id: id });
      return;
    }
    var props = index.plots[id].feature.properties;
    api("DELETE", url("plot", { id: id }) + "?version=" + encodeURIComponent(props.version))
      .then(function (response) {
        if (response.status !== 204) {
          renderSelected();
          refused(response, reloadAndSelect("plots", id));
          return;
        }
        deselect();
        removeFeature("plots", id);
        showMessage("ok", fmt(T.deleted, { id: id }), []);
      }, offline);
  }

  // ------------------------------------------------------------------ reshaping a plot
  var editing = null;  // {id, layer, feature}

  function startEdit(id) {
    var layer = index.plots[id];
    if (!layer || !layer.editing) { return; }
    hideMessage();
    discardDraft();
    editing = { id: id, layer: layer, feature: JSON.parse(JSON.stringify(layer.feature)) };
    layer.unbindTooltip();
    layer.editing.enable();
    layer.on("edit", onEdited);
    renderEditPanel(null);
  }
  function onEdited() {
    if (!editing) { return; }
    clearTimeout(checkTimer);
    checkTimer = setTimeout(checkEdit, 250);
  }
  function checkEdit() {
    if (!editing) { return; }
    var seq = ++checkSeq;
    var body = { geometry: geometryOf(editing.layer), exclude_plot_id: editing.id };
    api("POST", cfg.urls.check, body).then(function (response) {
      if (!editing || seq !== checkSeq) { return; }
      if (response.status === 200) {
        renderEditPanel(response.body);
        highlight(response.body.problems);
        if (!response.body.valid) {
          showMessage("error", T.invalid,
                      response.body.problems.map(function (p) { return p.message; }));
        } else { hideMessage(); }
      } else { showMessage("error", T.invalid, problemLines(response.body)); }
    }, offline);
  }
  function renderEditPanel(result) {
    clear(selPanel);
    selPanel.hidden = false;
    selPanel.appendChild(el("p", { class: "zp-pl-kicker", text: specs.plots.noun }));
    selPanel.appendChild(el("h2", { id: "zp-pl-title", text: T.editOutline + " — " + editing.id }));
    selPanel.appendChild(el("p", { class: "zp-help", text: T.editing }));
    if (result) {
      selPanel.appendChild(el("div", { class: "zp-pl-area" }, [
        el("span", { class: "zp-pl-area-value", id: "zp-pl-edit-area",
                     text: hectares(result.area_ha) }),
        el("span", { class: "zp-pl-area-unit", text: " " + T.ha })]));
      var verdict = el("div", { class: "zp-pl-verdict " + (result.valid ? "zp-pl-good" : "zp-pl-bad") },
                       [el("p", { text: result.valid ? T.valid : T.invalid })]);
      if (!result.valid) {
        verdict.appendChild(el("ul", {}, result.problems.map(function (p) {
          return el("li", { text: p.message });
        })));
      }
      selPanel.appendChild(verdict);
    }
    selPanel.appendChild(el("div", { class: "zp-pl-buttons" }, [
      el("button", { type: "button", id: "zp-pl-save-outline", class: "btn btn-primary",
                     disabled: result ? !result.valid : false, text: T.saveOutline,
                     onclick: saveEdit }),
      el("button", { type: "button", id: "zp-pl-cancel-edit", class: "btn btn-outline-secondary",
                     text: T.cancel, onclick: function () { endEdit(true); } })
    ]));
  }
  function endEdit(restore) {
    if (!editing) { return; }
    var state = editing;
    editing = null;
    checkSeq++;
    unflag();
    state.layer.off("edit", onEdited);
    if (state.layer.editing) { state.layer.editing.disable(); }
    if (restore) {
      replaceFeature("plots", state.feature);
      if (selected && selected.id === state.id) { restyle(selected); renderSelected(); }
    }
  }
  function saveEdit() {
    if (!editing) { return; }
    var state = editing;
    var body = { version: state.feature.properties.version, geometry: geometryOf(state.layer) };
    api("PATCH", url("plot", { id: state.id }), body).then(function (response) {
      if (response.status !== 200) {
        refused(response, function () { endEdit(false); reloadAndSelect("plots", state.id)(); });
        return;
      }
      endEdit(false);
      replaceFeature("plots", response.body);
      select("plots", state.id);
      showMessage("ok", fmt(T.outlineSaved, { id: state.id,
                                              area: hectares(response.body.properties.area_ha) }), []);
    }, offline);
  }

  // ------------------------------------------------------------------ assets
  function renderAsset(name, props) {
    selPanel.appendChild(facts([[T.since, props.since], [T.due, props.due],
                                [T.version, props.version]]));
    if (props.note) { selPanel.appendChild(el("p", { class: "zp-pl-note", text: props.note })); }
    var status = el("select", { id: "zp-pl-asset-status", class: "form-select form-select-sm",
                                name: "status" },
      cfg.assetStatusOrder.map(function (code) {
        return el("option", { value: code, selected: code === props.status,
                              text: cfg.assetStatuses[code] });
      }));
    // the date the status changed: today unless the planner records an earlier change
    var changedOn = el("input", { type: "date", id: "zp-pl-asset-since",
                                  class: "form-control form-control-sm", value: today(),
                                  max: today() });
    var due = el("input", { type: "date", id: "zp-pl-asset-due", class: "form-control form-control-sm",
                            value: props.due || "" });
    var note = el("textarea", { id: "zp-pl-asset-note", class: "form-control form-control-sm",
                                rows: "3", maxlength: "1000" });
    note.value = props.note || "";
    var form = el("form", { class: "zp-pl-asset-form", id: "zp-pl-asset-form" }, [
      el("label", { for: "zp-pl-asset-status", text: T.status }), status,
      el("label", { for: "zp-pl-asset-since", text: T.changedOn }), changedOn,
      el("label", { for: "zp-pl-asset-due", text: T.due }), due,
      el("label", { for: "zp-pl-asset-note", text: T.note }), note,
      el("div", { class: "zp-pl-buttons" }, [
        el("button", { type: "submit", id: "zp-pl-asset-save", class: "btn btn-primary btn-sm",
                       text: T.saveAsset })])
    ]);
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var body = { version: props.version };
      if (status.value !== props.status) { body.status = status.value; }
      if (status.value !== props.status || changedOn.dataset.edited) {
        body.since = changedOn.value || today();
      }
      if ((due.value || null) !== (props.due || null)) { body.due = due.value || null; }
      if ((note.value.trim() || null) !== (props.note || null)) { body.note = note.value.trim() || null; }
      saveAsset(name, String(props[specs[name].key]), body);
    });
    changedOn.addEventListener("input", function () { changedOn.dataset.edited = "1"; });
    selPanel.appendChild(form);
  }
  function today() {
    var d = new Date();
    return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 10);
  }

  function saveAsset(name, id, body) {
    api("PATCH", url("asset", { layer: name, id: id }), body).then(function (response) {
      if (response.status !== 200) { refused(response, reloadAndSelect(name, id)); return; }
      replaceFeature(name, response.body);
      select(name, id);
      showMessage("ok", fmt(T.assetSaved, { id: id,
        status: cfg.assetStatuses[response.body.properties.status] }), []);
    }, offline);
  }

  // ------------------------------------------------------------------ start
  var ready = Promise.all(cfg.layers.filter(function (spec) { return spec.name !== "plots"; })
    .map(function (spec) {
      return loadLayer(spec.name).catch(function (err) {
        showMessage("error", T.loadFailed, [String(err.message || err)]);
        return null;
      });
    })).then(function () {
    var bounds = L.latLngBounds([]);
    ["zone", "expansion"].forEach(function (name) {
      if (groups[name].getLayers().length) { bounds.extend(groups[name].getBounds()); }
    });
    if (bounds.isValid()) { map.fitBounds(bounds, { padding: [16, 16], animate: false }); }
    else { map.setView([43.33, 76.87], 14, { animate: false }); }
    return loadPlots().catch(function (err) {
      showMessage("error", T.loadFailed, [String(err.message || err)]);
    });
  }).then(function () {
    ensureOnTop();
    updateCounts();
    root.setAttribute("data-ready", "true");
  });

  window.zpPlanner = { map: map, groups: groups, index: index, ready: ready, tiles: plotTiles,
                       select: select, draft: function () { return draft; } };
})();
