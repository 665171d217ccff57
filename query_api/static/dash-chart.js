// Views over time (uPlot): the API's rows per UTC hour or day, summed over types, as bars; the
// buckets the API leaves out (no views) are drawn as zero. The same numbers, as the API gives
// them, fill the table under the chart.

const HOUR_S = 3600;
const DAY_S = 86400;
const HEIGHT = 260;
// Whole views only on the y axis: 1, 2, 5, 10, 20, 50, ...
const COUNT_STEPS = Array.from({ length: 30 }, (_, i) => [1, 2, 5][i % 3] * 10 ** Math.floor(i / 3));

// API rows -> [[date text, views]] in time order, one per date.
export function byDate(rows) {
  const sums = new Map();
  for (const row of rows) sums.set(row.date, (sums.get(row.date) || 0) + row.views);
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

export class ViewsChart {
  constructor(container, table, format) {
    this.container = container;
    this.table = table;
    this.format = format;
    this.plot = null;
    this.key = "";
    new ResizeObserver(() => this.plot?.setSize(this.size())).observe(container);
  }

  size() {
    return { width: Math.max(200, this.container.clientWidth), height: HEIGHT };
  }

  // span: {from, to} in ms; hourly: whether the rows are per hour; tz: for the axis labels.
  update(rows, span, hourly, tz) {
    const dates = byDate(rows);
    this.fillTable(dates);
    if (!window.uPlot) {
      this.container.textContent = "The chart needs `viewstats setup` (its files are missing).";
      return;
    }
    const step = hourly ? HOUR_S : DAY_S;
    const first = Math.floor(span.from / 1000 / step) * step;
    const last = Math.floor(span.to / 1000 / step) * step;
    const views = new Map(dates.map(([date, v]) => [seconds(date), v]));
    const xs = [];
    for (let x = first; x <= last; x += step) xs.push(x);
    const data = [xs, xs.map((x) => views.get(x) || 0)];
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
    const axis = { stroke: "#5f6b7f", grid, ticks: { show: false } };
    return {
      ...this.size(),
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), tz),
      legend: { show: true, live: true },
      cursor: { points: { show: false }, drag: { x: false, y: false } },
      scales: {
        // Half a bucket of room on each side, so that the first and last bars show whole.
        x: { time: true, range: (u, min, max) => [min - step / 2, max + step / 2] },
        y: { range: (u, min, max) => [0, Math.max(4, max * 1.15)] },
      },
      series: [
        { label: step === DAY_S ? "Day (UTC)" : `Hour (${tz})` },
        {
          label: "Views", stroke: "#2563eb", fill: "rgba(37, 99, 235, 0.75)", width: 0,
          paths: uPlot.paths.bars({ size: [0.75, 40] }), points: { show: false },
          value: (u, v) => (v == null ? "–" : this.format(v)),
        },
      ],
      axes: [{ ...axis, values: (u, ticks) => ticks.map((t) => tickLabel(t, tz, step)) }, { ...axis, size: 56, incrs: COUNT_STEPS, values: (u, ticks) => ticks.map((t) => this.format(t)) }],
    };
  }

  fillTable(dates) {
    const body = this.table.tBodies[0];
    body.replaceChildren(...dates.map(([date, views]) => {
      const tr = document.createElement("tr");
      const when = document.createElement("td");
      when.textContent = date;
      const count = document.createElement("td");
      count.className = "num";
      count.textContent = String(views);
      tr.append(when, count);
      return tr;
    }));
  }
}
