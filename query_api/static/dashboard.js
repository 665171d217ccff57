// The dashboard (architecture §14): reads the public statistics endpoints with the user's key
// (dash-state.js keeps it) and shows them as a map, charts, tables and a CSV, again every few
// seconds while the window includes now: views and unique viewers, where (countries, regions),
// what (videos), on which sites and pages, and with which browsers and systems.

import { ApiError, getRows, unavailableText } from "./dash-api.js";
import { CountChart, UNIQUES } from "./dash-chart.js";
import { WorldMap, colour } from "./dash-map.js";
import { RegionsPanel } from "./dash-regions.js";
import { countriesCsv, download, fillCountries, fillTop, unavailable } from "./dash-tables.js";
import {
  currentWindow, readFragment, setKey, state, writeFragment, zones,
} from "./dash-state.js";
import {
  HOURLY_UP_TO_MS, PRESETS, describe, fromLocalInput, includesNow, localInput, spanOf,
} from "./dash-window.js";

const REFRESH_MS = 5000;
const TOP = 10;
const $ = (id) => document.getElementById(id);
const number = new Intl.NumberFormat("en");
const format = (n) => number.format(n);

window.viewstatsDashboard = state;

const map = new WorldMap($("map"), $("tooltip"), format, selectCountry);
const chart = new CountChart($("chart"), $("series"), format);
const uniquesChart = new CountChart($("uniques-chart"), $("uniques-series"), format, UNIQUES);
const regions = new RegionsPanel($("regions"), $("regions-title"), $("regions-all"), format);
// The top lists: the endpoint and how a row is named.
const TOP_LISTS = {
  popular: (row) => row.id,
  hosts: (row) => row.host || "(no host)",
  embeds: (row) => row.embed_url || "(no page)",
  browsers: (row) => row.browser,
  systems: (row) => row.os,
};

function showMessage(title, detail, kind = "error") {
  const box = $("message");
  const heading = document.createElement("strong");
  heading.textContent = title;
  box.replaceChildren(heading, detail);
  box.className = `message ${kind === "info" ? "info" : ""}`;
  box.hidden = false;
}

function clearPanels() {
  state.rows = [];
  map.update(new Map(), 0);
  unavailable($("countries"), 4, "–");
  const span = spanOf(...Object.values(currentWindow()));
  chart.update([], span, false, state.tz);
  uniquesChart.update([], span, false, state.tz);
  regions.clear();
  for (const table of Object.keys(TOP_LISTS)) unavailable($(table), 2, "–");
  for (const id of ["kpi-views", "kpi-uniques", "kpi-countries", "kpi-top"]) {
    $(id).textContent = "–";
  }
  $("csv").disabled = true;
}

async function refresh() {
  if (!state.key) {
    clearPanels();
    showMessage("Enter an API key to see views.",
      "Create one with `viewstats keys create --client-id N`; it stays in this browser tab.",
      "info");
    return;
  }
  const generation = ++state.generation;
  state.busy = true;
  state.stopped = false;
  const { dateFrom, dateTo } = currentWindow();
  const span = spanOf(dateFrom, dateTo);
  const hourly = span.to - span.from < HOURLY_UP_TO_MS;
  const params = { date_from: dateFrom, date_to: dateTo, type: state.type };
  const lists = Object.keys(TOP_LISTS);
  const regionsLoaded = regions.load(state.key, params, state.regionsOf, countryNames());
  const answers = await Promise.allSettled([
    getRows("countries", state.key, params),
    getRows("views", state.key, { ...params, granularity: hourly ? "1h" : "" }),
    // Everyone who loaded a player (the API's default): that is what the viewers rollup keeps,
    // so it stays fast at any window, where a count of watchers only reads every event.
    getRows("uniqs", state.key, params),
    getRows("uniqs", state.key, { ...params, group: "date" }),
    ...lists.map((list) => getRows(list, state.key, { ...params, limit: TOP })),
  ]);
  await regionsLoaded;
  if (generation !== state.generation) return; // a newer window or key took over
  state.busy = false;
  const [countries, views, uniques, uniquesByDay, ...tops] = answers;
  if (countries.status === "rejected") {
    failed(countries.reason);
    return;
  }
  $("message").hidden = true;
  state.live = includesNow(span);
  showCountries(countries.value);
  $("kpi-window").textContent = `${describe(span, state.tz)} (${state.tz})`;
  $("granularity").textContent = hourly ? "· per hour" : "· per UTC day";
  if (views.status === "fulfilled") chart.update(views.value, span, hourly, state.tz);
  else chart.container.textContent = unavailableText(views.reason);
  $("kpi-uniques").textContent = uniques.status === "fulfilled"
    ? format(uniques.value.reduce((sum, row) => sum + row.unique_ips, 0)) : "–";
  if (uniquesByDay.status === "fulfilled") {
    uniquesChart.update(uniquesByDay.value, span, false, state.tz);
  } else uniquesChart.container.textContent = unavailableText(uniquesByDay.reason);
  lists.forEach((list, i) => showTop($(list), tops[i], TOP_LISTS[list]));
  state.refreshes += 1;
  const time = new Date().toLocaleTimeString("en-GB", { timeZone: state.tz });
  $("status").textContent = state.live ? `Live · updated ${time} · every ${REFRESH_MS / 1000} s`
    : `Updated ${time}`;
  $("status").classList.toggle("live", state.live);
}

function showTop(table, answer, label) {
  if (answer.status === "fulfilled") fillTop(table, answer.value, format, label, TOP);
  else unavailable(table, 2, unavailableText(answer.reason));
}

function showCountries(rows) {
  state.rows = rows;
  const total = rows.reduce((sum, row) => sum + row.views, 0);
  const byCode = new Map(rows.map((r) => [r.country, { views: r.views, name: r.country_name }]));
  map.update(byCode, total);
  const max = rows.length ? rows[0].views : 0;
  fillCountries($("countries"), rows, format, (code) => colour(byCode.get(code)?.views, max));
  $("kpi-views").textContent = format(total);
  $("kpi-countries").textContent = format(rows.filter((r) => r.country !== "ZZ").length);
  $("kpi-top").textContent = rows.length ? rows[0].country_name : "–";
  $("csv").disabled = false;
}

// A country picked on the map or in the country table ("" for all): the region table shows its
// regions, on the same window and filters, without waiting for the next refresh.
function selectCountry(code) {
  if (code === state.regionsOf) return;
  state.regionsOf = code;
  map.select(code);
  writeFragment();
  if (!state.key || state.stopped) return;
  const { dateFrom, dateTo } = currentWindow();
  regions.load(state.key, { date_from: dateFrom, date_to: dateTo, type: state.type }, code,
    countryNames());
}

// Code -> name as the latest country answer gives them, for the region table's title.
function countryNames() {
  return new Map(state.rows.map((row) => [row.country, row.country_name]));
}

function failed(error) {
  state.busy = false;
  clearPanels();
  $("status").textContent = "";
  $("status").classList.remove("live");
  const detail = error instanceof ApiError ? error.message : String(error);
  state.stopped = error instanceof ApiError && [400, 401].includes(error.status);
  if (error instanceof ApiError && error.status === 401) {
    showMessage("The API did not accept this key.",
      `${detail}. Check the key above: \`viewstats keys create\` prints it as key_id$secret.`);
  } else if (error instanceof ApiError && error.status === 400) {
    showMessage("The API did not accept this window.", detail);
  } else {
    showMessage("The API could not answer.", detail);
  }
}

function selectPreset(preset) {
  state.preset = preset;
  for (const button of document.querySelectorAll("[data-preset]")) {
    button.setAttribute("aria-pressed", String(button.dataset.preset === preset));
  }
  $("custom").hidden = preset in PRESETS;
}

function fillCustomInputs() {
  const span = spanOf(...Object.values(currentWindow()));
  if (!Number.isNaN(span.from)) $("from").value = localInput(state.tz, span.from);
  if (!Number.isNaN(span.to)) $("to").value = localInput(state.tz, span.to);
}

function wire() {
  const tz = $("tz");
  const names = zones.all.includes(state.tz) ? zones.all : [state.tz, ...zones.all];
  tz.replaceChildren(...names.map((zone) => new Option(zone, zone)));
  tz.value = state.tz;
  $("type").value = state.type;
  $("key").value = state.key;
  selectPreset(state.preset);
  fillCustomInputs();

  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    setKey($("key").value.trim());
    refresh();
  });
  $("forget").addEventListener("click", () => {
    setKey("");
    $("key").value = "";
    state.generation += 1;
    refresh();
  });
  for (const button of document.querySelectorAll("[data-preset]")) {
    button.addEventListener("click", () => {
      if (button.dataset.preset === "custom") {
        fillCustomInputs();
        selectPreset("custom");
        return; // applied with the Apply button
      }
      selectPreset(button.dataset.preset);
      writeFragment();
      refresh();
    });
  }
  $("apply").addEventListener("click", () => {
    const dateFrom = fromLocalInput(state.tz, $("from").value);
    const dateTo = fromLocalInput(state.tz, $("to").value);
    if (!dateFrom || !dateTo) return;
    Object.assign(state, { dateFrom, dateTo });
    writeFragment();
    refresh();
  });
  tz.addEventListener("change", () => {
    state.tz = tz.value;
    fillCustomInputs();
    writeFragment();
    refresh();
  });
  $("type").addEventListener("change", () => {
    state.type = $("type").value;
    writeFragment();
    refresh();
  });
  $("regions-all").addEventListener("click", () => selectCountry(""));
  $("countries").tBodies[0].addEventListener("click", (event) => {
    const row = event.target.closest("tr[data-code]");
    if (row) selectCountry(row.dataset.code);
  });
  $("csv").addEventListener("click", () => {
    const { dateFrom, dateTo } = currentWindow();
    const name = `viewstats-countries_${dateFrom}_${dateTo}.csv`.replace(/[:+]/g, "-");
    download(name, countriesCsv(state.rows));
  });
  window.addEventListener("hashchange", () => {
    if (!new URLSearchParams(location.hash.slice(1)).has("key")) return; // our own rewrite
    readFragment();
    $("key").value = state.key;
    map.select(state.regionsOf);
    selectPreset(state.preset);
    fillCustomInputs();
    refresh();
  });
}

readFragment();
wire();
map.select(state.regionsOf);
refresh();
map.load();
setInterval(() => {
  const live = includesNow(spanOf(...Object.values(currentWindow())));
  if (state.key && live && !state.busy && !document.hidden && !state.stopped) refresh();
}, REFRESH_MS);
