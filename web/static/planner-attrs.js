/* The planner's workspace, part 6: editing a plot's attributes (the fields the API takes,
 * described by the page config from geo/layers.py) and an asset's status, dates and note.
 * Values go to the server as typed; it validates them as every API client's (422 with one
 * problem per field, shown next to that field) and refuses a stale version (409). */
(function () {
  "use strict";

  var P = window.zpPl;
  if (!P || !P.map) { return; }
  var cfg = P.cfg, T = P.T, el = P.el;

  // ------------------------------------------------------------------ plot attributes
  var labels = {};
  cfg.plotFields.forEach(function (field) { labels[field.name] = field.label; });

  function input(field, value) {
    var id = "zp-pl-attr-" + field.name;
    var common = { id: id, name: field.name, class: "form-control form-control-sm",
                   "aria-describedby": id + "-error" };
    if (field.kind === "choice" || field.kind === "bool") {
      var options = [["", "—"]].concat(field.kind === "bool"
        ? [["true", T.yes], ["false", T.no]] : field.choices);
      var current = value === null || value === undefined ? "" : String(value);
      return el("select", Object.assign(common, { class: "form-select form-select-sm" }),
        options.map(function (o) {
          return el("option", { value: o[0], text: o[1], selected: o[0] === current });
        }));
    }
    if (field.kind === "sectors") { return sectorBoxes(field, value, id); }
    var box = el("input", Object.assign(common, {
      type: field.kind === "text" ? "text" : "number", min: field.min, max: field.max,
      step: field.kind === "int" ? "1" : "any", maxlength: field.maxLength,
      inputmode: field.kind === "text" ? null : "decimal" }));
    // "number" inputs would swallow what cannot be read; the server names it instead
    if (field.kind !== "text") { box.type = "text"; }
    box.value = value === null || value === undefined ? "" : String(value);
    return box;
  }

  /* allowed sectors: "any" or a set of sector codes, stored as "*" or "food,light" */
  function sectorBoxes(field, value, id) {
    var chosen = String(value || "").split(",").map(function (s) { return s.trim(); });
    var any = chosen.indexOf("*") >= 0;
    var boxes = [["*", T.anySector]].concat(field.choices).map(function (o) {
      return el("label", { class: "zp-pl-check" }, [
        el("input", { type: "checkbox", value: o[0], "data-sector": o[0],
                      checked: o[0] === "*" ? any : (!any && chosen.indexOf(o[0]) >= 0) }),
        " " + o[1]]);
    });
    var fieldset = el("fieldset", { id: id, class: "zp-pl-sectors",
                                    "aria-describedby": id + "-error" }, boxes);
    // "any sector" and a list exclude each other: ticking one clears the other
    fieldset.addEventListener("change", function (e) {
      var anyBox = e.target.value === "*";
      Array.prototype.forEach.call(fieldset.querySelectorAll("input"), function (b) {
        if (b !== e.target && e.target.checked && (anyBox || b.value === "*")) { b.checked = false; }
      });
    });
    return fieldset;
  }
  function sectorsValue(fieldset) {
    var picked = Array.prototype.filter.call(fieldset.querySelectorAll("input"), function (b) {
      return b.checked;
    }).map(function (b) { return b.value; });
    if (picked.indexOf("*") >= 0) { return "*"; }
    return picked.length ? picked.join(",") : null;
  }

  function readValue(field, node) {
    if (field.kind === "sectors") { return sectorsValue(node); }
    var text = node.value.trim();
    if (text === "") { return null; }
    if (field.kind === "bool") { return text === "true"; }
    return text;
  }
  function same(field, a, b) {
    if (a === null || a === undefined || a === "") { return b === null; }
    return b !== null && String(a) === String(b);
  }

  P.attributeForm = function (props) {
    var nodes = {};
    var rows = cfg.plotFields.map(function (field) {
      nodes[field.name] = input(field, props[field.name]);
      return el("div", { class: "zp-pl-field", "data-field": field.name }, [
        el(field.kind === "sectors" ? "span" : "label",
           { for: "zp-pl-attr-" + field.name, class: "zp-pl-label", text: field.label }),
        nodes[field.name],
        el("p", { class: "zp-pl-field-error", id: "zp-pl-attr-" + field.name + "-error",
                  role: "alert", hidden: true })]);
    });
    var note = el("p", { class: "zp-pl-form-error", id: "zp-pl-attrs-error", role: "alert",
                         hidden: true });
    var form = el("form", { id: "zp-pl-attrs-form", class: "zp-pl-attrs-form", novalidate: true },
      rows.concat([note, el("div", { class: "zp-pl-buttons" }, [
        el("button", { type: "submit", id: "zp-pl-attrs-save", class: "btn btn-primary btn-sm",
                       text: T.saveAttributes })])]));
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var body = { version: props.version };
      cfg.plotFields.forEach(function (field) {
        var value = readValue(field, nodes[field.name]);
        if (!same(field, props[field.name], value)) { body[field.name] = value; }
      });
      showFieldErrors(form, []);
      if (Object.keys(body).length === 1) { note.textContent = T.nothingChanged; note.hidden = false; return; }
      saveAttributes(form, props.plot_id, body);
    });
    return el("details", { class: "zp-pl-attr-edit", id: "zp-pl-attrs" }, [
      el("summary", { text: T.attributes }), form]);
  };

  /* one message under each field the server named; the rest above the button */
  function showFieldErrors(form, problems) {
    Array.prototype.forEach.call(form.querySelectorAll(".zp-pl-field-error"), function (p) {
      p.hidden = true;
      p.textContent = "";
    });
    Array.prototype.forEach.call(form.querySelectorAll("[aria-invalid]"), function (n) {
      n.removeAttribute("aria-invalid");
    });
    var general = form.querySelector("#zp-pl-attrs-error");
    general.hidden = true;
    general.textContent = "";
    problems.forEach(function (p) {
      var slot = p.field && form.querySelector("#zp-pl-attr-" + p.field + "-error");
      if (slot) {
        slot.textContent = p.reason;
        slot.hidden = false;
        form.querySelector("#zp-pl-attr-" + p.field).setAttribute("aria-invalid", "true");
      } else {
        general.textContent = (general.textContent ? general.textContent + " " : "") + p.reason;
        general.hidden = false;
      }
    });
  }

  function saveAttributes(form, id, body) {
    P.api("PATCH", P.url("plot", { id: id }), body).then(function (response) {
      if (response.status === 422) {
        var problems = (response.body && response.body.problems) ||
          [{ field: response.body && response.body.field, reason: response.body.error }];
        showFieldErrors(form, problems);
        P.showMessage("error", T.not_saved, problems.map(function (p) {
          return (labels[p.field] ? labels[p.field] + ": " : "") + p.reason;
        }));
        return;
      }
      if (response.status !== 200) { P.refused(response, P.reloadAndSelect("plots", id)); return; }
      P.plotSaved(response.body, P.fmt(T.attributesSaved, { id: id }));
    }, P.offline);
  }

  // ------------------------------------------------------------------ asset status
  P.renderAsset = function (name, props) {
    var panel = P.selPanel;
    panel.appendChild(P.facts([[T.since, props.since], [T.due, props.due],
                               [T.version, props.version]]));
    if (props.note) {
      panel.appendChild(el("p", { class: "zp-pl-note", text: props.note }));
      panel.appendChild(el("p", { class: "zp-help zp-pl-note-hint", text: T.noteAsEntered }));
    }
    var status = el("select", { id: "zp-pl-asset-status", class: "form-select form-select-sm",
                                name: "status" },
      cfg.assetStatusOrder.map(function (code) {
        return el("option", { value: code, selected: code === props.status,
                              text: cfg.assetStatuses[code] });
      }));
    // the date the status changed: today unless the planner records an earlier change
    var changedOn = el("input", { type: "date", id: "zp-pl-asset-since",
                                  class: "form-control form-control-sm", value: P.today(),
                                  max: P.today() });
    var due = el("input", { type: "date", id: "zp-pl-asset-due", class: "form-control form-control-sm",
                            value: props.due || "" });
    var note = el("textarea", { id: "zp-pl-asset-note", class: "form-control form-control-sm",
                                rows: "3", maxlength: String(cfg.noteMaxLength) });
    note.value = props.note || "";
    var form = el("form", { class: "zp-pl-asset-form", id: "zp-pl-asset-form" }, [
      el("label", { for: "zp-pl-asset-status", text: T.status }), status,
      el("label", { for: "zp-pl-asset-since", text: T.changedOn }), changedOn,
      el("label", { for: "zp-pl-asset-due", text: T.due }), due,
      el("label", { for: "zp-pl-asset-note", text: T.note }), note,
      el("p", { class: "zp-help", text: T.noteHint }),
      el("div", { class: "zp-pl-buttons" }, [
        el("button", { type: "submit", id: "zp-pl-asset-save", class: "btn btn-primary btn-sm",
                       text: T.saveAsset })])
    ]);
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var body = { version: props.version };
      if (status.value !== props.status) { body.status = status.value; }
      if (status.value !== props.status || changedOn.dataset.edited) {
        body.since = changedOn.value || P.today();
      }
      if ((due.value || null) !== (props.due || null)) { body.due = due.value || null; }
      if ((note.value.trim() || null) !== (props.note || null)) { body.note = note.value.trim() || null; }
      saveAsset(name, String(props[P.specs[name].key]), body);
    });
    changedOn.addEventListener("input", function () { changedOn.dataset.edited = "1"; });
    panel.appendChild(form);
  };

  function saveAsset(name, id, body) {
    P.api("PATCH", P.url("asset", { layer: name, id: id }), body).then(function (response) {
      if (response.status !== 200) { P.refused(response, P.reloadAndSelect(name, id)); return; }
      P.replaceFeature(name, response.body);
      P.select(name, id);
      P.showMessage("ok", P.fmt(T.assetSaved, { id: id,
        status: cfg.assetStatuses[response.body.properties.status] }), []);
    }, P.offline);
  }
})();
