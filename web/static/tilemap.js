/* The zone map's layers as vector tiles (Leaflet.VectorGrid on canvas): one request per tile
 * for every layer (/tiles/zone,expansion,.../{z}/{x}/{y}.mvt, one MVT layer per store layer,
 * drawn bottom first), styled by status like the rest of the site. The layer control hides
 * and shows layers by restyling. A click asks the server what lies under the pointer among
 * the layers shown (/map/features?at=...), so popups come from the access policy and the page
 * never holds the data; the popup HTML is built and escaped by the server. Plots too small
 * to see at a zoom come as blocks (status and a count, no plot_id); a click on one opens a
 * small popup "N plots here" whose button zooms in towards the click.
 * Layers whose spec has pick: false (the zone boundary: the frame every click falls inside)
 * never answer a click. The page also gets a plot search box (search.js), a measuring tool
 * (measure.js) and a print button; on small screens the layer list starts collapsed.
 * window.zpTileMap(map, config) is called by the page's folium element; it returns (and keeps
 * as window.zpMapTiles, for tests and the console) {grid, shown(), pick(latlng), search, measure}. */
(function () {
  "use strict";

  function styleFor(cfg, spec, props) {
    var style = Object.assign({}, spec.style);
    if (spec.geometry === "Polygon") { style.fill = true; }
    if (spec.geometry === "LineString") { style.fill = false; }
    if (spec.name === "plots") {
      style.fillColor = cfg.plotColours[props.status] || "#cccccc";
      // a block of plots too small to see: no outline, which would draw its cell's edges
      if (props.plots) { style.stroke = false; }
    } else if (spec.name === "roads") {
      style.weight = cfg.roadWeights[props["class"]] || style.weight;
    }
    if (spec.asset && spec.name !== "prot_zones") {
      Object.assign(style, cfg.statusStrokes[props.status] || {});
      if (spec.radius && props.status !== "operational") { style.fillColor = "#ffd6d6"; }
    }
    if (spec.radius) { style.radius = spec.radius; style.fill = true; }
    return style;
  }

  /* a printer drawn in SVG (no icon font; fonts lack the print symbol) */
  function printerIcon() {
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("width", "18");
    svg.setAttribute("height", "18");
    svg.setAttribute("aria-hidden", "true");
    var path = document.createElementNS(ns, "path");
    path.setAttribute("d", "M7 9V3h10v6M7 17H4v-7h16v7h-3M7 14h10v7H7z");
    path.setAttribute("fill", "none");
    path.setAttribute("stroke", "currentColor");
    path.setAttribute("stroke-width", "1.8");
    path.setAttribute("stroke-linejoin", "round");
    svg.appendChild(path);
    return svg;
  }

  /* a print button: the legend opens, the map fits the page, the browser prints (or saves a PDF) */
  function addPrint(map, label) {
    var control = L.control({ position: "topleft" });
    control.onAdd = function () {
      var box = L.DomUtil.create("div", "leaflet-bar zp-print");
      var button = L.DomUtil.create("a", "zp-print-button", box);
      button.href = "#";
      button.setAttribute("role", "button");
      button.setAttribute("title", label);
      button.setAttribute("aria-label", label);
      button.appendChild(printerIcon());
      L.DomEvent.disableClickPropagation(box);
      L.DomEvent.on(button, "click", function (e) {
        L.DomEvent.preventDefault(e);
        window.dispatchEvent(new Event("beforeprint"));
        map.invalidateSize({ animate: false });
        window.print();
      });
      return box;
    };
    control.addTo(map);
    window.addEventListener("beforeprint", function () { map.invalidateSize({ animate: false }); });
    window.addEventListener("afterprint", function () { map.invalidateSize({ animate: false }); });
  }

  window.zpTileMap = function (map, cfg) {
    var hidden = {};
    var styles = {};
    cfg.layers.forEach(function (spec) {
      if (!spec.show) { hidden[spec.name] = true; }
      styles[spec.name] = function (props) {
        return hidden[spec.name] ? [] : styleFor(cfg, spec, props);
      };
    });
    var names = cfg.layers.map(function (spec) { return spec.name; });
    var grid = L.vectorGrid.protobuf(cfg.tiles.replace("__layer__", names.join(",")), {
      rendererFactory: L.canvas.tile,
      vectorTileLayerStyles: styles,
      interactive: false,  // clicks are answered by the server (see pick)
      maxZoom: cfg.maxZoom,
      className: "zp-tiles"
    }).addTo(map);

    // the control toggles stand-in layers; the grid restyles and redraws
    var small = window.matchMedia && window.matchMedia("(max-width: 700px)").matches;
    var control = L.control.layers(null, null, { collapsed: small, position: "topright" });
    var toggles = {};
    cfg.layers.forEach(function (spec) {
      toggles[spec.name] = L.layerGroup();
      if (spec.show) { toggles[spec.name].addTo(map); }
      control.addOverlay(toggles[spec.name], spec.label);
    });
    control.addTo(map);
    // metric only, in the reader's language: planners and investors measure in metres
    window.zp.localiseMap(map, cfg.leaflet);
    map.on("overlayadd overlayremove", function (e) {
      Object.keys(toggles).forEach(function (name) {
        if (toggles[name] === e.layer) { hidden[name] = e.type === "overlayremove"; }
      });
      grid.redraw();
    });
    function shown() { return names.filter(function (name) { return !hidden[name]; }); }

    var pickable = {};
    cfg.layers.forEach(function (spec) { pickable[spec.name] = spec.pick !== false; });
    var asked = 0;
    /* open the popup of the topmost shown feature at latlng; resolves its {layer, id} or null */
    function pick(latlng) {
      var seq = ++asked;
      var top = shown().filter(function (name) { return pickable[name]; }).reverse();
      if (!top.length) { return Promise.resolve(null); }
      var query = "at=" + latlng.lng.toFixed(7) + "," + latlng.lat.toFixed(7) +
        "&zoom=" + Math.round(map.getZoom()) + "&layers=" + top.join(",");
      return fetch(cfg.pick + "?" + query, { credentials: "same-origin",
                                             headers: { Accept: "application/json" } })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (found) {
          if (seq !== asked || !found || !found.html) { return null; }
          if (found.block) { return blockPopup(latlng, found); }
          L.popup({ maxWidth: 400, minWidth: 240, maxHeight: 360 })
            .setLatLng(latlng).setContent(found.html).openOn(map);
          map.getContainer().setAttribute("data-picked", found.layer + "/" + found.id);
          return { layer: found.layer, id: found.id };
        });
    }
    /* plots too small to see at this zoom come merged into blocks: a click on one says how
       many plots it holds and offers to zoom in towards the click */
    function blockPopup(latlng, found) {
      var box = document.createElement("div");
      box.innerHTML = found.html;  // built and escaped by the server
      var popup = L.popup({ maxWidth: 280, minWidth: 160 }).setLatLng(latlng).setContent(box);
      var button = box.querySelector(".zp-block-zoom");
      if (button) {
        button.addEventListener("click", function () {
          map.closePopup(popup);
          map.setView(latlng, Math.min(map.getZoom() + 2, cfg.maxZoom || 22));
        });
      }
      popup.openOn(map);
      map.getContainer().setAttribute("data-picked", "plots/block");
      return { layer: "plots", id: null, block: found.block };
    }
    map.on("click", function (e) { if (!map.zpMeasuring) { pick(e.latlng); } });
    var labels = cfg.labels || {};
    var search = window.zpSearch ? window.zpSearch(map, {
      url: cfg.search, labels: labels.search,
      onResult: function (hit) { openFeature("plots", hit.plot_id, hit); }
    }) : null;
    var measure = window.zpMeasure ? window.zpMeasure(map, labels.measure) : null;
    addPrint(map, labels.print || "Print");

    /* the popup of one feature by id (a search result), opened on the top edge of its box so
       the outlined plot stays in sight below it */
    function openFeature(layer, id, hit) {
      var at = L.latLng(hit.bbox[3], (hit.bbox[0] + hit.bbox[2]) / 2);
      return fetch(cfg.feature.replace("__layer__", layer).replace("__id__", encodeURIComponent(id)),
                   { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (found) {
          if (!found || !found.html) { return; }
          L.popup({ maxWidth: 400, minWidth: 240, maxHeight: 300, autoPanPadding: [10, 10] })
            .setLatLng(at).setContent(found.html).openOn(map);
          map.getContainer().setAttribute("data-picked", found.layer + "/" + found.id);
        });
    }
    window.zpMapTiles = { grid: grid, shown: shown, pick: pick, search: search, measure: measure };
    return window.zpMapTiles;
  };
})();
