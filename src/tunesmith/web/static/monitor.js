// A monitor run's page: the windows' uncovered share, drift and output PSI (and quality on
// fresh labels, when given) over time, drawn with uPlot from the data embedded in the page.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("monitor-data").textContent);
  var target = document.getElementById("chart-windows");
  if (!target || !window.uPlot || !data.ends.length) return;
  var xs = data.ends.map(function (t) { return Date.parse(t) / 1000; });
  var colours = ["#4a7bd0", "#dc2626", "#dc8a0e", "#12b76a"];
  var names = Object.keys(data.series);
  var series = [{}].concat(names.map(function (name, i) {
    return {label: name, stroke: colours[i % colours.length], width: 2, spanGaps: true,
            value: function (u, v) { return v === null || v === undefined ? "–" : (100 * v).toFixed(1) + "%"; }};
  }));
  var columns = [xs].concat(names.map(function (name) { return data.series[name]; }));
  new uPlot({width: Math.min(target.clientWidth || 800, 900), height: 260, series: series,
             scales: {y: {range: [0, 1]}},
             axes: [{}, {values: function (u, vals) { return vals.map(function (v) { return Math.round(100 * v) + "%"; }); }}]},
            columns, target);
})();
