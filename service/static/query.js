// The query page: an editor with the prefixes and the named queries as examples, results as a
// table whose IRIs link to their pages, downloads as CSV/JSON, errors as the server words them,
// and the time each query took. Plain browser JavaScript, no network beyond this server.
"use strict";

const page = document.body.dataset;
const base = page.base;                       // every IRI the graph mints starts with this
const editor = document.getElementById("query");
const runButton = document.getElementById("run");
const examples = document.getElementById("examples");
const status = document.getElementById("status");
const results = document.getElementById("results");
const downloads = document.getElementById("downloads");
const prefixes = JSON.parse(document.getElementById("prefixes").textContent);
let catalogue = [];

function prefixBlock() {
  return Object.entries(prefixes).map(([p, ns]) => `PREFIX ${p}: <${ns}>`).join("\n");
}

// The server writes each example (with its heading comment) with its parameters bound to their defaults
// by VALUES blocks, in every group that uses them (a FILTER in a nested group does not see the outer
// group's VALUES). Sent unchanged, it finds the answer the server computed ahead for it.
function exampleText(entry) {
  return entry.example;
}

async function loadExamples() {
  try {
    catalogue = await (await fetch("/queries")).json();
  } catch (error) {
    catalogue = [];
  }
  for (const entry of catalogue) {
    const option = document.createElement("option");
    option.value = entry.name;
    option.textContent = `${entry.name}: ${entry.summary}`;
    examples.appendChild(option);
  }
}

function localHref(iri) {
  return iri.startsWith(base + "/") ? iri.slice(base.length) : iri;
}

function cell(term) {
  const td = document.createElement("td");
  if (!term) return td;
  if (term.type === "uri" && /^https?:\/\//i.test(term.value)) {  // never a javascript: or data: link
    const a = document.createElement("a");
    a.href = localHref(term.value);
    a.textContent = term.value;
    if (!term.value.startsWith(base + "/")) a.target = "_blank";
    td.appendChild(a);
  } else {
    td.textContent = term.value;
    if (term.datatype) td.title = term.datatype;
    if (term["xml:lang"]) td.title = "@" + term["xml:lang"];
  }
  return td;
}

function showTable(data) {
  results.replaceChildren();
  const table = document.createElement("table");
  table.id = "results-table";
  if (data.boolean !== undefined) {
    table.innerHTML = `<tbody><tr><td class="ask">${data.boolean}</td></tr></tbody>`;
    results.appendChild(table);
    return 1;
  }
  const head = table.createTHead().insertRow();
  for (const name of data.head.vars) {
    const th = document.createElement("th");
    th.textContent = name;
    head.appendChild(th);
  }
  const body = table.createTBody();
  for (const binding of data.results.bindings) {
    const row = body.insertRow();
    for (const name of data.head.vars) row.appendChild(cell(binding[name]));
  }
  results.appendChild(table);
  return data.results.bindings.length;
}

function showGraph(text) {
  results.replaceChildren();
  const pre = document.createElement("pre");
  pre.id = "results-graph";
  pre.textContent = text;
  results.appendChild(pre);
}

function showError(message) {
  results.replaceChildren();
  const box = document.createElement("pre");
  box.className = "error";
  box.id = "error";
  box.textContent = message;
  results.appendChild(box);
}

async function post(accept) {
  return fetch("/sparql", {
    method: "POST",
    headers: {"Content-Type": "application/x-www-form-urlencoded", "Accept": accept},
    body: new URLSearchParams({query: editor.value}),
  });
}

async function run() {
  runButton.disabled = true;
  downloads.hidden = true;
  status.textContent = "running…";
  const started = performance.now();
  try {
    const response = await post("application/sparql-results+json, text/turtle;q=0.9");
    const body = await response.text();
    const elapsed = Math.round(performance.now() - started);
    if (!response.ok) {
      showError(`${response.status} ${response.statusText}\n${body}`);
      status.textContent = `failed after ${elapsed} ms`;
      return;
    }
    const truncated = response.headers.get("X-Result-Truncated");
    if ((response.headers.get("Content-Type") || "").includes("json")) {
      const rows = showTable(JSON.parse(body));
      const cached = response.headers.get("X-Cache") === "hit" ? ", computed ahead or asked before" : "";
      status.textContent = `${rows} row${rows === 1 ? "" : "s"} in ${elapsed} ms${cached}` + (truncated ? ` (cut at the result limit)` : "");
      downloads.hidden = false;
    } else {
      showGraph(body);
      status.textContent = `graph in ${elapsed} ms` + (truncated ? ` (cut at the result limit)` : "");
    }
  } catch (error) {
    showError(`the server could not be reached: ${error}`);
    status.textContent = "failed";
  } finally {
    runButton.disabled = false;
  }
}

async function download(accept, name) {
  const response = await post(accept);
  if (!response.ok) {
    showError(`${response.status} ${response.statusText}\n${await response.text()}`);
    return;
  }
  const link = document.createElement("a");
  link.href = URL.createObjectURL(await response.blob());
  link.download = name;
  document.body.appendChild(link);
  link.click();
  link.remove();
}

examples.addEventListener("change", () => {
  const entry = catalogue.find(e => e.name === examples.value);
  if (entry) editor.value = exampleText(entry);
});
document.getElementById("prefix-button").addEventListener("click", () => {
  editor.value = prefixBlock() + "\n\n" + editor.value.replace(/^(PREFIX[^\n]*\n)+\n?/i, "");
});
runButton.addEventListener("click", run);
editor.addEventListener("keydown", event => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); run(); }
  if (event.key === "Tab") {  // indent instead of leaving the editor
    event.preventDefault();
    const at = editor.selectionStart;
    editor.setRangeText("  ", at, editor.selectionEnd, "end");
  }
});
document.getElementById("download-csv").addEventListener("click", () => download("text/csv", "results.csv"));
document.getElementById("download-json").addEventListener("click", () => download("application/sparql-results+json", "results.json"));

const wanted = new URLSearchParams(location.search).get("query");
editor.value = wanted || (prefixBlock() + "\n\nSELECT ?nct ?title WHERE {\n  ?trial a ctkg:Trial ; ctkg:nctId ?nct ; schema:name ?title .\n}\nORDER BY ?nct\n");
loadExamples();
