// A job's page: the curves (uPlot) drawn from the rows embedded in the page, then kept
// current by the job's event stream (Server-Sent Events) until the job ends. No reload.
(function () {
  "use strict";
  var page = JSON.parse(document.getElementById("job-data").textContent);
  var COLUMNS = page.columns;  // id, step, epoch, then the metric columns
  var at = {};
  COLUMNS.forEach(function (name, i) { at[name] = i; });
  var CHARTS = [
    {id: "chart-loss", series: [["train_loss", "train loss", "#4a7bd0"], ["eval_loss", "validation loss", "#dc8a0e"]], marks: true},
    {id: "chart-accuracy", series: [["token_accuracy", "train", "#4a7bd0"], ["eval_token_accuracy", "validation", "#dc8a0e"]]},
    {id: "chart-lr", series: [["learning_rate", "learning rate", "#7a5af8"]]},
    {id: "chart-speed", series: [["tokens_per_s", "tokens/s", "#12b76a"]]},
  ];
  var byStep = new Map();  // step -> the latest value of each metric at that step (a resumed run repeats steps)
  var steps = [];
  var tokensPerEpoch = null;
  var stops = [];  // {best, last, evaluations, message, label} from the overfitting watch or the loss guard
  var xAxis = "step";
  var plots = {};

  function addRows(rows) {
    rows.forEach(function (row) {
      var step = row[at.step];
      var rec = byStep.get(step);
      if (!rec) {
        rec = {};
        byStep.set(step, rec);
        var i = steps.length;
        while (i > 0 && steps[i - 1] > step) i--;
        steps.splice(i, 0, step);
      }
      for (var c = 2; c < COLUMNS.length; c++) {
        if (row[c] !== null && row[c] !== undefined) rec[COLUMNS[c]] = row[c];
      }
    });
  }

  function addEvents(events) {
    events.forEach(function (e) {
      var d = e.data || {};
      if (e.kind === "data" && d.trained_tokens_per_epoch) tokensPerEpoch = d.trained_tokens_per_epoch;
      // The overfitting watch: "stopped_early" cut the run short; "overfitting" came at its last evaluation.
      if ((e.kind === "stopped_early" || e.kind === "overfitting") && d.best_step !== undefined) {
        var evals = (d.evaluations || []).map(function (v) { return v.step; });
        stops.push({best: d.best_step, last: Math.max.apply(null, evals.concat([d.best_step])), evaluations: evals, message: e.message,
                    label: e.kind === "overfitting" ? "ended: overfitting" : "stopped: overfitting"});
      } else if (e.kind === "stopped" && d.step !== undefined) {
        stops.push({best: null, last: d.step, evaluations: [], message: e.message, label: "stopped"});
      }
    });
    var note = document.getElementById("stop-note");
    if (stops.length) { note.hidden = false; note.textContent = stops[stops.length - 1].message; }
    document.querySelector("input[name=xaxis][value=tokens]").disabled = !tokensPerEpoch;
  }

  function xOf(step) {
    if (xAxis === "tokens") { var rec = byStep.get(step); return rec && rec.epoch !== undefined ? rec.epoch * tokensPerEpoch : null; }
    return step;
  }

  function dataFor(chart) {
    var xs = steps.map(xOf);
    var data = [xs];
    chart.series.forEach(function (s) {
      data.push(steps.map(function (step) { var v = byStep.get(step)[s[0]]; return v === undefined ? null : v; }));
    });
    return data;
  }

  function drawMarks(u) {
    var ctx = u.ctx, top = u.bbox.top, height = u.bbox.height;
    stops.forEach(function (stop) {
      var last = xOf(stop.last), best = stop.best === null ? null : xOf(stop.best);
      if (last === null) return;
      var xl = u.valToPos(last, "x", true);
      ctx.save();
      if (best !== null) {
        var xb = u.valToPos(best, "x", true);
        ctx.fillStyle = "rgba(220, 38, 38, 0.08)";
        ctx.fillRect(xb, top, xl - xb, height);
        ctx.strokeStyle = "#12b76a"; ctx.setLineDash([5, 4]); ctx.lineWidth = 2;
        ctx.beginPath(); ctx.moveTo(xb, top); ctx.lineTo(xb, top + height); ctx.stroke();
        ctx.fillStyle = "#12b76a"; ctx.font = "12px system-ui"; ctx.textAlign = "right";
        ctx.fillText("best (kept)", xb - 4, top + 14); ctx.textAlign = "left";
      }
      ctx.strokeStyle = "#d92d20"; ctx.setLineDash([]); ctx.lineWidth = 2;
      ctx.beginPath(); ctx.moveTo(xl, top); ctx.lineTo(xl, top + height); ctx.stroke();
      ctx.fillStyle = "#d92d20"; ctx.font = "12px system-ui";
      ctx.fillText(stop.label, Math.max(u.bbox.left, xl - 120), top + 28);
      ctx.restore();
    });
  }

  function ticks(u, values) {  // 2e-4, not 0: learning rates are small
    return values.map(function (v) {
      if (v === null) return "";
      var a = Math.abs(v);
      return a !== 0 && (a < 0.01 || a >= 1e7) ? v.toExponential(1) : String(+v.toPrecision(4)).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    });
  }

  function build() {
    CHARTS.forEach(function (chart) {
      var el = document.getElementById(chart.id);
      if (plots[chart.id]) { plots[chart.id].destroy(); }
      el.innerHTML = "";
      var series = [{label: xAxis === "tokens" ? "tokens seen" : "step"}];
      chart.series.forEach(function (s) {
        series.push({label: s[1], stroke: s[2], width: 2, spanGaps: true, points: {show: s[0].indexOf("eval_") === 0 ? true : false, size: 6}});
      });
      var opts = {
        width: Math.max(320, el.clientWidth || 520), height: 220, series: series,
        scales: {x: {time: false}},
        axes: [{label: xAxis === "tokens" ? "tokens seen" : "step", values: ticks}, {size: 64, values: ticks}],
        legend: {live: true},
        hooks: chart.marks ? {draw: [drawMarks]} : {},
      };
      plots[chart.id] = new uPlot(opts, dataFor(chart), el);
    });
    mark();
  }

  function refresh() {
    CHARTS.forEach(function (chart) { plots[chart.id].setData(dataFor(chart)); });
    mark();
  }

  function mark() {  // what the page shows, for a person's eye and for the browser tests
    var loss = document.getElementById("chart-loss");
    loss.dataset.points = String(steps.length);
    loss.dataset.lastStep = steps.length ? String(steps[steps.length - 1]) : "";
    document.getElementById("no-metrics").hidden = steps.length > 0;
  }

  function appendEventRows(events) {
    var body = document.getElementById("events");
    events.forEach(function (e) {
      var tr = document.createElement("tr");
      [e.time.replace("T", " ").slice(0, 19), e.kind, e.message].forEach(function (text, i) {
        var td = document.createElement("td");
        td.textContent = text;  // text from the data is never parsed as markup
        if (i === 2) td.className = "wrap";
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
  }

  function follow() {
    var url = "/jobs/" + encodeURIComponent(page.job) + "/stream?after_metric=" + page.after_metric + "&after_event=" + page.after_event;
    var source = new EventSource(url);
    var note = document.getElementById("live-note");
    source.addEventListener("metrics", function (m) { addRows(JSON.parse(m.data)); refresh(); });
    source.addEventListener("events", function (m) {
      var events = JSON.parse(m.data);
      appendEventRows(events);
      addEvents(events);
      refresh();
    });
    source.addEventListener("status", function () {
      if (window.htmx) htmx.ajax("GET", "/jobs/" + encodeURIComponent(page.job) + "/state", {target: "#job-state", swap: "outerHTML"});
    });
    source.addEventListener("end", function () { source.close(); note.textContent = "finished"; });
    source.onerror = function () { note.textContent = "reconnecting…"; };
    source.onopen = function () { note.textContent = "live"; };
  }

  if (!window.uPlot) return;  // the vendored files are missing: the page says so at the top
  addRows(page.rows);
  addEvents(page.events);
  build();
  document.querySelectorAll("input[name=xaxis]").forEach(function (input) {
    input.addEventListener("change", function () { xAxis = input.value; build(); });
  });
  var resizeTimer = null;
  window.addEventListener("resize", function () { clearTimeout(resizeTimer); resizeTimer = setTimeout(build, 200); });
  if (page.live) follow();
})();
