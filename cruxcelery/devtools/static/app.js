// cruxcelery devtools web UI: plain JavaScript, no build step.
// Run list (live), run detail as a virtualised collapsible tree with timing bars, span panel.
"use strict";

const ROW = 26;
const OVERSCAN = 20;
const $ = (sel) => document.querySelector(sel);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

async function getJSON(url) {
  const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.json();
}

function debounce(fn, ms) {
  let timer = null;
  return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
}

function ms(iso) { return iso ? Date.parse(iso) : null; }
function fmtDuration(value) {
  if (value === null || value === undefined) return "";
  if (value < 1000) return `${Math.round(value)} ms`;
  if (value < 60000) return `${(value / 1000).toFixed(2)} s`;
  return `${Math.floor(value / 60000)} m ${Math.round((value % 60000) / 1000)} s`;
}
function fmtTime(iso) { return iso ? new Date(iso).toLocaleString() : ""; }
function statusBadge(status) { return el("span", { class: `status ${status}`, "data-status": status, text: status }); }
function pretty(value) { return typeof value === "string" ? value : JSON.stringify(value, null, 2); }

// -- live updates ---------------------------------------------------------------------------------
let source = null;
function subscribe(runId, onMessage) {
  if (source) source.close();
  source = new EventSource(runId ? `/api/live?runId=${encodeURIComponent(runId)}` : "/api/live");
  const state = $("#live-state");
  source.onopen = () => { state.className = "live on"; };
  source.onerror = () => { state.className = "live off"; };
  for (const type of ["run", "lifecycle"]) source.addEventListener(type, (e) => onMessage(JSON.parse(e.data)));
}

// -- routing --------------------------------------------------------------------------------------
function navigate(path) { history.pushState({}, "", path); route(); }
document.addEventListener("click", (event) => {
  const link = event.target.closest("a[data-nav]");
  if (!link || event.ctrlKey || event.metaKey) return;
  event.preventDefault();
  navigate(link.getAttribute("data-nav"));
});
window.addEventListener("popstate", route);

function route() {
  const match = location.pathname.match(/^\/runs\/([^/]+)$/);
  $("#runs-view").hidden = !!match;
  $("#run-view").hidden = !match;
  if (match) openRun(decodeURIComponent(match[1]));
  else openList();
}

// -- run list ---------------------------------------------------------------------------------------
const list = { cursor: null };
function listQuery(cursor) {
  const params = new URLSearchParams();
  const status = $("#f-status").value, name = $("#f-name").value.trim(), flow = $("#f-flow").value.trim();
  if (status) params.set("status", status);
  if (name) params.set("name", name);
  if (flow) params.set("flowId", flow);
  if (cursor) params.set("cursor", cursor);
  params.set("limit", "100");
  return `/api/runs?${params}`;
}
function runRow(run) {
  const duration = run.endedAt && run.startedAt ? ms(run.endedAt) - ms(run.startedAt) : null;
  return el("tr", { "data-run-id": run.runId, onclick: () => navigate(`/runs/${run.runId}`) },
    el("td", {}, statusBadge(run.status)),
    el("td", {}, el("a", { href: `/runs/${run.runId}`, "data-nav": `/runs/${run.runId}`, text: run.name || "(no run:start yet)" })),
    el("td", { text: run.rootPrimitive || "" }),
    el("td", { text: fmtTime(run.startedAt) }),
    el("td", { text: fmtDuration(duration) }),
    el("td", { class: "id", text: run.runId }));
}
async function loadRuns(append) {
  const data = await getJSON(listQuery(append ? list.cursor : null));
  const body = $("#runs tbody");
  if (!append) body.replaceChildren();
  body.append(...data.runs.map(runRow));
  list.cursor = data.nextCursor;
  $("#more").hidden = !data.nextCursor;
}
const reloadRuns = debounce(() => loadRuns(false).catch(console.error), 250);
function openList() {
  document.title = "runs · cruxcelery devtools";
  detail.runId = null;
  loadRuns(false).catch(console.error);
  subscribe(null, reloadRuns);
}
for (const id of ["#f-status", "#f-name", "#f-flow"]) $(id).addEventListener("input", reloadRuns);
$("#more").addEventListener("click", () => loadRuns(true));

// -- search -------------------------------------------------------------------------------------------
$("#search-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const q = $("#search").value.trim();
  const box = $("#search-results");
  if (!q) { box.hidden = true; return; }
  if (location.pathname !== "/") navigate("/");
  const data = await getJSON(`/api/search?q=${encodeURIComponent(q)}`);
  box.hidden = false;
  box.replaceChildren(el("h3", { text: `${data.results.length} matches for “${q}”` }),
    el("ul", {}, data.results.map((hit) => el("li", {},
      el("a", { href: `/runs/${hit.runId}`, "data-nav": `/runs/${hit.runId}`, text: hit.name }),
      ` · ${hit.primitive || ""} · ${hit.matched} · in ${hit.runName || hit.runId}`))));
});

// -- run detail ---------------------------------------------------------------------------------------
const detail = { runId: null, data: null, collapsed: new Set(), selected: null, rows: [], byId: new Map() };

function openRun(runId) {
  if (detail.runId !== runId) {
    detail.runId = runId;
    detail.collapsed = new Set();
    detail.selected = null;
    $("#panel").replaceChildren(el("p", { class: "hint", text: "select a span" }));
  }
  loadRun().catch((error) => { $("#run-head").replaceChildren(el("p", { text: String(error) })); });
  subscribe(runId, reloadRun);
}
const reloadRun = debounce(() => loadRun().catch(console.error), 300);

async function loadRun() {
  const runId = detail.runId;
  const infra = $("#infra").checked;
  const data = await getJSON(`/api/runs/${encodeURIComponent(runId)}?infrastructure=${infra}`);
  if (runId !== detail.runId) return;
  detail.data = data;
  detail.byId = new Map(data.spans.map((span) => [span.spanId, span]));
  renderHead(data);
  renderTree();
  if (detail.selected && detail.byId.has(detail.selected)) renderPanel(detail.byId.get(detail.selected));
}

function runLink(link, label) {
  return el("a", { href: `/runs/${link.runId}`, "data-nav": `/runs/${link.runId}`, class: `link-${link.kind}` },
    `${label}: ${link.name || link.runId}`, link.status ? ` (${link.status})` : "");
}

function renderHead(data) {
  const run = data.run;
  document.title = `${run.name || run.runId} · cruxcelery devtools`;
  const links = data.links;
  const linkNodes = [];
  if (links.parent) linkNodes.push(runLink(links.parent, "parent run"));
  for (const link of links.scheduledBy) linkNodes.push(runLink(link, `${link.kind} by`));
  for (const link of links.children) linkNodes.push(runLink(link, "child run"));
  for (const link of links.scheduled) linkNodes.push(runLink(link, link.kind));
  $("#run-head").replaceChildren(el("div", {},
    el("a", { href: "/", "data-nav": "/", text: "← runs" }),
    el("h2", {}, statusBadge(run.status), " ", run.name || "(no run:start received)"),
    el("div", { class: "hint" }, `${run.runId} · ${run.rootPrimitive || ""} · started ${fmtTime(run.startedAt)}`,
      run.durationMs !== null ? ` · ${fmtDuration(run.durationMs)}` : "", ` · ${run.recordCount} records · `,
      el("a", { href: `/api/runs/${run.runId}/records`, target: "_blank", text: "raw records" })),
    el("div", { class: "links" }, linkNodes),
    run.error ? el("div", { class: "diagnostic" }, `error: ${run.error.name || ""} ${run.error.message || ""}`) : null,
    data.run.diagnostics.map((d) => el("div", { class: "diagnostic" }, `${d.code}: ${d.message}`))));
  $("#segments").replaceChildren(...data.segments.map((s) => el("span", {
    class: `segment${s.suspended ? " suspended" : ""}`, title: s.segmentId,
  }, `${s.openedBy || "segment"} ${s.reason ? `(${s.reason})` : ""} · ${s.recordCount} records`,
    s.suspended ? " · suspended" : "", s.missingSeqs.length ? ` · ${s.missingSeqs.length} missing` : "")));
}

function visibleRows() {
  const spans = detail.data.spans.filter((span) => !span.folded);
  const present = new Set(spans.map((s) => s.spanId));
  const children = new Map();
  const roots = [];
  for (const span of spans) {
    const parent = span.displayParentSpanId;
    if (parent && present.has(parent)) {
      if (!children.has(parent)) children.set(parent, []);
      children.get(parent).push(span);
    } else roots.push(span);
  }
  const rows = [];
  const walk = (span, depth) => {
    const kids = children.get(span.spanId) || [];
    rows.push({ span, depth, hasKids: kids.length > 0 });
    if (!detail.collapsed.has(span.spanId)) for (const kid of kids) walk(kid, depth + 1);
  };
  for (const root of roots) walk(root, 0);
  detail.children = children;
  return rows;
}

function renderTree() {
  const data = detail.data;
  detail.rows = visibleRows();
  const starts = data.spans.map((s) => ms(s.startedAt)).filter((v) => v !== null);
  const ends = data.spans.map((s) => ms(s.endedAt)).filter((v) => v !== null);
  detail.t0 = Math.min(...starts, ms(data.run.startedAt) ?? Infinity);
  detail.t1 = Math.max(...ends, ...starts, Date.now() > detail.t0 && data.run.status === "running" ? Date.now() : -Infinity);
  if (!isFinite(detail.t0)) detail.t0 = 0;
  if (!(detail.t1 > detail.t0)) detail.t1 = detail.t0 + 1;
  $("#span-count").textContent = `${detail.rows.length} rows · ${data.spans.length} spans`;
  $("#tree-inner").style.height = `${detail.rows.length * ROW}px`;
  drawRows();
}

function drawRows() {
  const tree = $("#tree");
  const first = Math.max(0, Math.floor(tree.scrollTop / ROW) - OVERSCAN);
  const last = Math.min(detail.rows.length, Math.ceil((tree.scrollTop + tree.clientHeight) / ROW) + OVERSCAN);
  const span0 = detail.t1 - detail.t0;
  const nodes = [];
  for (let i = first; i < last; i++) {
    const { span, depth, hasKids } = detail.rows[i];
    const start = ms(span.startedAt) ?? detail.t0;
    const end = ms(span.endedAt) ?? (span.status === "running" ? detail.t1 : start);
    const left = ((start - detail.t0) / span0) * 100;
    const width = Math.max(((end - start) / span0) * 100, 0.2);
    const classes = ["row", span.infrastructure ? "infra" : "", span.placeholder ? "placeholder" : "",
      span.spanId === detail.selected ? "selected" : ""].join(" ");
    nodes.push(el("div", { class: classes, style: `top:${i * ROW}px`, "data-span-id": span.spanId,
      "data-status": span.status, onclick: () => selectSpan(span.spanId) },
      el("span", { class: "label", style: `padding-left:${depth * 16 + 4}px` },
        el("span", { class: "toggle", onclick: (e) => { e.stopPropagation(); toggle(span.spanId); } },
          hasKids ? (detail.collapsed.has(span.spanId) ? "▸" : "▾") : ""),
        statusBadge(span.status), " ", span.name,
        agentSummary(span) ? el("span", { class: "agent", text: agentSummary(span) }) : null,
        el("span", { class: "prim", text: span.primitive }),
        span.diagnostics.length ? el("span", { class: "diag", text: span.diagnostics.map((d) => d.code).join(", ") }) : null),
      el("span", { class: "bar-area" }, el("span", {
        class: `bar ${span.status}`, style: `left:${left}%;width:${width}%`,
        title: `${fmtDuration(span.durationMs)}`,
      }))));
  }
  $("#tree-inner").replaceChildren(...nodes);
}
$("#tree").addEventListener("scroll", () => requestAnimationFrame(drawRows));

function toggle(spanId) {
  if (detail.collapsed.has(spanId)) detail.collapsed.delete(spanId); else detail.collapsed.add(spanId);
  renderTree();
}
$("#expand-all").addEventListener("click", () => { detail.collapsed.clear(); renderTree(); });
$("#collapse-all").addEventListener("click", () => {
  for (const id of (detail.children || new Map()).keys()) detail.collapsed.add(id);
  renderTree();
});
$("#infra").addEventListener("change", () => loadRun().catch(console.error));

function selectSpan(spanId) {
  detail.selected = spanId;
  drawRows();
  renderPanel(detail.byId.get(spanId));
}

function tokens(span) {
  const m = span.metrics || {};
  if (m.inputTokens === undefined && m.outputTokens === undefined) return "";
  return `${m.inputTokens ?? "?"}→${m.outputTokens ?? "?"} tokens`;
}

// what a generation or tool row adds to its name: model and tokens, the call id, "not executed"
function agentSummary(span) {
  const attrs = span.attributes || {};
  const parts = [];
  if (span.model) parts.push(span.model);
  if (tokens(span)) parts.push(tokens(span));
  if (span.primitive === "tool.call" && attrs.toolCallId) parts.push(attrs.toolCallId);
  if (attrs.executed === false) parts.push("not executed");
  return parts.join(" · ");
}

function kv(pairs) {
  return el("dl", { class: "kv" }, pairs.filter(([, v]) => v !== null && v !== undefined && v !== "")
    .map(([k, v]) => [el("dt", { text: k }), el("dd", { text: String(v) })]));
}

function renderPanel(span) {
  if (!span) return;
  const children = [];
  children.push(el("h3", {}, statusBadge(span.status), " ", span.name));
  children.push(kv([["span", span.spanId], ["primitive", span.primitive], ["started", span.startedAt],
    ["ended", span.endedAt], ["duration", fmtDuration(span.durationMs)], ["raw status", span.rawStatus],
    ["reconciled from", span.reconciledFrom], ["segment", span.segmentId], ["flow", span.flowId],
    ["step", span.stepId], ["tool", span.toolName], ["agent", span.agentId], ["model", span.model],
    ["provider", span.provider], ["tokens", tokens(span)], ["cost (USD)", (span.metrics || {}).costUsd],
    ["response model", (span.endAttributes || {}).responseModel],
    ["finish reasons", ((span.endAttributes || {}).finishReasons || []).join(", ")],
    ["phase", (span.endAttributes || {}).phase], ["error kind", (span.endAttributes || {}).errorKind]]));
  for (const d of span.diagnostics) children.push(el("div", { class: "diagnostic" }, `${d.code}: ${d.message}`));
  const runs = detail.data.links;
  for (const link of [...runs.children, ...runs.scheduled].filter((l) => l.spanId === span.spanId)) {
    children.push(el("div", {}, runLink(link, link.kind === "child" ? "child run" : link.kind)));
  }
  if (span.error || span.errorStack) {
    children.push(el("h4", { text: "error" }));
    if (span.error) children.push(el("div", {}, `${span.error.name || "Error"}: ${span.error.message || ""}`));
    if (span.errorStack) {
      children.push(el("details", { class: "error-stack" }, el("summary", { text: "stack trace" }),
        el("pre", { class: "stack", text: span.errorStack })));
    }
  }
  children.push(el("h4", { text: `events (${span.events.length})` }));
  for (const event of span.events) {
    children.push(el("details", { class: "event" }, el("summary", {}, `${event.name} · ${event.timestamp || ""}`),
      el("pre", { text: pretty(event.attributes) })));
  }
  children.push(el("h4", { text: `artifacts (${span.artifacts.length})` }));
  for (const artifact of span.artifacts) {
    children.push(el("details", { class: "artifact" },
      el("summary", {}, `${artifact.kind} · ${artifact.contentType || ""} · ${artifact.sizeBytes ?? "?"} bytes`),
      el("pre", { class: artifact.kind === "error.stack" ? "stack" : "", text: pretty(artifact.preview) })));
  }
  children.push(el("h4", { text: "attributes" }), el("pre", { text: pretty(span.attributes) }));
  $("#panel").replaceChildren(...children);
}

route();
