// The report view: an OData page (or any {columns, rows} result) as a sortable, paged table and a bar chart.
// Talks to the host only through the ext-apps `App` bridge; never touches the network itself.
import {
  App,
  applyDocumentTheme,
  applyHostFonts,
  applyHostStyleVariables,
} from "@modelcontextprotocol/ext-apps/app-with-deps";
import { scaleBand, scaleLinear } from "d3-scale";
import { select } from "d3-selection";

const PAGE_TOOL = "view_odata_page"; // app-only: the server's next/previous feed page, with column types and units
const ROWS_PER_VIEW = 20;
const MAX_BARS = 20;

const state = {
  args: null, // the OData page arguments (reportId, region, manifestId, entityType)
  entity: "",
  feedUrl: "",
  columns: [], // [{name, type, unit}]
  rows: [],
  sequence: 0,
  hasNext: false,
  sort: null, // {name, dir: 1 | -1}
  offset: 0,
  groupBy: "",
  sumOf: "",
  busy: false,
};

const $ = (id) => document.getElementById(id);
const app = new App({ name: "itwin-insights-report-view", version: "1.0.0" }, {}, { autoResize: true });

function applyContext(ctx) {
  if (!ctx) return;
  if (ctx.theme) applyDocumentTheme(ctx.theme);
  if (ctx.styles?.variables) applyHostStyleVariables(ctx.styles.variables);
  if (ctx.styles?.css?.fonts) applyHostFonts(ctx.styles.css.fonts);
}

function inferType(rows, name) {
  let type = null;
  for (const row of rows) {
    const v = row[name];
    if (v === null || v === undefined) continue;
    const t = typeof v === "number" ? "number" : typeof v === "boolean" ? "boolean" : "string";
    if (type && type !== t) return "string";
    type = t;
  }
  return type || "string";
}

const isNumeric = (col) => col.type === "number" || /^Edm\.(Double|Decimal|Single|Int\d+|Byte)$/.test(col.type);

function feedFromContext(context) {
  return typeof context === "string" && context.includes("/$metadata") ? context.split("/$metadata")[0] : "";
}

// One result, whatever tool produced it: the app-only page tool, an OData page, or a generic {columns, rows}.
function load(structured, args) {
  if (!structured || typeof structured !== "object") return false;
  let rows = structured.rows ?? structured.value;
  if (!Array.isArray(rows)) return false;
  rows = rows.filter((r) => r && typeof r === "object");
  let columns = structured.columns ?? structured.meta; // iModel query results: `meta` or `columns`
  if (!Array.isArray(columns) || !columns.length) {
    const first = rows.find((r) => !Array.isArray(r));
    columns = first ? Object.keys(first) : (rows[0] || []).map((_, i) => `Column ${i + 1}`);
  }
  columns = columns.map((c, i) => (typeof c === "string" ? { name: c } : { ...c, name: c?.name ?? `Column ${i + 1}` }));
  // Positional rows (each a JSON array, as the iModel Query API returns them) become objects by column.
  rows = rows.map((r) => (Array.isArray(r) ? Object.fromEntries(columns.map((c, i) => [c.name, r[i] ?? null])) : r));
  state.columns = columns.map((c) => ({ name: c.name, type: c.type || inferType(rows, c.name), unit: c.unit || "" }));
  state.rows = rows;
  state.entity = structured.entitySet || args?.entityType || state.entity || "Result";
  state.feedUrl = structured.feedUrl || feedFromContext(structured["@odata.context"]) || state.feedUrl;
  state.sequence = Number.isInteger(structured.sequence) ? structured.sequence : Number(args?.sequence ?? 0);
  state.hasNext = Boolean(structured.hasNext ?? structured["@odata.nextLink"]);
  state.rowsInPage = Number.isInteger(structured.rowsInPage) ? structured.rowsInPage : rows.length;
  state.offset = 0;
  if (!state.columns.some((c) => c.name === state.sort?.name)) state.sort = null;
  pickChartColumns();
  render();
  return true;
}

function pickChartColumns() {
  const names = state.columns.map((c) => c.name);
  const numeric = state.columns.filter(isNumeric).map((c) => c.name);
  const groups = state.columns.filter((c) => !isNumeric(c)).map((c) => c.name);
  if (!groups.includes(state.groupBy)) state.groupBy = groups.find((n) => !/id$/i.test(n)) || groups[0] || names[0] || "";
  if (!numeric.includes(state.sumOf)) state.sumOf = numeric.find((n) => !/id$/i.test(n)) || numeric[0] || "";
}

function compare(a, b) {
  if (a === b) return 0;
  if (a === null || a === undefined) return 1;
  if (b === null || b === undefined) return -1;
  if (typeof a === "number" && typeof b === "number") return a - b;
  return String(a).localeCompare(String(b), undefined, { numeric: true });
}

function sortedRows() {
  if (!state.sort) return state.rows;
  const { name, dir } = state.sort;
  const nullsLast = (a, b) => (a[name] ?? null) === null || (b[name] ?? null) === null;
  return [...state.rows].sort((a, b) => (nullsLast(a, b) ? compare(a[name], b[name]) : dir * compare(a[name], b[name])));
}

function format(value) {
  if (value === null || value === undefined) return "";
  if (typeof value === "object") return JSON.stringify(value);
  if (typeof value === "number" && !Number.isInteger(value)) return value.toLocaleString(undefined, { maximumFractionDigits: 3 });
  return typeof value === "number" ? value.toLocaleString() : String(value);
}

function renderHeader() {
  $("entity").textContent = state.entity;
  const page = `feed page ${state.sequence + 1}${state.hasNext ? ", more pages follow" : ""}`;
  $("summary").textContent = `${state.rows.length} rows (${page})`;
  $("summary").dataset.rows = String(state.rows.length);
  $("feed-box").hidden = !state.feedUrl;
  $("feed").value = state.feedUrl;
}

function sortBy(name) {
  state.sort = state.sort?.name === name ? { name, dir: -state.sort.dir } : { name, dir: 1 };
  state.offset = 0;
  renderTable();
  document.querySelector(`th[data-column="${CSS.escape(name)}"]`)?.focus();
}

function renderTable() {
  const thead = select("#table thead");
  thead.selectAll("tr").data([null]).join("tr")
    .selectAll("th").data(state.columns, (c) => c.name).join("th")
    .attr("data-column", (c) => c.name)
    .attr("aria-sort", (c) => (state.sort?.name === c.name ? (state.sort.dir > 0 ? "ascending" : "descending") : null))
    .html("")
    .call((th) => th.append("span").attr("class", "name").text((c) => c.name))
    .call((th) => th.append("span").attr("class", "type").text((c) => [c.type.replace(/^Edm\./, ""), c.unit].filter(Boolean).join(" · ")))
    .attr("tabindex", 0)
    .on("click", (_, c) => sortBy(c.name))
    .on("keydown", (event, c) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        sortBy(c.name);
      }
    });
  const rows = sortedRows().slice(state.offset, state.offset + ROWS_PER_VIEW);
  select("#table tbody").selectAll("tr").data(rows).join("tr")
    .selectAll("td").data((row) => state.columns.map((c) => [row[c.name], c])).join("td")
    .attr("class", ([, c]) => (isNumeric(c) ? "num" : null))
    .attr("title", ([v]) => format(v))
    .text(([v]) => format(v));
  const total = state.rows.length;
  $("rows-range").textContent = total ? `rows ${state.offset + 1}–${state.offset + rows.length} of ${total}` : "no rows";
  $("prev-rows").disabled = state.offset === 0;
  $("next-rows").disabled = state.offset + ROWS_PER_VIEW >= total;
  const pageable = Boolean(state.args) && Boolean(app.getHostCapabilities()?.serverTools);
  $("prev-page").disabled = !pageable || state.busy || state.sequence === 0;
  $("next-page").disabled = !pageable || state.busy || !state.hasNext;
  $("page-label").textContent = `page ${state.sequence + 1}`;
  $("table-box").hidden = false;
}

function chartData() {
  const sums = new Map();
  for (const row of state.rows) {
    const key = row[state.groupBy] === null || row[state.groupBy] === undefined ? "(none)" : format(row[state.groupBy]);
    const v = row[state.sumOf];
    sums.set(key, (sums.get(key) || 0) + (typeof v === "number" ? v : 0));
  }
  const all = [...sums].map(([key, value]) => ({ key, value })).sort((a, b) => b.value - a.value);
  $("chart-note").textContent = all.length > MAX_BARS ? `The ${MAX_BARS} largest of ${all.length} groups.` : "";
  return all.slice(0, MAX_BARS);
}

function renderChart() {
  const options = (id, names, chosen) => select(id).selectAll("option").data(names, (n) => n).join("option")
    .attr("value", (n) => n).property("selected", (n) => n === chosen).text((n) => n);
  options("#group-by", state.columns.map((c) => c.name), state.groupBy);
  options("#sum-of", state.columns.filter(isNumeric).map((c) => c.name), state.sumOf);
  if (!state.sumOf || !state.rows.length) {
    $("chart-box").hidden = true;
    return;
  }
  $("chart-box").hidden = false;
  const data = chartData();
  const width = Math.max(320, $("chart").clientWidth || 640);
  const barHeight = 22;
  const margin = { left: 150, right: 90 };
  const height = data.length * barHeight + 8;
  const x = scaleLinear().domain([0, Math.max(0, ...data.map((d) => d.value)) || 1]).range([0, width - margin.left - margin.right]);
  const y = scaleBand().domain(data.map((d) => d.key)).range([4, height - 4]).padding(0.18);
  const unit = state.columns.find((c) => c.name === state.sumOf)?.unit || "";
  const svg = select("#chart").attr("viewBox", `0 0 ${width} ${height}`).attr("height", height)
    .attr("aria-label", `Sum of ${state.sumOf} by ${state.groupBy}`);
  svg.selectAll("g.bar-row").data(data, (d) => d.key).join((enter) => {
    const g = enter.append("g").attr("class", "bar-row");
    g.append("text").attr("class", "label");
    g.append("rect").attr("class", "bar");
    g.append("text").attr("class", "value");
    return g;
  }).attr("transform", (d) => `translate(0,${y(d.key)})`)
    .call((g) => g.select("text.label").attr("x", margin.left - 6).attr("y", y.bandwidth() / 2).attr("dy", "0.35em")
      .attr("text-anchor", "end").text((d) => (d.key.length > 22 ? `${d.key.slice(0, 21)}…` : d.key)))
    .call((g) => g.select("rect.bar").attr("x", margin.left).attr("height", y.bandwidth())
      .attr("width", (d) => Math.max(0, x(Math.max(0, d.value))))
      .attr("data-key", (d) => d.key).attr("data-value", (d) => String(d.value)))
    .call((g) => g.select("text.value").attr("x", (d) => margin.left + x(Math.max(0, d.value)) + 4)
      .attr("y", y.bandwidth() / 2).attr("dy", "0.35em")
      .text((d) => `${format(d.value)}${unit ? ` ${unit}` : ""}`));
}

function render() {
  $("app").setAttribute("aria-busy", String(state.busy));
  renderHeader();
  renderChart();
  renderTable();
}

function setStatus(text) {
  $("status").textContent = text;
}

function textOf(result) {
  return (result?.content || []).filter((c) => c.type === "text").map((c) => c.text).join("\n");
}

async function fetchPage(sequence) {
  if (!state.args || state.busy) return;
  state.busy = true;
  render();
  setStatus(`Loading feed page ${sequence + 1}…`);
  try {
    const result = await app.callServerTool({ name: PAGE_TOOL, arguments: { ...state.args, sequence } });
    if (result.isError) setStatus(textOf(result));
    else {
      setStatus("");
      state.busy = false;
      load(result.structuredContent, { ...state.args, sequence });
    }
  } catch (error) {
    setStatus(`Could not load the page: ${error?.message || error}`);
  } finally {
    state.busy = false;
    render();
  }
}

function odataArgs(args) {
  const keys = ["reportId", "region", "manifestId", "entityType"];
  return args && keys.every((k) => typeof args[k] === "string") ? Object.fromEntries(keys.map((k) => [k, args[k]])) : null;
}

app.onhostcontextchanged = (ctx) => applyContext(app.getHostContext() || ctx);
app.ontoolinput = (params) => {
  state.args = odataArgs(params.arguments);
  state.sequence = Number(params.arguments?.sequence ?? 0);
  setStatus("Running the tool…");
};
app.ontoolresult = (result) => {
  if (result.isError || !load(result.structuredContent, { ...state.args, sequence: state.sequence })) {
    setStatus(textOf(result) || "The tool returned no rows.");
    return;
  }
  setStatus("");
  // The model's result holds only a preview of the page: fetch the whole page with column types and units.
  if (state.args && app.getHostCapabilities()?.serverTools) fetchPage(state.sequence);
};

$("prev-rows").onclick = () => { state.offset = Math.max(0, state.offset - ROWS_PER_VIEW); renderTable(); };
$("next-rows").onclick = () => { state.offset += ROWS_PER_VIEW; renderTable(); };
$("prev-page").onclick = () => fetchPage(state.sequence - 1);
$("next-page").onclick = () => fetchPage(state.sequence + 1);
$("group-by").onchange = (e) => { state.groupBy = e.target.value; renderChart(); };
$("sum-of").onchange = (e) => { state.sumOf = e.target.value; renderChart(); };
$("copy").onclick = async () => {
  $("feed").select();
  try { await navigator.clipboard.writeText(state.feedUrl); setStatus("Feed URL copied."); }
  catch { setStatus("Select the feed URL and copy it."); }
};

app.connect().then(() => applyContext(app.getHostContext()), (error) => setStatus(`Not connected to a host: ${error?.message || error}`));
