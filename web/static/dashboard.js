/* The plan dashboard's charts (Chart.js, served by the app). Every value, label and
 * formatted number comes from the page's data-config (web/dashboard.py): this script only
 * draws. No animation, so print and "save as PDF" get the finished charts. */
(function () {
  "use strict";
  var page = window.zp.config("zp-dashboard");
  if (!page || !window.Chart) { return; }
  var cfg = page.cfg;
  var L = cfg.labels;
  var PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#17becf"];
  var charts = [];

  Chart.defaults.animation = false;
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.font.size = 11;
  Chart.defaults.locale = document.documentElement.lang || "ru";  // tick numbers as the page reads them

  /* Writes each bar's note (e.g. "under repair") beside it, so a zero is seen, not missed. */
  var barNotes = {
    id: "zpBarNotes",
    afterDatasetsDraw: function (chart, args, options) {
      if (!options.notes) { return; }
      var ctx = chart.ctx;
      var meta = chart.getDatasetMeta(0);
      ctx.save();
      ctx.font = "600 11px sans-serif";
      ctx.fillStyle = "#b02a37";
      ctx.textBaseline = "middle";
      meta.data.forEach(function (bar, i) {
        var note = options.notes[i];
        if (!note) { return; }
        ctx.fillText(options.values[i] + " — " + note, bar.base + 4, bar.y);
      });
      ctx.restore();
    }
  };

  /* A dotted vertical line at each target's deadline month. */
  var deadlines = {
    id: "zpDeadlines",
    afterDraw: function (chart, args, options) {
      if (!options.months) { return; }
      var x = chart.scales.x, area = chart.chartArea, ctx = chart.ctx;
      ctx.save();
      ctx.strokeStyle = "#6c757d";
      ctx.fillStyle = "#6c757d";
      ctx.setLineDash([2, 3]);
      ctx.font = "10px sans-serif";
      options.months.forEach(function (month) {
        var i = options.labels.indexOf(month);
        if (i < 0) { return; }
        var px = x.getPixelForValue(i);
        ctx.beginPath();
        ctx.moveTo(px, area.top);
        ctx.lineTo(px, area.bottom);
        ctx.stroke();
        ctx.fillText(options.word + " " + month.slice(0, 4), px + 3, area.top + 10);
      });
      ctx.restore();
    }
  };

  function make(id, config) {
    var canvas = document.getElementById(id);
    if (canvas) { charts.push(new Chart(canvas, config)); }
  }

  function timeline() {
    var t = cfg.timeline;
    var sets = t.series.map(function (s, i) {
      return { label: s.label, data: s.percent, text: s.text, stepped: true, yAxisID: "y",
               borderColor: PALETTE[i % PALETTE.length], backgroundColor: PALETTE[i % PALETTE.length],
               pointRadius: 0, borderWidth: 2 };
    });
    sets.push({ label: L.filed, data: t.filed, yAxisID: "apps", borderColor: "#adb5bd",
                borderDash: [4, 3], pointRadius: 0, borderWidth: 1.5, stepped: true });
    sets.push({ label: L.accepted, data: t.accepted, yAxisID: "apps", borderColor: "#495057",
                borderDash: [1, 2], pointRadius: 0, borderWidth: 1.5, stepped: true });
    var uniq = t.series.map(function (s) { return s.deadline; })
      .filter(function (m, i, all) { return all.indexOf(m) === i; });
    make("zp-chart-timeline", {
      type: "line",
      data: { labels: t.months, datasets: sets },
      options: {
        interaction: { mode: "index", intersect: false },
        scales: {
          y: { beginAtZero: true, suggestedMax: 100, title: { display: true, text: L.percent_axis } },
          apps: { position: "right", beginAtZero: true, grid: { drawOnChartArea: false },
                  title: { display: true, text: L.apps_axis }, ticks: { precision: 0 } },
          x: { ticks: { maxTicksLimit: 12 } }
        },
        plugins: {
          legend: { position: "bottom", labels: { boxWidth: 12 } },
          tooltip: { callbacks: { label: function (item) {
            var text = item.dataset.text ? item.dataset.text[item.dataIndex] + " (" + item.formattedValue + "%)"
                                         : item.formattedValue;
            return item.dataset.label + ": " + text;
          } } },
          zpDeadlines: { months: uniq, labels: t.months, word: L.deadline }
        }
      },
      plugins: [deadlines]
    });
  }

  function bars(id, data, values, texts, colours, axis, extra) {
    make(id, {
      type: "bar",
      data: { labels: data, datasets: [{ data: values, backgroundColor: colours, text: texts }] },
      options: {
        indexAxis: "y",
        scales: { x: { beginAtZero: true, title: { display: true, text: axis } } },
        plugins: {
          legend: { display: false },
          tooltip: { callbacks: { label: function (item) { return item.dataset.text[item.dataIndex]; } } },
          zpBarNotes: extra || {}
        }
      },
      plugins: [barNotes]
    });
  }

  timeline();
  bars("zp-chart-area", cfg.area.labels, cfg.area.ha, cfg.area.text, cfg.area.colours, L.ha);
  var h = cfg.headroom;
  bars("zp-chart-headroom", h.labels, h.kw, h.text,
       h.notes.map(function (n) { return n ? "#dc3545" : "#1f77b4"; }), L.kw,
       { notes: h.notes, values: h.text });
  bars("zp-chart-ready", cfg.ready.labels, cfg.ready.plots, cfg.ready.text, "#2ca02c", L.plots);

  function resize() { charts.forEach(function (c) { c.resize(); }); }
  window.addEventListener("beforeprint", resize);
  window.addEventListener("afterprint", resize);
  var button = document.getElementById("zp-dash-print");
  if (button) { button.addEventListener("click", function () { window.print(); }); }
  page.root.setAttribute("data-charts", String(charts.length));
})();
