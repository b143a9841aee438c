/* The planner's workspace, part 2: the Leaflet map, its layers (data from /api/layers), the
 * plots near the view (vector tiles at every zoom, editable outlines from cfg.plotZoom on),
 * and the counts of plots by status. */
(function () {
  "use strict";

  var P = window.zpPl;
  if (!P) { return; }
  var cfg = P.cfg, T = P.T, specs = P.specs, state = P.state, el = P.el;

  var map = L.map("zp-planner-map", { zoomControl: false, maxZoom: 20, zoomSnap: 0.25,
                                      boxZoom: false });
  zp.leafletTexts(map, cfg.leaflet);
  if (cfg.tiles) {
    L.tileLayer(cfg.tiles.url, { attribution: cfg.tiles.attribution, maxZoom: 20 }).addTo(map);
  }
  P.map = map;
  P.groups = {};
  P.index = {};
  var groups = P.groups, index = P.index;
  var control = L.control.layers(null, null, { collapsed: true, position: "topright" });
  // Areas under the plots, then the plots' vector tiles (every plot, at any zoom and store
  // size), then the editable outlines and the networks in Leaflet's overlay pane.
  var UNDER = { zone: 1, expansion: 1, prot_zones: 1 };
  map.createPane("zpUnder").style.zIndex = 360;
  map.createPane("zpPlotTiles").style.zIndex = 380;

  P.styleFor = function (name, props) {
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
    var selected = state.selected;
    if (selected && selected.name === name && selected.id === String(props[spec.key])) {
      style = Object.assign(style, { color: "#0b5d8f", weight: spec.geometry === "Polygon" ? 4 : 7,
                                     opacity: 1, dashArray: null });
    }
    return style;
  };

  function tooltipText(name, props) {
    var spec = specs[name];
    if (name === "plots") {
      return props.plot_id + " — " + (cfg.plotStatuses[props.status] || props.status) +
        " · " + P.hectares(props.area_ha) + " " + T.ha;
    }
    var head = props.name || props[spec.key];
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
      // geoman: plot outlines may be reshaped and are snapped to when drawing; the rest not
      pmIgnore: name !== "plots", snapIgnore: name !== "plots",
      style: function (feature) { return P.styleFor(name, feature.properties); },
      pointToLayer: function (feature, latlng) {
        return L.circleMarker(latlng, Object.assign({ radius: spec.radius || 6, pmIgnore: true,
                                                      snapIgnore: true },
                                                    P.styleFor(name, feature.properties)));
      },
      onEachFeature: function (feature, layer) {
        var id = String(feature.properties[spec.key]);
        index[name][id] = layer;
        layer.zpName = name;
        if (interactive(name)) {
          layer.bindTooltip(function () {
            return el("span", { text: tooltipText(name, layer.feature.properties) });
          }, { sticky: true, direction: "top" });
          layer.on("click", function (e) {
            if (state.drawing || map.zpMeasuring) { return; }
            L.DomEvent.stopPropagation(e);
            P.select(name, id);
          });
        }
      }
    });
    groups[name] = group;
    if (spec.show) { group.addTo(map); }
    control.addOverlay(group, spec.label);
  });
  control.addTo(map);
  zp.layersTitle(control, cfg.leaflet);

  P.loadLayer = function (name) {
    return fetch(P.url("layer", { layer: name }) + "?limit=" + cfg.pageSize,
                 { credentials: "same-origin" })
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
  };

  // ------------------------------------------------------------------ plots near the view
  /* Plots come as vector tiles at every zoom; from cfg.plotZoom on, the plots in view (plus a
     margin) are also loaded as GeoJSON, one page of at most cfg.pageSize, so they can be
     selected, reshaped and moved along their lifecycle whatever the store holds. */
  var plotTiles = L.vectorGrid.protobuf(cfg.urls.tiles, {
    pane: "zpPlotTiles", rendererFactory: L.canvas.tile, interactive: false, maxZoom: 22,
    vectorTileLayerStyles: { plots: function (props) {
      // a block of plots too small to see (no plot_id): filled, no outline along its cell
      return Object.assign(P.styleFor("plots", props), props.plots ? { fill: true, stroke: false }
                                                                    : { fill: true });
    } }
  });
  P.tiles = plotTiles;
  var plotSeq = 0;
  var plotLoad = Promise.resolve(null);  // the latest load: what a superseded one waits for
  var hint = document.getElementById("zp-pl-zoom-hint");
  function keptPlots() {
    var keep = {};
    if (state.selected && state.selected.name === "plots") { keep[state.selected.id] = true; }
    if (state.editing) { keep[state.editing.id] = true; }
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
  P.loadPlots = function () {
    var seq = ++plotSeq;
    if (map.getZoom() < cfg.plotZoom) {
      // zoomed out in the middle of a drawing: the outlines stay to snap to until it ends
      if (!state.drawing) { syncPlots([]); }
      showPlotTiles(true);
      hint.hidden = false;
      P.root.setAttribute("data-plots", "tiles");
      // every call replaces plotLoad, so a stale answer below hands on the newest, never itself
      plotLoad = Promise.resolve(null);
      return plotLoad;
    }
    var b = map.getBounds().pad(0.25);
    var bbox = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map(function (v) {
      return v.toFixed(6); }).join(",");
    // 9 decimals (0.1 mm): corners snapped to are the stored ones, not 10 cm off
    plotLoad = fetch(P.url("layer", { layer: "plots" }) + "?limit=" + cfg.pageSize +
                     "&decimals=9&bbox=" + bbox,
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
        P.root.setAttribute("data-plots", complete ? "outlines" : "tiles");
        P.ensureOnTop();
        map.fire("zp:plots");
        return data;
      });
    return plotLoad;
  };
  var moveTimer = null;
  map.on("moveend", function () {
    clearTimeout(moveTimer);
    moveTimer = setTimeout(function () {
      P.loadPlots().catch(function (err) {
        P.showMessage("error", T.loadFailed, [String(err.message || err)]);
      });
    }, 120);
  });
  map.on("overlayadd overlayremove", function (e) {
    if (e.layer === groups.plots) { P.loadPlots(); }
  });

  P.replaceFeature = function (name, feature) {
    var id = String(feature.properties[specs[name].key]);
    var old = index[name][id];
    if (old) { groups[name].removeLayer(old); delete index[name][id]; }
    if (feature.geometry) { groups[name].addData(feature); }
    if (name === "plots") { P.ensureOnTop(); P.updateCounts(); plotTiles.redraw(); }
  };
  P.removeFeature = function (name, id) {
    var old = index[name][id];
    if (old) { groups[name].removeLayer(old); delete index[name][id]; }
    if (name === "plots") { P.updateCounts(); plotTiles.redraw(); }
  };
  P.ensureOnTop = function () {
    ["roads", "power_lines", "rail_lines", "gates", "rail_stations", "substations"]
      .forEach(function (name) {
        if (map.hasLayer(groups[name])) { groups[name].bringToFront(); }
      });
  };
  P.restyle = function (sel) {
    if (!sel) { return; }
    var layer = index[sel.name] && index[sel.name][sel.id];
    if (layer && layer.setStyle) { layer.setStyle(P.styleFor(sel.name, layer.feature.properties)); }
  };

  // ------------------------------------------------------------------ counts by status
  var counts = document.getElementById("zp-pl-counts");
  /* counts of the whole store (the map holds only the plots near the view) */
  P.updateCounts = function () {
    return Promise.all(cfg.plotStatusOrder.map(function (status) {
      return P.api("GET", cfg.urls.catalogue + "?limit=1&status=" + status).then(function (r) {
        return r.status === 200 ? r.body.numberMatched : "?";
      });
    })).then(function (n) {
      P.clear(counts);
      cfg.plotStatusOrder.forEach(function (status, i) {
        counts.appendChild(el("li", { "data-status": status }, [
          el("span", { class: "zp-pl-chip zp-pl-fill-" + status }),
          el("span", { class: "zp-pl-count", text: String(n[i]) }),
          el("span", { text: cfg.plotStatuses[status] })
        ]));
      });
    }, function () {});
  };
})();
