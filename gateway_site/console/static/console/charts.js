/* Draws the console's charts (gateway_site/console/charts.py builds their specifications) with
   the vendored Chart.js: a time axis, a titled y-axis with its unit, hover values as the server
   wrote them. Each figure gets data-drawn="1" once drawn. */
(function () {
  "use strict";
  var TICKS = {
    usd: function (v) { return "$" + Number(v).toLocaleString("en-US", { maximumFractionDigits: 6 }); },
    tokens: function (v) { return Number(v).toLocaleString("en-US"); },
    requests: function (v) { return Number(v).toLocaleString("en-US"); },
    ms: function (v) { return Number(v).toLocaleString("en-US") + " ms"; },
    percent: function (v) { return v + "%"; }
  };
  var TIME_FORMATS = { hour: "MMM d, yyyy HH:00 'UTC'", day: "MMM d, yyyy" };

  function valueAxis(spec) {
    return {
      beginAtZero: true,
      stacked: spec.stacked,
      title: { display: true, text: spec.axis },
      ticks: { callback: TICKS[spec.unit], precision: spec.unit === "tokens" || spec.unit === "requests" ? 0 : undefined }
    };
  }

  function draw(figure) {
    var spec = JSON.parse(document.getElementById(figure.dataset.chart).textContent);
    var canvas = figure.querySelector("canvas");
    var category = spec.type === "category";
    var datasets = spec.datasets.map(function (d) {
      return {
        label: d.label,
        data: d.points,
        backgroundColor: d.color,
        borderColor: d.color,
        borderWidth: spec.type === "line" ? 2 : 0,
        pointRadius: spec.type === "line" ? 2 : undefined,
        spanGaps: false,
        tension: 0
      };
    });
    var scales = {};
    if (category) {
      figure.querySelector(".console-chart-canvas").style.height = Math.max(140, 30 * spec.datasets[0].points.length + 70) + "px";
      scales.y = { type: "category", ticks: { autoSkip: false } };
      scales.x = valueAxis(spec);
    } else {
      scales.x = {
        type: "time",
        offset: spec.type === "bar",
        stacked: spec.stacked,
        time: { unit: spec.time_unit, tooltipFormat: TIME_FORMATS[spec.time_unit],
                displayFormats: { hour: "MMM d HH:00", day: "MMM d" } },
        ticks: { autoSkip: true, autoSkipPadding: 18, maxRotation: 0 },
        title: { display: true, text: spec.time_unit === "hour" ? "hour (UTC)" : "day (UTC)" }
      };
      scales.y = valueAxis(spec);
    }
    new Chart(canvas, {
      type: category ? "bar" : spec.type,
      data: { datasets: datasets },
      options: {
        indexAxis: category ? "y" : "x",
        maintainAspectRatio: false,
        animation: false,
        parsing: { xAxisKey: category ? "y" : "x", yAxisKey: category ? "x" : "y" },
        interaction: { mode: category ? "nearest" : "index", intersect: false },
        scales: scales,
        plugins: {
          legend: { display: spec.datasets.length > 1 || spec.legend === true, position: "bottom" },
          tooltip: { callbacks: { label: function (item) { return item.dataset.label + ": " + item.raw.text; } } }
        }
      }
    });
    figure.dataset.drawn = "1";
  }

  function drawAll() {
    document.querySelectorAll("figure.console-chart").forEach(draw);
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", drawAll);
  } else {
    drawAll();
  }
})();
