// The dashboard's window: presets and custom windows in a time zone, written as the ISO 8601
// strings the API takes (architecture §6: an offset is exact, `date_to` is inclusive to the end
// of its stated precision, so a day ends at 23:59:59).

const DAY_MS = 86400000;
export const PRESETS = { today: 1, "7d": 7, "30d": 30, "365d": 365 };
// Windows up to this long are charted by the hour, longer ones by the day.
export const HOURLY_UP_TO_MS = 2 * DAY_MS;

const pad = (n, width = 2) => String(Math.abs(n)).padStart(width, "0");

function wallParts(tz, ms) {
  const format = new Intl.DateTimeFormat("en-US", {
    timeZone: tz, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit",
  });
  const p = Object.fromEntries(format.formatToParts(new Date(ms)).map((x) => [x.type, x.value]));
  return { y: +p.year, mo: +p.month - 1, d: +p.day, h: +p.hour, mi: +p.minute, s: +p.second };
}

// Minutes east of UTC that `tz` is at the instant `ms`.
function offsetMinutes(tz, ms) {
  const w = wallParts(tz, ms);
  return Math.round((Date.UTC(w.y, w.mo, w.d, w.h, w.mi, w.s) - Math.floor(ms / 1000) * 1000)
    / 60000);
}

// The instant a wall-clock time in `tz` names (twice: the offset may change in between).
function wallToMs(tz, y, mo, d, h = 0, mi = 0, s = 0) {
  const wall = Date.UTC(y, mo, d, h, mi, s);
  const first = wall - offsetMinutes(tz, wall) * 60000;
  return wall - offsetMinutes(tz, first) * 60000;
}

// "2024-05-01T00:00:00+05:30" (or "Z" in UTC): the instant as `tz` writes it.
export function isoIn(tz, ms) {
  const w = wallParts(tz, ms);
  const off = offsetMinutes(tz, ms);
  const zone = off === 0 ? "Z"
    : `${off < 0 ? "-" : "+"}${pad(Math.trunc(Math.abs(off) / 60))}:${pad(Math.abs(off) % 60)}`;
  return `${w.y}-${pad(w.mo + 1)}-${pad(w.d)}T${pad(w.h)}:${pad(w.mi)}:${pad(w.s)}${zone}`;
}

// The value of an <input type="datetime-local"> for the instant, in `tz`.
export function localInput(tz, ms) {
  return isoIn(tz, ms).slice(0, 19);
}

// An <input type="datetime-local"> value read in `tz`, as ISO with the zone's offset.
export function fromLocalInput(tz, value) {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?/.exec(value);
  if (!m) return null;
  return isoIn(tz, wallToMs(tz, +m[1], +m[2] - 1, +m[3], +m[4], +m[5], +(m[6] || 0)));
}

// A preset's window: from the start of the day `days - 1` days ago to the end of today, in `tz`.
export function presetWindow(preset, tz, now = Date.now()) {
  const today = wallParts(tz, now);
  const start = wallToMs(tz, today.y, today.mo, today.d - (PRESETS[preset] - 1));
  const end = wallToMs(tz, today.y, today.mo, today.d + 1) - 1000;
  return { dateFrom: isoIn(tz, start), dateTo: isoIn(tz, end) };
}

// The instants an API window covers, in ms: [from, last ms of `to`], as the API reads them.
export function spanOf(dateFrom, dateTo) {
  return { from: instant(dateFrom, false), to: instant(dateTo, true) };
}

function instant(text, isEnd) {
  if (/^\d{4}-\d{2}-\d{2}$/.test(text)) {
    return Date.parse(`${text}T00:00:00Z`) + (isEnd ? DAY_MS - 1 : 0);
  }
  const zoned = /(Z|[+-]\d{2}:?\d{2})$/i.test(text) ? text : `${text}Z`; // no zone = UTC
  const ms = Date.parse(zoned);
  if (!isEnd || Number.isNaN(ms)) return ms;
  // Inclusive to the end of the stated precision: seconds, minutes or hours.
  const time = /T(\d{2})(:\d{2})?(:\d{2}(\.\d+)?)?/.exec(text) || [];
  return ms + (time[4] ? 0 : time[3] ? 999 : time[2] ? 59999 : 3599999);
}

// Whether the window reaches the present, so that new views can still appear in it.
export function includesNow(span, now = Date.now()) {
  return span.from <= now && now <= span.to;
}

// "1 May 2024 00:00 – 31 May 2024 23:59:59 (Europe/Berlin)" for people, in `tz`.
export function describe(span, tz) {
  const format = new Intl.DateTimeFormat("en-GB", {
    timeZone: tz, day: "numeric", month: "short", year: "numeric", hour: "2-digit",
    minute: "2-digit",
  });
  return `${format.format(span.from)} – ${format.format(span.to)}`;
}

export function timeZones() {
  const local = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  const all = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
  return { local, all: Array.from(new Set(["UTC", local, ...all])) };
}
