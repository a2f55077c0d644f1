// The serving panel: the deployment chosen on the page (app.js's deploymentBody) under a traffic, sent to
// /api/serving (the document of `rooflm serving --json`); a table of its points, the latency–throughput chart
// (drawn as `rooflm plot serving` draws its left panel) and the notes. No physics here either.
"use strict";

// Marker per bound, as rooflm.plot.style.SERVING_BOUND_MARKERS; labels as SERVING_BOUND_LABELS.
const SERVING_MARKERS = {
  memory: "circle", compute: "square", communication: "diamond", overhead: "triangle-up", kv_cache: "triangle-down",
  max_running: "cross", max_tokens_per_step: "x", overloaded: "star",
};
const SERVING_BOUND_LABELS = {
  memory: "memory-bound", compute: "compute-bound", communication: "communication-bound",
  overhead: "launch-overhead-bound", kv_cache: "KV cache full", max_running: "max running requests",
  max_tokens_per_step: "max tokens per step", overloaded: "overloaded (queue grows)",
};
// What each load kind's list means, and the list it starts with; a user's list of each kind is kept when switching.
const LOADS = {
  concurrency: { text: "1,4,16,64,256", hint: "Users, e.g. <code>1,4,16,64,256</code> or <code>1:256:x4</code>." },
  request_rate: { text: "1,2,4,8,16", hint: "Requests per second, e.g. <code>0.5,1,2,4</code>." },
};
let servingSequence = 0;
let servingMarked = [];  // the inputs an error highlighted, cleared at the next run

function lengthField(id) {
  // A plain number is sent as one; a distribution as the CLI's text (uniform:LO:HI …).
  const text = $(id).value.trim();
  return /^\d+$/.test(text) ? Number(text) : text;
}

function optionalInt(body, id, field) {
  const text = $(id).value.trim();
  if (text !== "") body[field] = Number(text);
}

// The body the panel sends: the page's deployment plus the traffic, named as `rooflm serving`'s flags.
function servingBody() {
  const body = { ...deploymentBody(), prompt_len: lengthField("serving-prompt_len"),
    gen_len: lengthField("serving-gen_len"), method: $("serving-method").value };
  body[$("serving-load").value] = $("serving-loads").value.trim();
  if (body.method === "simulate") optionalInt(body, "serving-requests", "requests");
  optionalInt(body, "serving-max_running", "max_running");
  optionalInt(body, "serving-max_num_batched_tokens", "max_num_batched_tokens");
  const disaggregate = $("serving-disaggregate").value.trim();
  if (disaggregate) {
    body.disaggregate = disaggregate;
    if ($("serving-kv_link").value) body.kv_link = $("serving-kv_link").value;
  }
  return body;
}

function servingControl(field) {
  if (field === "concurrency" || field === "request_rate") return $("serving-loads");
  return $(`serving-${field}`) || $(field);  // a deployment field is an input of the page's left column
}

function showServingError(error) {
  servingMarked.forEach((el) => el.classList.remove("invalid"));
  servingMarked = [];
  const box = $("serving-error");
  $("serving-results").classList.toggle("stale", Boolean(error));
  if (!error) { box.hidden = true; box.textContent = ""; return; }
  box.hidden = false;
  // One line: the field and the API's message (the inputs stay as typed, to be corrected).
  const message = String(error.message).replace(/\s*\n\s*/g, " ");
  box.textContent = error.field ? `${error.field}: ${message}` : message;
  const control = error.field ? servingControl(error.field) : null;
  if (control) { control.classList.add("invalid"); servingMarked.push(control); }
}

const servingFmt = {
  ms(s) { return s == null ? "–" : (s * 1e3).toFixed(1); },
  s(s) { return s == null ? "–" : s.toFixed(2); },
  tokens(x) { return x == null ? "–" : Math.round(x).toLocaleString("en-US"); },
  one(x) { return x == null ? "–" : x.toFixed(1); },
  share(x) { return x == null ? "–" : `${Math.round(100 * x)}%`; },
};

function loadOf(point) { return point.concurrency ?? point.request_rate; }

function renderServingTable(doc, loadKind) {
  $("serving-load-head").textContent = loadKind === "concurrency" ? "concurrency" : "requests/s";
  const rows = doc.points.map((p) => {
    const tr = document.createElement("tr");
    const cells = [loadOf(p), servingFmt.ms(p.ttft_s), servingFmt.ms(p.ttft_p99_s), servingFmt.ms(p.tpot_s),
      servingFmt.ms(p.tpot_p99_s), servingFmt.s(p.e2e_latency_s), servingFmt.s(p.e2e_latency_p99_s),
      servingFmt.tokens(p.output_tokens_per_s), servingFmt.tokens(p.output_tokens_per_s_per_gpu),
      servingFmt.one(p.output_tokens_per_s_per_user), servingFmt.one(p.batch), servingFmt.share(p.kv_use), p.bound];
    for (const c of cells) { const td = document.createElement("td"); td.textContent = c; tr.append(td); }
    tr.lastChild.className = p.bound;
    return tr;
  });
  $("serving-table").querySelector("tbody").replaceChildren(...rows);
  $("serving-table").hidden = false;
  $("serving-notes").replaceChildren(...doc.notes.map((n) => {
    const li = document.createElement("li");
    li.textContent = n;
    return li;
  }));
}

// Names the user gave (a pasted device's name), as plotly shows them literally: it reads a subset of HTML in titles
// and %{...} in templates (as rooflm.plot.style.plotly_text).
const plotlyText = (t) => String(t).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/%/g, "&#37;");

function servingTitle(doc) {
  // As rooflm.plot.data.serving_title.
  const parts = [doc.model, doc.hardware, doc.quant];
  if (doc.devices > 1) parts.push(doc.layout);
  if (doc.disaggregate) parts.push(`disaggregated ${doc.disaggregate.split}`);
  parts.push(`prompt ${doc.prompt_len}, ${doc.gen_len} output tokens`);
  parts.push(doc.method === "simulate" ? "simulated requests" : "steady-state model");
  parts.push(`${doc.efficiency} mode`);
  return parts.join(" · ");
}

function renderServingChart(doc, loadKind) {
  // Output tokens/s per GPU (throughput) against per user (interactivity), one labelled marker per load; a point
  // without both (an overloaded rate) stays in the table only.
  const unit = loadKind === "concurrency" ? "" : " req/s";
  const word = loadKind === "concurrency" ? "concurrency" : "request rate";
  const shown = doc.points.filter((p) => p.output_tokens_per_s_per_user != null && p.output_tokens_per_s_per_gpu != null);
  const trace = {
    type: "scatter", mode: "lines+markers+text", name: "one point per load",
    x: shown.map((p) => p.output_tokens_per_s_per_user), y: shown.map((p) => p.output_tokens_per_s_per_gpu),
    text: shown.map((p) => `${loadOf(p)}${unit}`), textposition: "top right",
    line: { color: "#0072B2", width: 2 },
    marker: { size: 11, color: "#0072B2", symbol: shown.map((p) => SERVING_MARKERS[p.bound] || "circle") },
    customdata: shown.map((p) => [loadOf(p), servingFmt.ms(p.ttft_s), servingFmt.ms(p.tpot_s),
      SERVING_BOUND_LABELS[p.bound] || p.bound]),
    hovertemplate: `${word} %{customdata[0]}${unit}<br>%{x:.4g} tokens/s per user · %{y:.4g} tokens/s per GPU<br>` +
      "TTFT %{customdata[1]} ms · TPOT %{customdata[2]} ms<br>%{customdata[3]}<extra></extra>",
  };
  const chart = $("serving-chart");
  chart.hidden = false;
  return Plotly.react(chart, [trace], {
    title: { text: plotlyText(servingTitle(doc)), x: 0.02, font: { size: 15 } }, height: 440, template: "simple_white",
    xaxis: { type: "log", title: { text: "output tokens/s per user (interactivity)" }, showgrid: true, gridcolor: "#E5E5E5" },
    yaxis: { type: "log", title: { text: "output tokens/s per GPU (throughput)" }, showgrid: true, gridcolor: "#E5E5E5" },
    margin: { l: 70, r: 30, t: 50, b: 60 }, showlegend: false,
  }, PLOT_CONFIG).then(() => {
    // What the browser test reads: the markers drawn and that the chart was drawn again.
    chart.dataset.points = String(shown.length);
    chart.dataset.renders = String(Number(chart.dataset.renders || 0) + 1);
  });
}

async function runServing(event) {
  event.preventDefault();
  const seq = ++servingSequence;
  const loadKind = $("serving-load").value;
  const button = $("serving-run");
  button.disabled = true;
  $("serving-status").textContent = "running the traffic…";
  try {
    const doc = await call("POST", "/api/serving", servingBody());
    if (seq !== servingSequence) return;
    showServingError(null);
    renderServingTable(doc, loadKind);
    await renderServingChart(doc, loadKind);
    const noun = doc.points.length === 1 ? "point" : "points";
    $("serving-status").textContent = `${doc.points.length} ${noun}; KV cache ${doc.kv_capacity_tokens.toLocaleString("en-US")} ` +
      `tokens per replica, at most ${doc.max_running} running, ${doc.max_num_batched_tokens.toLocaleString("en-US")} tokens per step`;
  } catch (error) {
    if (seq !== servingSequence) return;
    showServingError(error);
    $("serving-status").textContent = "";
  } finally {
    if (seq === servingSequence) button.disabled = false;
  }
}

function servingLoadChanged() {
  const kind = $("serving-load").value;
  const previous = kind === "concurrency" ? "request_rate" : "concurrency";
  LOADS[previous].text = $("serving-loads").value;
  $("serving-loads").value = LOADS[kind].text;
  $("serving-loads-hint").innerHTML = LOADS[kind].hint;  // constant text above, never the user's
}

function servingMethodChanged() {
  // Only a simulation has requests to count; the steady-state model is one vectorised evaluation.
  $("serving-requests-box").hidden = $("serving-method").value !== "simulate";
}

function servingDisaggregateChanged() {
  // The link only matters when the KV cache travels between pools.
  $("serving-kv-link-box").hidden = !$("serving-disaggregate").value.trim();
}

$("serving-form").addEventListener("submit", runServing);
$("serving-disaggregate").addEventListener("input", servingDisaggregateChanged);
$("serving-load").addEventListener("change", servingLoadChanged);
$("serving-method").addEventListener("change", servingMethodChanged);
