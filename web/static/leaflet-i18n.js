/* Leaflet's own control texts in the reader's language (zp.leafletTexts): the zoom buttons'
 * titles, the layer switcher's title and the scale bar's units, from the page config's
 * "leaflet" strings (web/i18n.py); with them the measuring tool (measure.js, when the page
 * loads it). Load after leaflet.js, zp.js and measure.js. */
(function () {
  "use strict";

  if (!window.L || !window.zp) { return; }

  /* Leaflet's metric scale with translated units (it writes "m" and "km" itself) */
  var Scale = L.Control.Scale.extend({
    _updateMetric: function (maxMeters) {
      var meters = this._getRoundNum(maxMeters);
      var label = meters < 1000 ? meters + " " + this.options.unitM
        : (meters / 1000) + " " + this.options.unitKm;
      this._updateScale(this._mScale, label, meters / maxMeters);
    }
  });

  /* Add the zoom buttons, a metric scale and the ruler (measure.js) to `map` (made with
     zoomControl: false) and title the layer switcher `layers`, when given, all with the
     strings `t`. Returns the measuring tool, or null when the page has none. */
  zp.leafletTexts = function (map, t, layers) {
    t = t || {};
    map.attributionControl.setPrefix(false);
    L.control.zoom({ position: "topleft", zoomInTitle: t.zoomIn || "Zoom in",
                     zoomOutTitle: t.zoomOut || "Zoom out" }).addTo(map);
    new Scale({ imperial: false, position: "bottomright", unitM: t.m || "m",
                unitKm: t.km || "km" }).addTo(map);
    if (layers) { zp.layersTitle(layers, t); }
    return window.zpMeasure ? window.zpMeasure(map, t.measure) : null;
  };

  /* The same texts on a map made with Leaflet's default zoom buttons (folium's zone map, the
     catalogue's maps): retitle those buttons and add the metric scale with translated units. */
  zp.localiseMap = function (map, t) {
    t = t || {};
    var zoom = map.zoomControl;
    if (zoom) {
      [[zoom._zoomInButton, t.zoomIn], [zoom._zoomOutButton, t.zoomOut]].forEach(function (pair) {
        if (pair[0] && pair[1]) {
          pair[0].title = pair[1];
          pair[0].setAttribute("aria-label", pair[1]);
        }
      });
    }
    new Scale({ imperial: false, position: "bottomleft", unitM: t.m || "m",
                unitKm: t.km || "km" }).addTo(map);
  };

  /* the layer switcher's toggle title (Leaflet writes "Layers") */
  zp.layersTitle = function (control, t) {
    var toggle = control.getContainer().querySelector(".leaflet-control-layers-toggle");
    if (toggle && t && t.layers) {
      toggle.title = t.layers;
      toggle.setAttribute("aria-label", t.layers);
    }
  };
})();
