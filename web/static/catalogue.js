/* Investors' catalogue (/plots) and plot page (/plots/<id>): Leaflet maps and the list,
   fed by the JSON API. No inline scripts (CSP); configuration comes from data attributes;
   every text goes in with textContent (zp.el). Needs zp.js; the catalogue also search.js
   and measure.js. The selected plot is in the URL (?plot=ID), so a shared link opens it. */
(function () {
  "use strict";

  var page = window.zp && window.zp.config("zp-catalogue");
  if (!page || !window.L) { return; }
  var root = page.root, cfg = page.cfg, T = cfg.labels;
  var el = window.zp.el, fmt = window.zp.fmt;
  var CONTEXT = {
    zone: { color: "#17324a", weight: 2, fill: false, dashArray: "6 4" },
    roads: { color: "#8a8f94", weight: 2 },
    rail_lines: { color: "#5b3a29", weight: 2.5, dashArray: "8 3" },
    power_lines: { color: "#c2410c", weight: 1.5 },
    water_mains: { color: "#1d75b3", weight: 1.5 }
  };
  var BROKEN = { closed: 1, under_repair: 1, not_commissioned: 1, restricted: 1 };
  var HIGHLIGHT = { color: "#e8590c", weight: 4, fillOpacity: 0.55 };
  var DEFAULT_STATUS = "available";

  // Leaflet inserts tooltip strings as HTML; stored names are user text, so pass a text node.
  function plainText(text) { return el("span", { text: String(text) }); }
  function number(v, digits) {
    return (v === null || v === undefined) ? "—" : Number(v).toLocaleString(undefined, {
      maximumFractionDigits: digits, minimumFractionDigits: digits });
  }
  function readyText(ready, waitsFor) {
    if (ready === "now") { return T.now; }
    if (!ready || ready === "unknown") {
      // never a bare "unknown": say which required services are missing
      var what = (waitsFor || []).map(function (u) { return T.utilities[u] || u; }).join(", ");
      return T.unknown + " (" + fmt(T.waits_for, { what: what || "?" }) + ")";
    }
    return ready;
  }
  function plotStyle(feature) {
    var colour = cfg.colours[feature.properties.status] || "#2ca02c";
    return { color: "#2f4f2f", weight: 1, fillColor: colour, fillOpacity: 0.45, className: "zp-plot" };
  }
  function assetStyle(name) {
    return function (feature) {
      var base = Object.assign({}, CONTEXT[name] || { color: "#555", weight: 1.5 });
      if (BROKEN[(feature.properties || {}).status]) {
        base.color = "#c92a2a"; base.dashArray = "4 4";
      }
      return base;
    };
  }
  function newMap(id) {
    var map = L.map(id, { zoomControl: true, attributionControl: !!cfg.tiles });
    if (cfg.tiles) {
      L.tileLayer(cfg.tiles, { attribution: cfg.attribution, maxZoom: 19 }).addTo(map);
    }
    map.setView([43.33, 76.85], 14);
    window.zp.localiseMap(map, cfg.leaflet);
    if (window.zpMeasure) { window.zpMeasure(map, T.measure); }
    return map;
  }
  /* GET a JSON answer; rejects with the server's error message */
  function getJSON(path) {
    return window.zp.api("GET", path).then(function (answer) {
      if (answer.status !== 200) { throw new Error(answer.body.error || String(answer.status)); }
      return answer.body;
    });
  }
  function layerUrl(name, query) {
    return cfg.layers_url.replace("__NAME__", name) + (query ? "?" + query : "");
  }
  function addContext(map, names, bbox) {
    names.forEach(function (name) {
      var q = "limit=2000" + (bbox ? "&bbox=" + bbox : "");
      getJSON(layerUrl(name, q)).then(function (fc) {
        var layer = L.geoJSON(fc, {
          style: assetStyle(name), interactive: name !== "zone",
          pointToLayer: function (f, latlng) {
            var broken = BROKEN[(f.properties || {}).status];
            return L.circleMarker(latlng, { radius: 6, color: broken ? "#c92a2a" : "#333",
              fillColor: broken ? "#ffa8a8" : "#ffd43b", fillOpacity: 0.9, weight: 2 });
          },
          onEachFeature: function (f, lyr) {
            var p = f.properties || {};
            if (name !== "zone") { lyr.bindTooltip(plainText((p.name || f.id) + (p.status ? " — " + p.status : ""))); }
          }
        }).addTo(map);
        layer.bringToBack();
      }).catch(function () { /* context layers are decoration */ });
    });
  }

  /* context layers as vector tiles: one request per tile whatever the store holds */
  function addContextTiles(map, names) {
    var styles = {};
    names.forEach(function (name) {
      var style = assetStyle(name);
      styles[name] = function (props) { return Object.assign(style({ properties: props }), { fill: false }); };
    });
    L.vectorGrid.protobuf(cfg.vector_tiles.replace("__layer__", names.join(",")), {
      rendererFactory: L.canvas.tile, interactive: false, vectorTileLayerStyles: styles,
      maxZoom: 20
    }).addTo(map);
  }

  // ------------------------------------------------------------------ the catalogue page
  function catalogue() {
    var form = document.getElementById("zp-filters");
    var table = document.getElementById("zp-plot-table");
    var tbody = table.querySelector("tbody");
    var count = document.getElementById("zp-count");
    var errorBox = document.getElementById("zp-list-error");
    var statusShown = form.querySelector(".zp-statuses-shown");
    var map = newMap("zp-cat-map");
    var byId = {};
    var rows = {};
    var selected = new URLSearchParams(location.search).get("plot");
    var plots = L.geoJSON(null, {
      style: plotStyle,
      onEachFeature: function (f, layer) {
        byId[f.id] = layer;
        layer.bindTooltip(plainText(f.id + " · " + number(f.properties.area_ha, 2) + " " + T.ha));
        layer.on("click", function () { if (!map.zpMeasuring) { select(f.id, "map"); } });
        layer.on("add", function () { layer.getElement().setAttribute("data-plot", f.id); });
      }
    }).addTo(map);
    addContextTiles(map, ["zone", "roads", "rail_lines"]);
    var search = window.zpSearch ? window.zpSearch(map, {
      url: cfg.search, labels: T.search,
      onResult: function (hit) {
        // a plot in the list is selected there; one the filters leave out stays outlined
        if (byId[hit.plot_id]) { search.outline.clearLayers(); }
        select(hit.plot_id, "search");
      }
    }) : null;

    /* the filters as query parameters; the status boxes become one comma list */
    function query(withPaging) {
      var params = new URLSearchParams();
      var statuses = [];
      new FormData(form).forEach(function (value, key) {
        value = String(value).trim();
        if (key === "status") { statuses.push(value); } else if (value !== "") { params.set(key, value); }
      });
      // the default (available only) stays out of the URL, as the server omits it
      if (statuses.length && statuses.join(",") !== DEFAULT_STATUS) { params.set("status", statuses.join(",")); }
      if (withPaging) { params.set("limit", "1000"); }
      return params;
    }
    function pageUrl() {
      var params = query(false);
      if (selected) { params.set("plot", selected); }
      var text = params.toString();
      return location.pathname + (text ? "?" + text : "");
    }
    function select(id, from) {
      if (selected && byId[selected]) { plots.resetStyle(byId[selected]); }
      if (selected && rows[selected]) { rows[selected].classList.remove("zp-selected"); rows[selected].removeAttribute("aria-selected"); }
      selected = id;
      var layer = byId[id], row = rows[id];
      if (layer) {
        layer.setStyle(HIGHLIGHT);
        layer.bringToFront();
        if (from === "list" || from === "url") {
          map.flyToBounds(layer.getBounds(), { maxZoom: 16, padding: [60, 60], duration: from === "url" ? 0 : 0.4 });
        }
      }
      if (row) {
        row.classList.add("zp-selected");
        row.setAttribute("aria-selected", "true");
        if (from !== "list") { row.scrollIntoView({ block: "nearest" }); }
      }
      root.setAttribute("data-selected", id);
      history.replaceState(null, "", pageUrl());
    }
    function cell(tr, text, cls) { tr.appendChild(el("td", { text: text, class: cls })); }
    function render(fc) {
      plots.clearLayers();
      byId = {}; rows = {};
      plots.addData(fc);
      tbody.textContent = "";
      fc.features.forEach(function (f) {
        var p = f.properties;
        var tr = el("tr", { "data-plot": f.id, tabindex: "0" }, [
          el("td", null, [el("a", { text: f.id, href: cfg.plot_url.replace("__ID__", encodeURIComponent(f.id)) })])
        ]);
        cell(tr, number(p.area_ha, 2), "num");
        var all = p.sectors.length === Object.keys(T.sectors).length;
        var sectors = all ? T.any_sector : p.sectors.map(function (s) { return T.sectors[s] || s; }).join(", ");
        cell(tr, sectors, "zp-sectors zp-col-opt");
        tr.lastChild.title = sectors;
        cell(tr, p.rail === null ? "—" : (p.rail ? T.yes : T.no), "zp-col-opt");
        cell(tr, p.power ? number(p.power_headroom_kw, 0) : "—",
          "num" + (p.power && p.power_headroom_kw < 0 ? " zp-neg" : ""));
        cell(tr, p.water ? number(p.water_headroom_m3d, 0) : "—",
          "num zp-col-opt" + (p.water && p.water_headroom_m3d < 0 ? " zp-neg" : ""));
        cell(tr, readyText(p.ready, p.waits_for));
        cell(tr, T.statuses[p.status] || p.status);
        tr.addEventListener("click", function (e) {
          if (e.target.tagName !== "A") { select(f.id, "list"); }
        });
        tr.addEventListener("keydown", function (e) {
          if (e.key === "Enter" || e.key === " ") { e.preventDefault(); select(f.id, "list"); }
        });
        rows[f.id] = tr;
        tbody.appendChild(tr);
      });
      count.textContent = fc.numberMatched === 0 ? T.none :
        fmt(T.matched, { n: fc.numberMatched }) + (fc.numberReturned < fc.numberMatched ?
          " · " + fmt(T.shown, { n: fc.numberReturned }) : "");
      root.setAttribute("data-matched", fc.numberMatched);
      root.setAttribute("data-returned", fc.numberReturned);
      if (selected && byId[selected]) {
        select(selected, "url");
      } else if (fc.features.length) {
        map.fitBounds(plots.getBounds(), { maxZoom: 16, padding: [20, 20] });
      }
      if (selected && !byId[selected]) { outlineOutside(selected); }
    }
    /* a selected plot the filters leave out (a shared link, a search hit): outlined only */
    function outlineOutside(id) {
      if (!search) { return; }
      getJSON(cfg.api + "/" + encodeURIComponent(id)).then(function (feature) {
        search.outline.clearLayers();
        search.outline.addData(feature);
        map.fitBounds(search.outline.getBounds(), { maxZoom: 16, padding: [60, 60], animate: false });
        root.setAttribute("data-selected", id);
      }).catch(function () { /* gone, or not for this reader: the list stays as it is */ });
    }
    function markSort() {
      var sort = form.elements.sort.value || "plot_id";
      table.querySelectorAll(".zp-sort").forEach(function (b) {
        var key = b.getAttribute("data-sort");
        var th = b.parentNode;
        th.removeAttribute("aria-sort");
        b.classList.remove("zp-asc", "zp-desc");
        if (sort === key) { th.setAttribute("aria-sort", "ascending"); b.classList.add("zp-asc"); }
        if (sort === "-" + key) { th.setAttribute("aria-sort", "descending"); b.classList.add("zp-desc"); }
      });
    }
    function markStatuses() {
      var names = [];
      form.querySelectorAll("input[name=status]:checked").forEach(function (box) {
        names.push(T.statuses[box.value] || box.value);
      });
      if (statusShown) { statusShown.textContent = names.join(", ") || T.statuses[DEFAULT_STATUS]; }
    }
    function updateDownloads(params) {
      var q = new URLSearchParams(params);
      q.delete("limit"); q.delete("sort"); q.delete("offset");
      // the list defaults to available plots; a download without status holds every status
      if (!q.get("status")) { q.set("status", DEFAULT_STATUS); }
      var text = q.toString();
      document.querySelectorAll(".zp-download").forEach(function (a) {
        a.href = cfg.export_url.replace("__FMT__", a.getAttribute("data-format")) + (text ? "?" + text : "");
      });
    }
    var loads = 0;  // answers to superseded loads (a second click on a sort) are dropped
    function load() {
      var seq = ++loads;
      var params = query(false);
      history.replaceState(null, "", pageUrl());
      updateDownloads(params);
      markSort();
      markStatuses();
      count.textContent = T.loading;
      errorBox.hidden = true;
      root.setAttribute("aria-busy", "true");
      return getJSON(cfg.api + "?" + query(true).toString()).then(function (fc) {
        if (seq === loads) { render(fc); }
      }).catch(function (err) {
        if (seq !== loads) { return; }
        plots.clearLayers(); tbody.textContent = "";
        count.textContent = fmt(T.matched, { n: 0 });
        errorBox.textContent = T.error + " " + err.message;
        errorBox.hidden = false;
        root.setAttribute("data-matched", "error");
      }).then(function () { if (seq === loads) { root.removeAttribute("aria-busy"); } });
    }
    form.addEventListener("submit", function (e) { e.preventDefault(); load(); });
    // the status list folds away on a click elsewhere, like a select
    var statusBox = document.getElementById("zp-statuses");
    document.addEventListener("click", function (e) {
      if (statusBox && statusBox.open && !statusBox.contains(e.target)) { statusBox.open = false; }
    });
    form.querySelectorAll("select, input[type=checkbox]").forEach(function (s) { s.addEventListener("change", load); });
    table.querySelectorAll(".zp-sort").forEach(function (b) {
      b.addEventListener("click", function () {
        var key = b.getAttribute("data-sort");
        var sort = form.elements.sort.value;
        form.elements.sort.value = sort === key ? "-" + key : key;
        load();
      });
    });
    load();
  }

  // ------------------------------------------------------------------ one plot's page
  function plotPage() {
    var id = root.getAttribute("data-plot-id");
    var map = newMap("zp-plot-map");
    getJSON(cfg.api + "/" + encodeURIComponent(id)).then(function (feature) {
      var own = L.geoJSON(feature, { style: function () { return HIGHLIGHT; } });
      var b = own.getBounds();
      var pad = 0.004;
      var bbox = [b.getWest() - pad, b.getSouth() - pad, b.getEast() + pad, b.getNorth() + pad]
        .map(function (v) { return v.toFixed(6); }).join(",");
      map.fitBounds(b.pad(0.6), { maxZoom: 18 });
      getJSON(cfg.api + "?limit=200&bbox=" + bbox).then(function (fc) {
        L.geoJSON({ type: "FeatureCollection", features: fc.features.filter(function (f) { return f.id !== id; }) }, {
          style: plotStyle,
          onEachFeature: function (f, layer) {
            layer.bindTooltip(plainText(f.id + " · " + number(f.properties.area_ha, 2) + " " + T.ha));
            layer.on("click", function () {
              if (!map.zpMeasuring) { location.href = cfg.plot_url.replace("__ID__", encodeURIComponent(f.id)); }
            });
          }
        }).addTo(map);
        own.bringToFront();
      }).catch(function () {});
      addContext(map, ["roads", "rail_lines", "power_lines", "water_mains", "rail_stations", "substations"], bbox);
      own.addTo(map);
      root.setAttribute("data-map-ready", "true");
    }).catch(function () { root.setAttribute("data-map-ready", "error"); });
  }

  if (root.getAttribute("data-page") === "plots") { catalogue(); }
  if (root.getAttribute("data-page") === "plot") { plotPage(); }
})();
