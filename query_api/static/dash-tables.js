// The country and region tables, the top lists, and the country table as CSV. Every value enters the page
// as text (textContent), never as HTML.

function cell(text, className = "") {
  const td = document.createElement("td");
  if (className) td.className = className;
  if (text instanceof Node) td.append(text);
  else td.textContent = text;
  return td;
}

function shareBar(share) {
  const bar = document.createElement("span");
  bar.className = "bar";
  const fill = document.createElement("span");
  fill.style.width = `${Math.max(share * 100, share > 0 ? 1 : 0)}%`;
  bar.append(fill);
  return bar;
}

function emptyRow(columns, text) {
  const tr = document.createElement("tr");
  tr.className = "empty";
  const td = cell(text);
  td.colSpan = columns;
  tr.append(td);
  return tr;
}

export const percent = (share) => `${(share * 100).toFixed(1)}%`;

// A ranked table: label(row) (text or a node), code(row), views, share of the rows' total.
export function fillRanked(table, rows, format, label, code) {
  const total = rows.reduce((sum, row) => sum + row.views, 0);
  const body = table.tBodies[0];
  if (!rows.length) {
    body.replaceChildren(emptyRow(4, "No views in this window"));
    return;
  }
  body.replaceChildren(...rows.map((row) => {
    const tr = document.createElement("tr");
    tr.dataset.code = code(row);
    const codeCell = cell("");
    if (code(row)) {
      const text = document.createElement("code");
      text.textContent = code(row);
      codeCell.append(text);
    }
    const share = total ? row.views / total : 0;
    const shareCell = cell(percent(share), "num");
    shareCell.append(shareBar(share));
    tr.append(cell(label(row), "label"), codeCell, cell(format(row.views), "num"), shareCell);
    return tr;
  }));
}

// rows: the countries endpoint's data; colourOf(code): the map's fill for the swatch.
export function fillCountries(table, rows, format, colourOf) {
  fillRanked(table, rows, format, (row) => {
    const name = document.createElement("span");
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = colourOf(row.country);
    name.append(swatch, row.country_name);
    return name;
  }, (row) => row.country);
}

// A top list (videos, hosts, browsers, systems, pages) as bars: label(row) names the row.
export function fillTop(table, rows, format, label, limit = 10) {
  const body = table.tBodies[0];
  if (!rows.length) {
    body.replaceChildren(emptyRow(2, "No views in this window"));
    return;
  }
  const max = rows[0].views || 1;
  body.replaceChildren(...rows.slice(0, limit).map((row) => {
    const tr = document.createElement("tr");
    const name = cell(label(row), "label");
    name.append(shareBar(row.views / max));
    tr.append(name, cell(format(row.views), "num"));
    return tr;
  }));
}

export function unavailable(table, columns, text) {
  table.tBodies[0].replaceChildren(emptyRow(columns, text));
}

function csvField(value) {
  const text = String(value);
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

// The country table as CSV (RFC 4180): country, country_name, views, share.
export function countriesCsv(rows) {
  const total = rows.reduce((sum, row) => sum + row.views, 0);
  const lines = [["country", "country_name", "views", "share"],
    ...rows.map((r) => [r.country, r.country_name, r.views, total ? (r.views / total).toFixed(6) : 0])];
  return lines.map((line) => line.map(csvField).join(",")).join("\r\n") + "\r\n";
}

export function download(name, text) {
  const url = URL.createObjectURL(new Blob([text], { type: "text/csv;charset=utf-8" }));
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
