// The rooflm page: read the inputs, ask the JSON API, draw. No physics here: every number comes from
// /api/analyze (the same document as `rooflm analyze --json`) and the roofline figure from /api/figure.
"use strict";

const $ = (id) => document.getElementById(id);
const CONFIG = "__config__";
const HARDWARE_TOML = "__hardware_toml__";
// Okabe-Ito, as in rooflm.plot.style: safe for the common colour-vision deficiencies.
const CLASS_COLOURS = {
  weight_gemm: "#0072B2", attention: "#D55E00", expert: "#009E73", communication: "#CC79A7", other: "#E69F00",
  overhead: "#7F7F7F",
};
const CLASS_LABELS = {
  weight_gemm: "weight GEMMs", attention: "attention / KV cache", expert: "experts (MoE)",
  communication: "communication", other: "norms, RoPE, activations", overhead: "kernel launch overhead",
};
const PLOT_CONFIG = { displaylogo: false, responsive: true };
let sequence = 0;        // the latest request; replies to older ones are dropped
let timer = null;
let maxContext = 131072;
// A `rooflm fit` profile the user loaded: read in the browser and sent as text (the server opens no file).
let profile = null;  // { name, text }

const fmt = {
  seconds(s) {
    if (!isFinite(s)) return "–";
    if (s >= 1) return `${s.toPrecision(4)} s`;
    if (s >= 1e-3) return `${(s * 1e3).toPrecision(4)} ms`;
    return `${(s * 1e6).toPrecision(4)} µs`;
  },
  rate(x) {
    for (const [f, p] of [[1e9, "G"], [1e6, "M"], [1e3, "k"]]) if (x >= f) return `${(x / f).toPrecision(3)} ${p}`;
    return x.toPrecision(3);
  },
  bytes(b) { return `${(b / 1e9).toPrecision(3)} GB`; },
  int(n) { return n.toLocaleString("en-US"); },
};

function batchValue() { return Math.max(1, Math.round(2 ** Number($("batch").value))); }
function lengthValue() { return Math.min(maxContext, Math.max(1, Math.round(2 ** Number($("context").value)))); }

// The deployment the inputs describe (model, device, scheme, layout, efficiency, profile): what every analysis and
// the serving panel (serving.js) send.
function deploymentBody() {
  const body = { quant: $("quant").value };
  // Left to the view (empty): each endpoint's own default, ideal for the step and calibrated for explain and serving.
  if ($("efficiency").value) body.efficiency = $("efficiency").value;
  if ($("hardware").value === HARDWARE_TOML) body.hardware_toml = $("hardware_toml").value;
  else body.hardware = $("hardware").value;
  for (const id of ["tp", "ep", "pp", "dp"]) body[id] = Number($(id).value);
  // A profile is calibrated mode's parameters: it is sent only while efficiency is calibrated.
  if (profile && body.efficiency === "calibrated") body.profile_toml = profile.text;
  if ($("kv_dtype").value) body.kv_dtype = $("kv_dtype").value;
  if ($("model").value === CONFIG) body.config = $("config").value;
  else body.model = $("model").value;
  return body;
}

function requestBody() {
  const phase = $("phase").value;
  const body = { ...deploymentBody(), phase, batch: batchValue() };
  // Decode reads a cache of `context` tokens; prefill and whole requests start from a prompt.
  if (phase === "decode") body.context = lengthValue();
  else body.prompt_len = lengthValue();
  return body;
}

async function call(method, path, body) {
  const response = await fetch(path, {
    method, headers: { "content-type": "application/json" }, body: body ? JSON.stringify(body) : undefined,
  });
  const doc = await response.json().catch(() => ({ message: response.statusText }));
  if (!response.ok) {
    const error = new Error(doc.message || response.statusText);
    error.field = doc.field;
    error.status = response.status;
    throw error;
  }
  return doc;
}

function showError(error) {
  // The left column's marks only: the serving panel (serving.js) keeps its own until its next run.
  $("controls").querySelectorAll(".invalid").forEach((el) => el.classList.remove("invalid"));
  const box = $("error");
  // While the inputs are wrong the charts still show the last good answer: grey it out.
  $("results").classList.toggle("stale", Boolean(error));
  if (!error) { box.hidden = true; box.textContent = ""; return; }
  box.hidden = false;
  box.textContent = error.field ? `${error.field}: ${error.message}` : error.message;
  const control = error.field === "prompt_len" ? $("context") : $(error.field);
  if (control) control.classList.add("invalid");
}

function renderSummary(r) {
  const t = r.totals;
  $("time").textContent = fmt.seconds(t.time_s);
  // An ideal step's calibrated expectation, beside the roofline's time.
  $("expected").textContent = t.calibrated ? `${t.calibrated.efficiency}: ${fmt.seconds(t.calibrated.time_s)}, ` +
    `${t.calibrated.bound}` : `${r.efficiency} mode`;
  $("bound").textContent = t.bound;
  $("bound").className = `value ${t.bound}`;
  $("tokens").textContent = fmt.rate(t.output_tokens_per_s ?? t.tokens_per_s);
  $("intensity").textContent = `${t.arithmetic_intensity.toPrecision(3)} / ${t.ridge_intensity.toPrecision(3)}`;
  const m = r.memory;
  $("fits").textContent = m.fits ? `fits (≤ ${fmt.int(m.max_batch)})` : `too big (≤ ${fmt.int(m.max_batch)})`;
}

function renderRoofline(fig, report) {
  const chart = $("roofline");
  const layout = { ...fig.layout, height: 520, margin: { l: 70, r: 20, t: 60, b: 60 } };
  return Plotly.react(chart, fig.data, layout, PLOT_CONFIG).then(() => {
    // What the browser test (and anyone curious) reads to know the chart shows this report.
    chart.dataset.batch = String(report.batch);
    chart.dataset.renders = String(Number(chart.dataset.renders || 0) + 1);
  });
}

function renderBreakdown(r) {
  // time_by_class leaves launch overhead out; the report gives it on its own.
  const byClass = { ...r.totals.time_by_class, overhead: r.totals.overhead_time_s };
  const traces = Object.entries(byClass).filter(([, s]) => s > 0).map(([cls, s]) => ({
    type: "bar", orientation: "h", y: ["step"], x: [s * 1e3], name: CLASS_LABELS[cls] || cls,
    marker: { color: CLASS_COLOURS[cls] || "#56B4E9" },
    hovertemplate: `${CLASS_LABELS[cls] || cls}: %{x:.4g} ms (${(100 * s / r.totals.time_s).toFixed(1)}%)<extra></extra>`,
  }));
  Plotly.react($("breakdown"), traces, {
    title: { text: "time by operator class", x: 0.02, font: { size: 15 } }, barmode: "stack", height: 240,
    xaxis: { title: { text: "ms per step" } }, yaxis: { visible: false }, legend: { orientation: "h", y: -0.45 },
    margin: { l: 20, r: 20, t: 40, b: 80 }, template: "simple_white",
  }, PLOT_CONFIG);
}

function renderMemory(r) {
  const m = r.memory;
  const parts = [["weights", m.weights_bytes, "#0072B2"], ["KV cache", m.kv_cache_bytes, "#D55E00"],
    ["activations", m.activation_bytes, "#E69F00"]];
  const traces = parts.map(([name, b, colour]) => ({
    type: "bar", orientation: "h", y: ["memory"], x: [b / 1e9], name, marker: { color: colour },
    hovertemplate: `${name}: %{x:.3g} GB<extra></extra>`,
  }));
  const cap = m.capacity_bytes / 1e9;
  Plotly.react($("memory"), traces, {
    title: { text: `memory: ${fmt.bytes(m.total_bytes)} of ${fmt.bytes(m.capacity_bytes)}`, x: 0.02, font: { size: 15 } },
    barmode: "stack", height: 240, xaxis: { title: { text: "GB" }, range: [0, Math.max(cap, m.total_bytes / 1e9) * 1.05] },
    yaxis: { visible: false }, legend: { orientation: "h", y: -0.45 }, margin: { l: 20, r: 20, t: 40, b: 80 },
    shapes: [{ type: "line", x0: cap, x1: cap, y0: 0, y1: 1, yref: "paper", line: { color: "black", width: 2 } }],
    annotations: [{ x: cap, y: 1, yref: "paper", text: "capacity", showarrow: false, xanchor: "right", yanchor: "bottom" }],
    template: "simple_white",
  }, PLOT_CONFIG);
}

function renderOperators(r) {
  const rows = [...r.operators].sort((a, b) => b.time_s - a.time_s).slice(0, 12).map((o) => {
    const tr = document.createElement("tr");
    const cells = [o.name, o.count, fmt.seconds(o.time_s), `${(100 * o.time_s / r.totals.time_s).toFixed(1)}%`,
      o.arithmetic_intensity.toPrecision(3), o.bound];
    for (const c of cells) { const td = document.createElement("td"); td.textContent = c; tr.append(td); }
    return tr;
  });
  $("operators").querySelector("tbody").replaceChildren(...rows);
}

// The explanation comes as Markdown (`rooflm explain`); this renders the little it uses: headings,
// paragraphs, bullets, tables, **bold** and `code`. Text is escaped first, so nothing in it runs.
function markdown(text) {
  const esc = (t) => t.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  const inline = (t) => esc(t).replace(/\*\*([^*]+)\*\*/g, "<strong>$1</strong>").replace(/`([^`]+)`/g, "<code>$1</code>");
  const out = [];
  let list = false;
  let table = false;
  for (const line of text.split("\n")) {
    if (list && !line.startsWith("- ")) { out.push("</ul>"); list = false; }
    if (table && !line.startsWith("|")) { out.push("</table>"); table = false; }
    if (line.startsWith("## ")) out.push(`<h4>${inline(line.slice(3))}</h4>`);
    else if (line.startsWith("# ")) out.push(`<h3>${inline(line.slice(2))}</h3>`);
    else if (line.startsWith("- ")) { if (!list) { out.push("<ul>"); list = true; } out.push(`<li>${inline(line.slice(2))}</li>`); }
    else if (line.startsWith("|")) {
      if (/^\|[\s:|-]+\|$/.test(line)) continue;  // the header rule
      const cells = line.slice(1, -1).split("|").map((c) => inline(c.trim()));
      const tag = table ? "td" : "th";
      if (!table) { out.push("<table class=\"levers\">"); table = true; }
      out.push(`<tr>${cells.map((c) => `<${tag}>${c}</${tag}>`).join("")}</tr>`);
    } else if (line.trim()) out.push(`<p>${inline(line)}</p>`);
  }
  if (list) out.push("</ul>");
  if (table) out.push("</table>");
  return out.join("");
}

async function renderExplain(body, seq) {
  try {
    const doc = await call("POST", "/api/explain", body);
    if (seq === sequence) $("explain").innerHTML = markdown(doc.markdown || "");
  } catch (error) {
    if (seq === sequence) $("explain").textContent = "";
  }
}

async function update() {
  const seq = ++sequence;
  $("batch-value").textContent = fmt.int(batchValue());
  $("context-value").textContent = fmt.int(lengthValue());
  const body = requestBody();
  try {
    const [report, fig] = await Promise.all([call("POST", "/api/analyze", body), call("POST", "/api/figure/roofline", body)]);
    if (seq !== sequence) return;
    showError(null);
    renderSummary(report);
    renderBreakdown(report);
    renderMemory(report);
    renderOperators(report);
    renderProfile(report);
    await renderRoofline(fig, report);
    renderExplain(body, seq);
  } catch (error) {
    if (seq === sequence) showError(error);
  }
}

function schedule() {
  // Sliders fire many input events; draw once they pause briefly.
  clearTimeout(timer);
  timer = setTimeout(update, 60);
}

async function modelChanged() {
  const pasted = $("model").value === CONFIG;
  $("config-box").hidden = !pasted;
  maxContext = 131072;
  if (!pasted) {
    try {
      const doc = await call("GET", `/api/models/${encodeURIComponent($("model").value)}`);
      maxContext = doc.max_position_embeddings || maxContext;
    } catch (error) { showError(error); }
  }
  $("context").max = String(Math.min(17, Math.floor(Math.log2(maxContext))));
  schedule();
}

function renderProfile(report) {
  if (!profile) return;
  const used = report.profile;
  const hash = used && used.data_sha256 ? ` (data sha256 ${used.data_sha256.slice(0, 12)}…)` : "";
  $("profile-line").textContent = used ? `predicting with profile ${profile.name}${hash}` : `loaded ${profile.name}`;
}

function efficiencyChanged() {
  // The profile input belongs to calibrated mode; ideal mode has no parameters to fit.
  $("profile-box").hidden = $("efficiency").value !== "calibrated";
  schedule();
}

function profileChosen() {
  const file = $("profile_toml").files[0];
  if (!file) {
    profile = null;
    $("profile-line").textContent = "none: the catalog's calibration";
    schedule();
    return;
  }
  const reader = new FileReader();
  reader.onload = () => {
    profile = { name: file.name, text: String(reader.result) };
    $("profile-line").textContent = `loaded ${file.name}`;
    schedule();
  };
  reader.onerror = () => showError(new Error(`profile_toml: cannot read ${file.name}`));
  reader.readAsText(file);
}

function hardwareChanged() {
  $("hardware-box").hidden = $("hardware").value !== HARDWARE_TOML;
  schedule();
}

function phaseChanged() {
  $("context-label").textContent = $("phase").value === "decode" ? "Context" : "Prompt length";
  schedule();
}

function fill(select, items, chosen) {
  select.replaceChildren(...items.map(([value, text, disabled]) => {
    const option = new Option(text, value, false, value === chosen);
    option.disabled = Boolean(disabled);
    return option;
  }));
}

async function start() {
  try {
    const [models, hardware, schemes] = await Promise.all([
      call("GET", "/api/models"), call("GET", "/api/hardware"), call("GET", "/api/schemes")]);
    fill($("model"), [...models.models.map((m) => [m.name, m.supported ? m.name : `${m.name} (not supported yet)`,
      !m.supported]), [CONFIG, "paste a config.json…"]], "llama-3.1-8b");
    fill($("hardware"), [...hardware.hardware.map((h) => [h.name, h.display_name || h.name]),
      [HARDWARE_TOML, "paste a hardware TOML…"]], "h100-sxm");
    fill($("quant"), schemes.schemes.map((s) => [s, s]), "bf16");
  } catch (error) { showError(error); return; }
  $("model").addEventListener("change", modelChanged);
  $("phase").addEventListener("change", phaseChanged);
  $("hardware").addEventListener("change", hardwareChanged);
  $("efficiency").addEventListener("change", efficiencyChanged);
  $("profile_toml").addEventListener("change", profileChosen);
  for (const id of ["quant", "kv_dtype", "tp", "ep", "pp", "dp"]) {
    $(id).addEventListener("change", schedule);
  }
  for (const id of ["batch", "context", "config", "hardware_toml"]) $(id).addEventListener("input", schedule);
  await modelChanged();
}

start();
