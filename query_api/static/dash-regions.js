// The region table (ISO 3166-2, from the viewer's address): every country's regions, or one
// country's when it is selected on the map or in the country table. It loads by itself when the
// selection changes, so that a click does not wait for the rest of the page.

import { getRows, unavailableText } from "./dash-api.js";
import { fillRanked, unavailable } from "./dash-tables.js";

const LIMIT = 100; // more than any country has regions (the US has 57 codes)
const COUNTRY_NAMES = new Intl.DisplayNames(["en"], { type: "region" });

export class RegionsPanel {
  constructor(table, title, back, format) {
    this.table = table;
    this.title = title;
    this.back = back;
    this.format = format;
    this.asked = 0; // the latest load: an older answer arriving later is dropped
  }

  // key and params: the API key and the page's window and filters; country: "" for all, or an
  // alpha-2 code, named by names (code -> name, the countries answer) when it has it.
  async load(key, params, country, names) {
    const ask = ++this.asked;
    const name = names.get(country) || (country && COUNTRY_NAMES.of(country)) || country;
    this.title.textContent = country ? `Regions of ${name}` : "Regions";
    this.back.hidden = !country;
    try {
      const rows = await getRows("regions", key, { ...params, country, limit: LIMIT });
      if (ask !== this.asked) return;
      fillRanked(this.table, rows, this.format, (row) => row.region_name || "(unknown region)",
        (row) => row.region);
    } catch (error) {
      if (ask !== this.asked) return;
      unavailable(this.table, 4, unavailableText(error));
    }
    this.table.dataset.country = country; // what it shows now (tests wait on it)
  }

  clear() {
    this.asked += 1;
    unavailable(this.table, 4, "–");
    delete this.table.dataset.country;
  }
}
