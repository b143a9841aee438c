/* The zone map's layers as vector tiles (Leaflet.VectorGrid, canvas), one tile layer per store
 * layer, styled by status like the rest of the site. A click asks the server what lies under
 * the pointer among the layers shown (/map/features?at=...), so popups come from the access
 * policy and the page never holds the data. Popup HTML is built and escaped by the server.
 * window.zpTileMap(map, config) is called by the page's folium element; it returns (and
 * keeps as window.zpMapTiles, for tests and the console) {layers: {name: VectorGrid},
 * pick: function(latlng)}. */
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

  function tileLayer(cfg, spec, order) {
    var styles = {};
    styles[spec.name] = function (props) { return styleFor(cfg, spec, props); };
    return L.vectorGrid.protobuf(cfg.tiles.replace("__layer__", spec.name), {
      rendererFactory: L.canvas.tile,
      vectorTileLayerStyles: styles,
      interactive: false,  // clicks are answered by the server (see pick)
      maxZoom: cfg.maxZoom,
      zIndex: 10 + order,
      className: "zp-tiles zp-tiles-" + spec.name
    });
  }

  window.zpTileMap = function (map, cfg) {
    var layers = {};
    var control = L.control.layers(null, null, { collapsed: false, position: "topright" });
    cfg.layers.forEach(function (spec, order) {
      var layer = tileLayer(cfg, spec, order);
      layers[spec.name] = layer;
      if (spec.show) { layer.addTo(map); }
      control.addOverlay(layer, spec.label);
    });
    control.addTo(map);

    var asked = 0;
    function shownTopFirst() {
      return cfg.layers.map(function (spec) { return spec.name; })
        .filter(function (name) { return map.hasLayer(layers[name]); }).reverse();
    }
    /* open the popup of the topmost shown feature at latlng; resolves its {layer, id} or null */
    function pick(latlng) {
      var seq = ++asked;
      var names = shownTopFirst();
      if (!names.length) { return Promise.resolve(null); }
      var query = "at=" + latlng.lng.toFixed(7) + "," + latlng.lat.toFixed(7) +
        "&zoom=" + Math.round(map.getZoom()) + "&layers=" + names.join(",");
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
    window.zpMapTiles = { layers: layers, pick: pick };
    return window.zpMapTiles;
  };
})();
