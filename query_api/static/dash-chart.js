// A count over time (uPlot): views, or unique viewers, per UTC hour or day as the API's rows give
// them, summed over their other fields, as bars; the buckets the API leaves out (none counted)
// are drawn as zero. The same numbers, as the API gives them, fill the table under the chart.

const HOUR_S = 3600;
const DAY_S = 86400;
const HEIGHT = 260;
// Ticks on whole buckets only (uPlot would mark half hours or hours of a day chart).
const TIME_STEPS = [...[1, 2, 3, 6, 12].map((h) => h * HOUR_S),
  ...[1, 2, 7, 14, 30, 61, 91, 182, 365].map((d) => d * DAY_S)];
// Whole counts only on the y axis: 1, 2, 5, 10, 20, 50, ...
const COUNT_STEPS = Array.from({ length: 30 }, (_, i) => [1, 2, 5][i % 3] * 10 ** Math.floor(i / 3));

// API rows -> [[date text, count]] in time order, one per date; `field` holds the count.
export function byDate(rows, field = "views") {
  const sums = new Map();
  for (const row of rows) sums.set(row.date, (sums.get(row.date) || 0) + row[field]);
  return Array.from(sums).sort((a, b) => seconds(a[0]) - seconds(b[0]));
}

function seconds(date) {
  return Date.parse(date.length === 10 ? `${date}T00:00:00Z` : date) / 1000;
}

// "26 Nov" for days; "14:00" for hours, "26 Nov" at midnight.
function tickLabel(ts, tz, step) {
  const when = new Date(ts * 1000);
  const hour = new Intl.DateTimeFormat("en-GB", { timeZone: tz, hour: "2-digit", minute: "2-digit" })
    .format(when);
  if (step === HOUR_S && hour !== "00:00") return hour;
  return new Intl.DateTimeFormat("en-GB", { timeZone: tz, day: "numeric", month: "short" })
    .format(when);
}

const VIEWS = { field: "views", label: "Views", colour: [37, 99, 235] };
export const UNIQUES = { field: "unique_ips", label: "Unique viewers", colour: [13, 148, 136] };

export class CountChart {
  // series: what is counted (VIEWS, UNIQUES): the rows' field, its name, its colour.
  constructor(container, table, format, series = VIEWS) {
    this.container = container;
    this.table = table;
    this.format = format;
    this.series = series;
    this.plot = null;
    this.key = "";
    new ResizeObserver(() => this.plot?.setSize(this.size())).observe(container);
  }

  size() {
    return { width: Math.max(200, this.container.clientWidth), height: HEIGHT };
  }

  // span: {from, to} in ms; hourly: whether the rows are per hour; tz: for the axis labels.
  update(rows, span, hourly, tz) {
    const dates = byDate(rows, this.series.field);
    this.fillTable(dates);
    if (!window.uPlot) {
      this.container.textContent = "The chart needs `viewstats setup` (its files are missing).";
      return;
    }
    const step = hourly ? HOUR_S : DAY_S;
    const first = Math.floor(span.from / 1000 / step) * step;
    const last = Math.floor(span.to / 1000 / step) * step;
    const counts = new Map(dates.map(([date, v]) => [seconds(date), v]));
    const xs = [];
    for (let x = first; x <= last; x += step) xs.push(x);
    const data = [xs, xs.map((x) => counts.get(x) || 0)];
    this.bounds = [first, last];
    // Days are UTC days (the API's); hours are shown in the chosen zone.
    const key = `${step}|${hourly ? tz : "UTC"}`;
    if (this.plot && this.key === key) {
      this.plot.setData(data);
      return;
    }
    this.plot?.destroy();
    this.key = key;
    this.plot = new uPlot(this.options(hourly ? tz : "UTC", step), data, this.container);
  }

  options(tz, step) {
    const grid = { stroke: "#eef1f6", width: 1 };
    const rgb = this.series.colour.join(", ");
    const axis = { stroke: "#5f6b7f", grid, ticks: { show: false } };
    return {
      ...this.size(),
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), tz),
      legend: { show: true, live: true },
      cursor: { points: { show: false }, drag: { x: false, y: false } },
      scales: {
        // Half a bucket of room on each side, so that the first and last bars show whole. From
        // the window, not the data's min and max: uPlot widens one bucket alone by 1000 days.
        x: {
          time: true,
          range: (u, min, max) => {
            const [first, last] = Number.isFinite(this.bounds[0]) ? this.bounds : [min, max];
            return [first - step / 2, last + step / 2];
          },
        },
        y: { range: (u, min, max) => [0, Math.max(4, max * 1.15)] },
      },
      series: [
        { label: step === DAY_S ? "Day (UTC)" : `Hour (${tz})` },
        {
          label: this.series.label, stroke: `rgb(${rgb})`, fill: `rgba(${rgb}, 0.75)`, width: 0,
          paths: uPlot.paths.bars({ size: [0.75, 40] }), points: { show: false },
          value: (u, v) => (v == null ? "–" : this.format(v)),
        },
      ],
      axes: [{ ...axis, incrs: TIME_STEPS.filter((s) => s >= step), values: (u, ticks) => ticks.map((t) => tickLabel(t, tz, step)) }, { ...axis, size: 56, incrs: COUNT_STEPS, values: (u, ticks) => ticks.map((t) => this.format(t)) }],
    };
  }

  fillTable(dates) {
    const body = this.table.tBodies[0];
    body.replaceChildren(...dates.map(([date, count]) => {
      const tr = document.createElement("tr");
      const when = document.createElement("td");
      when.textContent = date;
      const number = document.createElement("td");
      number.className = "num";
      number.textContent = String(count);
      tr.append(when, number);
      return tr;
    }));
  }
}
