// The world map: Natural Earth 1:110m countries (world-atlas) drawn with d3-geo, each country
// filled by its views, with a tooltip; a click on a country selects it (the region table shows
// its regions) and a click on the sea lets it go. world-atlas ids are ISO 3166-1 numeric; the API speaks
// alpha-2, so country-codes.json (from CLDR, see its "source") maps one to the other.

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 960;
const HEIGHT = 470;
const LEGEND_Y = HEIGHT + 14;
const RAMP = ["#dbeafe", "#93c5fd", "#3b82f6", "#1d4ed8", "#1e3a8a"];
const NO_VIEWS = "#e7ebf1";
const ANTARCTICA = "010";
const REGION_NAMES = new Intl.DisplayNames(["en"], { type: "region" });

function svgElement(name, attrs = {}) {
  const el = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  return el;
}

function mix(a, b, t) {
  const ca = [1, 3, 5].map((i) => parseInt(a.slice(i, i + 2), 16));
  const cb = [1, 3, 5].map((i) => parseInt(b.slice(i, i + 2), 16));
  return `rgb(${ca.map((x, i) => Math.round(x + (cb[i] - x) * t)).join(",")})`;
}

// Views -> colour on a log scale, so that a few big countries do not wash out the rest.
export function colour(views, max) {
  if (!views || !max) return NO_VIEWS;
  const t = max <= 1 ? 1 : Math.log1p(views) / Math.log1p(max);
  const x = t * (RAMP.length - 1);
  const i = Math.min(Math.floor(x), RAMP.length - 2);
  return mix(RAMP[i], RAMP[i + 1], x - i);
}

export class WorldMap {
  // onSelect(code): a country was clicked ("" for the sea).
  constructor(container, tooltip, format, onSelect = () => {}) {
    this.container = container;
    this.tooltip = tooltip;
    this.format = format;
    this.onSelect = onSelect;
    this.selected = "";
    this.paths = new Map(); // alpha-2 -> [path elements] (a code may have several features)
    this.rows = new Map();
    this.total = 0;
  }

  async load() {
    const [atlas, codes] = await Promise.all([
      fetch("/dashboard/static/vendor/countries-110m.json").then((r) => r.ok ? r.json() : null),
      fetch("/dashboard/static/country-codes.json").then((r) => r.json()),
    ]);
    if (!atlas || !window.d3 || !window.topojson) {
      this.container.textContent = "The map needs `viewstats setup` (its files are missing).";
      return;
    }
    const world = topojson.feature(atlas, atlas.objects.countries);
    world.features = world.features.filter((f) => f.id !== ANTARCTICA);
    const projection = d3.geoNaturalEarth1().fitSize([WIDTH, HEIGHT], world);
    const path = d3.geoPath(projection);
    const svg = svgElement("svg", {
      viewBox: `0 0 ${WIDTH} ${HEIGHT + 30}`, role: "img", "aria-label": "World map of views",
    });
    for (const feature of world.features) {
      const code = codes.numeric[feature.id] || codes.names[feature.properties.name] || "";
      const el = svgElement("path", {
        d: path(feature), class: "country", "data-code": code, "data-views": "0",
      });
      el.addEventListener("pointermove", (event) => this.show(event, code, feature));
      el.addEventListener("pointerdown", (event) => this.show(event, code, feature));
      // A finger lifts "leaving" the shape: its tooltip stays until a tap elsewhere.
      el.addEventListener("pointerleave", (event) => {
        if (event.pointerType === "mouse") this.tooltip.hidden = true;
      });
      el.addEventListener("click", () => { if (code) this.onSelect(code); });
      if (code) this.paths.set(code, [...(this.paths.get(code) || []), el]);
      svg.append(el);
    }
    svg.addEventListener("pointerdown", (event) => {
      if (!event.target.classList.contains("country")) this.tooltip.hidden = true;
    });
    svg.addEventListener("click", (event) => {
      if (!event.target.classList.contains("country")) this.onSelect("");
    });
    this.legendGroup = this.legend();
    svg.append(this.legendGroup);
    this.container.replaceChildren(svg);
    this.update(this.rows, this.total);
    this.select(this.selected);
  }

  // Outlines the country `code` ("" none).
  select(code) {
    this.selected = code;
    for (const [other, els] of this.paths) {
      for (const el of els) el.classList.toggle("selected", other === code);
    }
    // Last drawn, so that its neighbours do not cover its outline.
    for (const el of this.paths.get(code) || []) el.parentNode.insertBefore(el, this.legendGroup);
  }

  legend() {
    const group = svgElement("g", { transform: `translate(${WIDTH / 2 - 110},${LEGEND_Y})` });
    const defs = svgElement("defs");
    const gradient = svgElement("linearGradient", { id: "ramp" });
    RAMP.forEach((c, i) => gradient.append(svgElement("stop", {
      offset: `${(100 * i) / (RAMP.length - 1)}%`, "stop-color": c,
    })));
    defs.append(gradient);
    this.legendMax = svgElement("text", { x: 226, y: 9, class: "legend-label" });
    const low = svgElement("text", { x: -6, y: 9, class: "legend-label", "text-anchor": "end" });
    low.textContent = "1";
    group.append(defs, svgElement("rect", { width: 220, height: 10, rx: 3, fill: "url(#ramp)" }),
      low, this.legendMax);
    return group;
  }

  // rows: Map alpha-2 -> {views, name}
  update(rows, total) {
    this.rows = rows;
    this.total = total;
    const max = Math.max(0, ...Array.from(rows.values(), (r) => r.views));
    for (const [code, els] of this.paths) {
      const views = rows.get(code)?.views || 0;
      for (const el of els) {
        el.style.fill = colour(views, max); // a style: the stylesheet's grey would beat an attribute
        el.setAttribute("data-views", String(views));
      }
    }
    if (this.legendMax) {
      this.legendMax.textContent = `${this.format(max)} views`;
      this.legendMax.parentElement.setAttribute("visibility", max ? "visible" : "hidden");
    }
  }

  show(event, code, feature) {
    const row = this.rows.get(code);
    const views = row?.views || 0;
    const share = this.total ? ` · ${((100 * views) / this.total).toFixed(1)}%` : "";
    const name = row?.name || (code && REGION_NAMES.of(code)) || feature.properties.name;
    const title = document.createElement("b");
    title.textContent = name;
    this.tooltip.replaceChildren(title, ` ${this.format(views)} ${views === 1 ? "view" : "views"}${share}`);
    this.tooltip.dataset.code = code;
    this.tooltip.hidden = false;
    const box = this.container.parentElement.getBoundingClientRect();
    const x = Math.min(event.clientX - box.left + 12, box.width - this.tooltip.offsetWidth - 8);
    this.tooltip.style.left = `${Math.max(8, x)}px`;
    this.tooltip.style.top = `${event.clientY - box.top + 14}px`;
  }
}
