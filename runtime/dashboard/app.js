// The dashboard: log in, load the lab once, then follow it over the WebSocket (no polling).

import { api, ApiError, forget, LiveStream, login, session } from "./api.js";
import { Chart, WINDOW_S } from "./chart.js";
import { Topology } from "./topology.js";
import { Tree } from "./tree.js";

const $ = (sel) => document.querySelector(sel);
const TWIN_PAGE = 1000; // the most GET /twins gives in one page
const twins = new Map(); // id -> summary (+ values, detail)
let selectedTwin = null;
let selectedMetric = null;
let scope = "";
let stream = null;
let tree, chart, topology;

function fmt(value) {
  if (typeof value === "number") return Number.isInteger(value) ? String(value) : value.toFixed(2);
  if (value === null || value === undefined) return "-";
  return String(value);
}

function time(ts) { return ts ? new Date(ts * 1000).toLocaleTimeString() : ""; }

function isOperator() { return ["operator", "admin"].includes(session()?.role); }

// -- login --------------------------------------------------------------------------------

function showLogin(message = "") {
  if (stream) stream.close();
  stream = null;
  forget();
  $("#app").hidden = true;
  $("#login").hidden = false;
  $("#logout").hidden = true;
  $("#who").textContent = "";
  $("#login-error").textContent = message;
}

async function onLogin(ev) {
  ev.preventDefault();
  $("#login-error").textContent = "";
  try {
    await login($("#username").value, $("#password").value);
    $("#password").value = "";
    await start();
  } catch (err) {
    $("#login-error").textContent = err.status === 401 ? "Wrong user name or password." : err.message;
  }
}

async function guarded(work) {
  try {
    return await work();
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) showLogin("Your session ended; log in again.");
    else throw err;
  }
}

// -- start: load everything once ------------------------------------------------------------

// Every twin of the lab, page after page: a big lab has more than one page holds.
async function allTwins() {
  const items = [];
  for (let page = 1; ; page += 1) {
    const res = await api(`/twins?page=${page}&page_size=${TWIN_PAGE}`);
    items.push(...res.items);
    if (res.items.length < TWIN_PAGE || items.length >= res.total) return items;
  }
}

async function start() {
  const s = session();
  $("#login").hidden = true;
  $("#app").hidden = false;
  $("#logout").hidden = false;
  $("#who").textContent = `${s.user} (${s.role})`;
  document.body.classList.toggle("viewer", !isOperator());
  const [hierarchy, twinList, alerts, topo] = await guarded(() => Promise.all([
    api("/hierarchy"), allTwins(), api("/alerts?status=open&page_size=500"), api("/topology"),
  ])) || [];
  if (!hierarchy) return;
  $("#lab-name").textContent = hierarchy.lab;
  twins.clear();
  for (const t of twinList) twins.set(t.id, { ...t, values: {} });
  tree.build(hierarchy.enterprise, hierarchy.levels, twinList);
  topology.render(topo);
  renderTiles();
  $("#alerts tbody").textContent = "";
  for (const a of alerts.items.reverse()) upsertAlert(a);
  stream = new LiveStream(onLive, (up) => {
    $("#live").textContent = up ? "live" : "offline";
    $("#live").className = `live ${up ? "on" : "off"}`;
  });
  stream.open();
  const first = twinList.find((t) => t.id === selectedTwin) || twinList[0];
  if (first) selectTwin(first.id);
}

// -- live messages ------------------------------------------------------------------------

function onLive(msg) {
  switch (msg.type) {
    case "state": return onState(msg);
    case "telemetry": return onTelemetry(msg);
    case "alert": return onAlert(msg);
    default: return undefined;
  }
}

function onState(msg) {
  const twin = twins.get(msg.twin);
  if (!twin) return;
  twin.state = msg.state;
  twin.maintenance = msg.maintenance;
  tree.setTwinState(msg.twin, msg.state);
  topology.setState(msg.twin, msg.state);
  const tile = document.getElementById(`tile-${msg.twin}`);
  if (tile) paintTile(tile, twin);
}

function onTelemetry(msg) {
  const twin = twins.get(msg.twin);
  if (!twin || !msg.values) return;
  twin.values = msg.values;
  twin.ts = msg.ts;
  const tile = document.getElementById(`tile-${msg.twin}`);
  if (tile) paintTile(tile, twin);
  if (msg.twin === selectedTwin && selectedMetric && selectedMetric in msg.values) {
    chart.push(msg.ts, msg.values[selectedMetric]);
    $("#chart-value").textContent = `${fmt(msg.values[selectedMetric])} ${chart.unit}`;
  }
}

function onAlert(msg) {
  if (msg.event === "resolved") {
    document.querySelector(`#alerts tr[data-alert="${CSS.escape(msg.id)}"]`)?.remove();
  } else if (msg.event === "acked") {
    const row = document.querySelector(`#alerts tr[data-alert="${CSS.escape(msg.id)}"]`);
    if (row) markAcked(row, msg.acked_by);
  } else {
    upsertAlert(msg);
  }
  $("#alert-count").textContent = String(document.querySelectorAll("#alerts tbody tr").length);
}

// -- tiles --------------------------------------------------------------------------------

function renderTiles() {
  const box = $("#tiles");
  box.textContent = "";
  $("#tiles-scope").textContent = scope || "all";
  for (const twin of twins.values()) {
    if (scope && twin.uns_path !== scope && !twin.uns_path.startsWith(`${scope}/`)) continue;
    const tile = document.createElement("div");
    tile.className = "tile";
    tile.id = `tile-${twin.id}`;
    tile.dataset.twin = twin.id;
    tile.innerHTML = '<div class="bar"></div><div class="body"><div class="name"></div>' +
      '<div class="state"></div><div class="values"></div></div>';
    tile.querySelector(".name").textContent = twin.name || twin.id;
    tile.addEventListener("click", () => selectTwin(twin.id));
    box.append(tile);
    paintTile(tile, twin);
  }
}

function paintTile(tile, twin) {
  for (const c of [...tile.classList]) if (c.startsWith("state-")) tile.classList.remove(c);
  tile.classList.add(`state-${twin.state || "unknown"}`);
  tile.classList.toggle("selected", twin.id === selectedTwin);
  tile.querySelector(".state").textContent = twin.maintenance ? `maintenance (${twin.maintenance})` : twin.state;
  const values = tile.querySelector(".values");
  const entries = Object.entries(twin.values || {}).slice(0, 3);
  values.textContent = "";
  for (const [name, value] of entries) {
    const line = document.createElement("div");
    line.className = "value";
    line.dataset.metric = name;
    line.textContent = `${name} ${fmt(value)}`;
    values.append(line);
  }
}

// -- selection, chart ---------------------------------------------------------------------

function selectPath(path) {
  scope = path;
  tree.select(path);
  renderTiles();
}

async function selectTwin(id) {
  selectedTwin = id;
  tree.select(id);
  topology.select(id);
  for (const tile of document.querySelectorAll(".tile")) tile.classList.toggle("selected", tile.dataset.twin === id);
  $("#chart-title").textContent = id;
  $("#command-twin").textContent = id;
  for (const b of ["#command-send", "#maintenance-enter", "#maintenance-leave"]) $(b).disabled = !isOperator();
  const detail = await guarded(() => api(`/twins/${encodeURIComponent(id)}`));
  if (!detail || selectedTwin !== id) return;
  const select = $("#metric-select");
  select.textContent = "";
  const numeric = Object.entries(detail.metrics).filter(([, m]) => m.type !== "str");
  for (const [name, m] of numeric) {
    const opt = document.createElement("option");
    opt.value = name;
    opt.textContent = m.unit ? `${name} (${m.unit})` : name;
    select.append(opt);
  }
  selectedMetric = numeric[0]?.[0] || null;
  await loadChart(detail);
}

async function loadChart(detail) {
  const id = selectedTwin;
  if (!selectedMetric) { chart.reset(null, []); return; }
  const from = Date.now() / 1000 - WINDOW_S;
  const hist = await guarded(() => api(`/twins/${encodeURIComponent(id)}/history?metric=${encodeURIComponent(selectedMetric)}&from=${from}`));
  if (!hist || selectedTwin !== id) return;
  chart.reset(detail.metrics[selectedMetric], hist.points.map((p) => [p.ts, p.value]));
  const last = hist.points[hist.points.length - 1];
  $("#chart-value").textContent = last ? `${fmt(last.value)} ${chart.unit}` : "";
}

// -- alerts -------------------------------------------------------------------------------

function upsertAlert(a) {
  const body = $("#alerts tbody");
  let row = body.querySelector(`tr[data-alert="${CSS.escape(a.id)}"]`);
  if (!row) {
    row = document.createElement("tr");
    row.dataset.alert = a.id;
    row.innerHTML = "<td class='sev'></td><td class='twin'></td><td class='msg'></td><td class='at'></td><td class='act'></td>";
    body.prepend(row);
  }
  row.dataset.twin = a.device;
  const sev = row.querySelector(".sev");
  sev.textContent = a.severity;
  sev.className = `sev sev-${a.severity}`;
  row.querySelector(".twin").textContent = a.device;
  row.querySelector(".msg").textContent = a.message;
  row.querySelector(".at").textContent = time(a.raised_at);
  if (a.acked_at) markAcked(row, a.acked_by);
  else if (!row.querySelector("button.ack")) {
    const button = document.createElement("button");
    button.className = "ack";
    button.type = "button";
    button.textContent = "Ack";
    button.addEventListener("click", () => ack(a.id, row, button));
    row.querySelector(".act").append(button);
  }
  $("#alert-count").textContent = String(body.querySelectorAll("tr").length);
}

function markAcked(row, by) {
  row.classList.add("acked");
  row.querySelector(".act").textContent = `acked by ${by}`;
}

async function ack(id, row, button) {
  button.disabled = true;
  try {
    const res = await guarded(() => api(`/alerts/${encodeURIComponent(id)}/ack`, { method: "POST" }));
    if (res) markAcked(row, res.acked_by);
  } catch (err) {
    button.disabled = false;
    row.querySelector(".act").title = err.message;
  }
}

// -- commands -----------------------------------------------------------------------------

function showResult(text, kind) {
  const out = $("#command-result");
  out.textContent = text;
  out.className = `result ${kind}`;
  out.dataset.result = kind;
}

async function onCommand(ev) {
  ev.preventDefault();
  if (!selectedTwin) return;
  let args;
  try { args = JSON.parse($("#command-args").value || "{}"); } catch {
    showResult("arguments must be JSON", "failed");
    return;
  }
  const command = $("#command-select").value;
  showResult(`${command}: waiting for the ack...`, "pending");
  try {
    const r = await guarded(() => api(`/twins/${encodeURIComponent(selectedTwin)}/commands`,
      { method: "POST", json: { command, args } }));
    if (r) showResult(`${r.command} -> ${r.result}: ${r.detail}` + (r.latency_ms != null ? ` (${r.latency_ms} ms)` : ""), r.result);
  } catch (err) {
    showResult(`${command} failed: ${err.message}`, "failed");
  }
}

async function onMaintenance(action) {
  if (!selectedTwin) return;
  showResult(`maintenance ${action}...`, "pending");
  try {
    const r = await guarded(() => api(`/twins/${encodeURIComponent(selectedTwin)}/maintenance`,
      { method: "POST", json: { action } }));
    if (r) showResult(`maintenance ${action}: ${r.state}`, "acked");
  } catch (err) {
    showResult(`maintenance ${action} failed: ${err.message}`, "failed");
  }
}

// -- wiring -------------------------------------------------------------------------------

window.addEventListener("DOMContentLoaded", () => {
  tree = new Tree($("#tree"), { onSelectPath: selectPath, onSelectTwin: selectTwin });
  chart = new Chart($("#chart"));
  topology = new Topology($("#topology"), selectTwin);
  $("#login-form").addEventListener("submit", onLogin);
  $("#logout").addEventListener("click", () => showLogin());
  $("#command-form").addEventListener("submit", onCommand);
  $("#maintenance-enter").addEventListener("click", () => onMaintenance("enter"));
  $("#maintenance-leave").addEventListener("click", () => onMaintenance("leave"));
  $("#metric-select").addEventListener("change", async () => {
    selectedMetric = $("#metric-select").value;
    const detail = await guarded(() => api(`/twins/${encodeURIComponent(selectedTwin)}`));
    if (detail) await loadChart(detail);
  });
  const s = session();
  if (s && s.expires > Date.now() / 1000 + 30) start().catch((err) => showLogin(err.message));
  else showLogin();
});
