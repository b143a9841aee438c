/* The zone map's layers as vector tiles (Leaflet.VectorGrid on canvas): one request per tile
 * for every layer (/tiles/zone,expansion,.../{z}/{x}/{y}.mvt, one MVT layer per store layer,
 * drawn bottom first), styled by status like the rest of the site. The layer control hides
 * and shows layers by restyling. A click asks the server what lies under the pointer among
 * the layers shown (/map/features?at=...), so popups come from the access policy and the page
 * never holds the data; the popup HTML is built and escaped by the server.
 * window.zpTileMap(map, config) is called by the page's folium element; it returns (and keeps
 * as window.zpMapTiles, for tests and the console) {grid, shown(), pick(latlng)}. */
(function () {
  "use strict";

  function styleFor(cfg, spec, props) {
    var style = Object.assign({}, spec.style);
    if (spec.geometry === "Polygon") { style.fill = true; }
    if (spec.geometry === "LineString") { style.fill = false; }
    if (spec.name === "plots") {
      style.fillColor = cfg.plotColours[props.status] || "#cccccc";
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
    var control = L.control.layers(null, null, { collapsed: false, position: "topright" });
    var toggles = {};
    cfg.layers.forEach(function (spec) {
      toggles[spec.name] = L.layerGroup();
      if (spec.show) { toggles[spec.name].addTo(map); }
      control.addOverlay(toggles[spec.name], spec.label);
    });
    control.addTo(map);
    // metric only: planners and investors here measure in metres and hectares
    L.control.scale({ imperial: false }).addTo(map);
    map.on("overlayadd overlayremove", function (e) {
      Object.keys(toggles).forEach(function (name) {
        if (toggles[name] === e.layer) { hidden[name] = e.type === "overlayremove"; }
      });
      grid.redraw();
    });
    function shown() { return names.filter(function (name) { return !hidden[name]; }); }

    var asked = 0;
    /* open the popup of the topmost shown feature at latlng; resolves its {layer, id} or null */
    function pick(latlng) {
      var seq = ++asked;
      var top = shown().reverse();
      if (!top.length) { return Promise.resolve(null); }
      var query = "at=" + latlng.lng.toFixed(7) + "," + latlng.lat.toFixed(7) +
        "&zoom=" + Math.round(map.getZoom()) + "&layers=" + top.join(",");
      return fetch(cfg.pick + "?" + query, { credentials: "same-origin",
                                             headers: { Accept: "application/json" } })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (found) {
          if (seq !== asked || !found || !found.html) { return null; }
          L.popup({ maxWidth: 400, minWidth: 240, maxHeight: 360 })
            .setLatLng(latlng).setContent(found.html).openOn(map);
          map.getContainer().setAttribute("data-picked", found.layer + "/" + found.id);
          return { layer: found.layer, id: found.id };
        });
    }
    map.on("click", function (e) { pick(e.latlng); });
    window.zpMapTiles = { grid: grid, shown: shown, pick: pick };
    return window.zpMapTiles;
  };
})();
