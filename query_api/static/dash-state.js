// What the dashboard shows: key, window, time zone, type, the country whose regions are listed.
// The URL fragment (#key=…&date_from=…&date_to=…&type=…&tz=…&regions=…) sets it; browsers never send a fragment to the
// server. The key is kept in sessionStorage (this tab only) and taken out of the address bar at
// once, so that a copied address does not carry it; the rest stays there, so a reload shows
// the same window.

import { PRESETS, presetWindow, timeZones } from "./dash-window.js";

const KEY_STORAGE = "viewstats.key";

export const zones = timeZones();

export const state = {
  key: sessionStorage.getItem(KEY_STORAGE) || "",
  preset: "7d",
  dateFrom: "",
  dateTo: "",
  tz: zones.local,
  type: "",
  regionsOf: "", // alpha-2 code, "" for every country's regions
  rows: [],
  live: false,
  refreshes: 0, // answers shown so far (tests wait on it)
  stopped: false, // the API refused the key or window: no auto-refresh until the user acts
  generation: 0,
  busy: false,
};

export function setKey(key) {
  state.key = key;
  if (key) sessionStorage.setItem(KEY_STORAGE, key);
  else sessionStorage.removeItem(KEY_STORAGE);
}

// The window as the API takes it: a preset's moves with the clock, a custom one is fixed.
export function currentWindow() {
  if (state.preset in PRESETS) return presetWindow(state.preset, state.tz);
  return { dateFrom: state.dateFrom, dateTo: state.dateTo };
}

function isTimeZone(name) {
  try {
    new Intl.DateTimeFormat("en", { timeZone: name }); // throws a RangeError for an unknown zone
    return true;
  } catch {
    return false;
  }
}

export function readFragment() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  if (fragment.get("key")) setKey(fragment.get("key"));
  if (fragment.get("tz") && isTimeZone(fragment.get("tz"))) state.tz = fragment.get("tz");
  if (fragment.has("type")) state.type = fragment.get("type");
  const regions = (fragment.get("regions") || "").toUpperCase();
  state.regionsOf = /^[A-Z]{2}$/.test(regions) ? regions : "";
  if (fragment.get("date_from") && fragment.get("date_to")) {
    state.preset = "custom";
    state.dateFrom = fragment.get("date_from");
    state.dateTo = fragment.get("date_to");
  } else if (fragment.get("preset") in PRESETS) {
    state.preset = fragment.get("preset");
  }
  writeFragment();
}

export function writeFragment() {
  const fragment = new URLSearchParams();
  if (state.preset in PRESETS) fragment.set("preset", state.preset);
  else {
    fragment.set("date_from", state.dateFrom);
    fragment.set("date_to", state.dateTo);
  }
  if (state.type) fragment.set("type", state.type);
  if (state.regionsOf) fragment.set("regions", state.regionsOf);
  fragment.set("tz", state.tz);
  history.replaceState(null, "", `${location.pathname}${location.search}#${fragment}`);
}
