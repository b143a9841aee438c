/* The planner's workspace, part 5: a parcel from typed coordinates (WGS84 longitude,
 * latitude or UTM 43N easting, northing in metres, one corner a line). The server reads
 * them (/api/coordinates: every bad line named, nothing stored); the outline then becomes
 * the draft, or the new outline of the plot being reshaped, and is checked as drawn. */
(function () {
  "use strict";

  var P = window.zpPl;
  if (!P || !P.map) { return; }
  var cfg = P.cfg, T = P.T, state = P.state, el = P.el;
  var card = document.getElementById("zp-pl-coords");
  var form = document.getElementById("zp-pl-coords-form");
  var crs = document.getElementById("zp-pl-coords-crs");
  var text = document.getElementById("zp-pl-coords-text");
  var errors = document.getElementById("zp-pl-coords-errors");
  var title = document.getElementById("zp-pl-coords-title");
  var target = null;  // the plot whose outline the form edits, or null for a new parcel
  /* the latest request for a plot's corners as text: an answer to an older one, or one that
     comes after the planner typed or applied corners, must not overwrite the text */
  var fillSeq = 0;

  function showErrors(lines) {
    P.clear(errors);
    lines.forEach(function (line) { errors.appendChild(el("li", { text: line })); });
    errors.hidden = !lines.length;
    text.setAttribute("aria-invalid", lines.length ? "true" : "false");
  }

  /* open the form: empty for a new parcel, else filled with the plot's corners */
  P.openCoords = function (plotId) {
    target = plotId || null;
    title.textContent = target ? P.fmt(T.coordsEditTitle, { id: target }) : T.coordsNewTitle;
    showErrors([]);
    card.hidden = false;
    delete text.dataset.edited;
    fillSeq++;
    if (target) { fill(); } else { text.value = ""; }
    text.focus();
  };
  function fill() {
    var layer = P.index.plots[target];
    if (!layer) { return; }
    var seq = ++fillSeq;
    P.api("POST", cfg.urls.coordsText, { geometry: P.geometryOf(layer), crs: crs.value })
      .then(function (response) {
        if (seq !== fillSeq || text.dataset.edited) { return; }
        if (response.status === 200) { text.value = response.body.text; }
        else { showErrors(P.problemLines(response.body)); }
      }, P.offline);
  }
  crs.addEventListener("change", function () {
    // the same corners in the other system, when they came from a plot and are untouched
    if (target && !text.dataset.edited) { fill(); }
  });
  text.addEventListener("input", function () { text.dataset.edited = "1"; fillSeq++; });
  document.getElementById("zp-pl-coords-open").addEventListener("click", function () {
    P.openCoords(null);
  });
  document.getElementById("zp-pl-coords-close").addEventListener("click", function () {
    card.hidden = true;
  });

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    fillSeq++;  // what is applied is the text as it stands now
    P.api("POST", cfg.urls.coords, { text: text.value, crs: crs.value }).then(function (response) {
      if (response.status !== 200) { showErrors(P.problemLines(response.body)); return; }
      showErrors([]);
      delete text.dataset.edited;
      card.hidden = true;
      var layer = L.geoJSON(response.body.geometry).getLayers()[0];
      if (target && P.index.plots[target]) {
        if (!state.selected || state.selected.id !== target) { P.select("plots", target); }
        P.startEdit(target, layer.getLatLngs());
      } else {
        P.setDraft(layer);
      }
      P.map.fitBounds(layer.getBounds(), { maxZoom: 18, padding: [40, 40], animate: false });
    }, P.offline);
  });
})();
