/* Planner page: show what is drawn with leaflet-draw as WGS84 GeoJSON (6 decimals). */
(function () {
  "use strict";
  var holder = document.getElementById("zp-map");
  var out = document.getElementById("zp-drawn");
  if (!holder || !out || !window.L || !L.Draw) { return; }
  var map = window[holder.getAttribute("data-map")];
  if (!map) { return; }
  function round(coords) {
    if (typeof coords[0] === "number") {
      return [Math.round(coords[0] * 1e6) / 1e6, Math.round(coords[1] * 1e6) / 1e6];
    }
    return coords.map(round);
  }
  map.on(L.Draw.Event.CREATED, function (e) {
    var feature = e.layer.toGeoJSON();
    feature.geometry.coordinates = round(feature.geometry.coordinates);
    out.value = JSON.stringify(feature);
  });
})();
