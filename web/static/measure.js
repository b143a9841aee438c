/* Measure distance and area on any Leaflet map: window.zpMeasure(map, labels) adds a ruler
 * button; while it is on, clicks add points (a line with its length, and from three points
 * the closed shape's area), a double click or "Finish" ends the shape, "Clear" or the button
 * again removes it. Lengths are great-circle (Leaflet's map.distance) and areas spherical
 * (the formula of leaflet-draw's geodesicArea), in metres, kilometres, m² and hectares.
 * While measuring, map.zpMeasuring is true: page scripts skip their own click handling then
 * (tilemap.js, catalogue.js, planner-map.js, planner-select.js, allocate.js: check it in your
 * map and layer click handlers). Measuring and geoman's drawing exclude each other: turning
 * the ruler on ends a drawing (and geoman's edit and removal modes), starting a drawing turns
 * the ruler off. Planner pages get the tool through zp.leafletTexts (leaflet-i18n.js).
 * labels (all optional, from the page's data-config): measure, hint, distance, area,
 * finish, clear, m, km, m2, ha. */
(function () {
  "use strict";

  var DEFAULTS = {
    measure: "Measure distance and area", hint: "Click points on the map; double-click to finish.",
    distance: "Distance", area: "Area", finish: "Finish", clear: "Clear",
    m: "m", km: "km", m2: "m²", ha: "ha"
  };
  var EARTH_RADIUS = 6378137;  // WGS84 semi-major axis, as Leaflet's CRS uses
  var LINE = { color: "#d9480f", weight: 3, dashArray: "6 4", interactive: false };
  var SHAPE = { color: "#d9480f", weight: 1, fillColor: "#ffa94d", fillOpacity: 0.25, interactive: false };

  /* area of a ring on the sphere, m² (leaflet-draw's L.GeometryUtil.geodesicArea) */
  function geodesicArea(latlngs) {
    var rad = Math.PI / 180, total = 0, n = latlngs.length;
    if (n < 3) { return 0; }
    for (var i = 0; i < n; i++) {
      var a = latlngs[i], b = latlngs[(i + 1) % n];
      total += (b.lng - a.lng) * rad * (2 + Math.sin(a.lat * rad) + Math.sin(b.lat * rad));
    }
    return Math.abs(total * EARTH_RADIUS * EARTH_RADIUS / 2);
  }

  function number(value, digits) {
    var lang = document.documentElement.lang || undefined;
    return value.toLocaleString(lang, { maximumFractionDigits: digits, minimumFractionDigits: digits });
  }
  function formatLength(m, T) {
    return m < 1000 ? number(m, m < 100 ? 1 : 0) + " " + T.m : number(m / 1000, 2) + " " + T.km;
  }
  function formatArea(m2, T) {
    return m2 < 10000 ? number(m2, 0) + " " + T.m2 : number(m2 / 10000, 2) + " " + T.ha;
  }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  /* a ruler icon in SVG (no icon font, no inline styles) */
  function rulerIcon() {
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("width", "18");
    svg.setAttribute("height", "18");
    svg.setAttribute("aria-hidden", "true");
    var path = document.createElementNS(ns, "path");
    path.setAttribute("d", "M3 17 17 3l4 4L7 21zM7 13l2 2M10 10l2 2M13 7l2 2");
    path.setAttribute("fill", "none");
    path.setAttribute("stroke", "currentColor");
    path.setAttribute("stroke-width", "1.8");
    svg.appendChild(path);
    return svg;
  }

  window.zpMeasure = function (map, labels) {
    var T = Object.assign({}, DEFAULTS, labels || {});
    var points = [];
    var line = null, shape = null, dots = L.layerGroup();
    var done = false;
    var control = L.control({ position: "topleft" });
    var box, button, panel, result;

    function summary() {
      var length = 0;
      for (var i = 1; i < points.length; i++) { length += map.distance(points[i - 1], points[i]); }
      var area = points.length >= 3 ? geodesicArea(points) : 0;
      if (done && points.length >= 3) { length += map.distance(points[points.length - 1], points[0]); }
      return { length: length, area: area };
    }
    function draw() {
      if (line) { map.removeLayer(line); line = null; }
      if (shape) { map.removeLayer(shape); shape = null; }
      if (points.length >= 3) { shape = L.polygon(points, SHAPE).addTo(map); }
      if (points.length >= 2) { line = L.polyline(done && points.length >= 3 ? points.concat([points[0]]) : points, LINE).addTo(map); }
      var s = summary();
      result.textContent = "";
      if (points.length >= 2) { result.appendChild(el("div", "zp-measure-distance", T.distance + ": " + formatLength(s.length, T))); }
      if (points.length >= 3) { result.appendChild(el("div", "zp-measure-area", T.area + ": " + formatArea(s.area, T))); }
      box.setAttribute("data-distance-m", s.length.toFixed(1));
      box.setAttribute("data-area-m2", s.area.toFixed(0));
      box.setAttribute("data-points", String(points.length));
    }
    function clear() {
      points = []; done = false;
      dots.clearLayers();
      draw();
    }
    function onClick(e) {
      if (done) { clear(); }
      points.push(e.latlng);
      L.circleMarker(e.latlng, { radius: 4, color: "#d9480f", weight: 2, fillColor: "#fff", fillOpacity: 1, interactive: false }).addTo(dots);
      draw();
    }
    function finish() {
      // a double click also clicked twice: drop the repeated last points
      while (points.length >= 2 && map.distance(points[points.length - 1], points[points.length - 2]) < 0.01) {
        points.pop();
        dots.removeLayer(dots.getLayers().pop());
      }
      if (points.length >= 2) { done = true; draw(); }
    }
    function setActive(on) {
      if (on && map.pm) { stopGeoman(); }
      map.zpMeasuring = on;
      box.classList.toggle("zp-measure-on", on);
      button.setAttribute("aria-pressed", on ? "true" : "false");
      panel.hidden = !on;
      map.getContainer().classList.toggle("zp-measuring", on);
      if (on) {
        map.closePopup();
        map.doubleClickZoom.disable();
        dots.addTo(map);
        map.on("click", onClick);
        map.on("dblclick", finish);
      } else {
        map.off("click", onClick);
        map.off("dblclick", finish);
        map.doubleClickZoom.enable();
        clear();
        map.removeLayer(dots);
      }
    }

    /* geoman's tools would take the same clicks: a drawing in progress is dropped */
    function stopGeoman() {
      if (map.pm.globalDrawModeEnabled()) { map.pm.disableDraw(); }
      if (map.pm.globalEditModeEnabled()) { map.pm.disableGlobalEditMode(); }
      if (map.pm.globalRemovalModeEnabled()) { map.pm.disableGlobalRemovalMode(); }
    }
    map.on("pm:drawstart pm:globaleditmodetoggled pm:globalremovalmodetoggled", function (e) {
      if (map.zpMeasuring && (e.type === "pm:drawstart" || e.enabled)) { setActive(false); }
    });

    control.onAdd = function () {
      box = el("div", "leaflet-bar zp-measure");
      button = el("a", "zp-measure-button");
      button.href = "#";
      button.setAttribute("role", "button");
      button.setAttribute("title", T.measure);
      button.setAttribute("aria-label", T.measure);
      button.setAttribute("aria-pressed", "false");
      button.appendChild(rulerIcon());
      panel = el("div", "zp-measure-panel");
      panel.hidden = true;
      panel.appendChild(el("p", "zp-measure-hint", T.hint));
      result = el("div", "zp-measure-result");
      result.setAttribute("aria-live", "polite");
      panel.appendChild(result);
      var finishButton = el("button", "zp-measure-finish", T.finish);
      finishButton.type = "button";
      var clearButton = el("button", "zp-measure-clear", T.clear);
      clearButton.type = "button";
      var actions = el("div", "zp-measure-actions");
      actions.appendChild(finishButton);
      actions.appendChild(clearButton);
      panel.appendChild(actions);
      box.appendChild(button);
      box.appendChild(panel);
      L.DomEvent.disableClickPropagation(box);
      L.DomEvent.disableScrollPropagation(box);
      L.DomEvent.on(button, "click", function (e) {
        L.DomEvent.preventDefault(e);
        setActive(!map.zpMeasuring);
      });
      L.DomEvent.on(finishButton, "click", finish);
      L.DomEvent.on(clearButton, "click", clear);
      return box;
    };
    control.addTo(map);
    return { control: control, setActive: setActive, clear: clear, finish: finish, summary: summary };
  };
})();
