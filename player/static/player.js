// The viewstats player: plays an HLS stream and reports to the collector (architecture §3)
//   init  - the player is set up,
//   start - play was pressed in this playback session,
//   watch - 5 s of this session were actually played: a view.
// A playback session (one view_id) lasts from the page load, or a replay after the end, to the
// end of the video. Every event of a session carries its view_id, so the collector counts a
// resent event once.
(() => {
  "use strict";

  const WATCH_AFTER_SECONDS = 5;
  const RETRY_DELAYS_MS = [1000, 2000, 4000, 8000, 16000];
  const TYPES = ["vod", "live", "playlist"];

  const video = document.getElementById("video");
  const statusLine = document.getElementById("status");

  // Tests and curious embedders read this; the player keeps its own state here too.
  const player = {
    viewId: null,
    watchedSeconds: 0, // played in this session; pauses, stalls and seeks do not count
    watchSent: false,
    started: false,
    ended: false,
    // Every delivery attempt: {event, view_id, result}, result being the HTTP status,
    // "network-error", or "beacon" / "beacon-refused" for a sendBeacon hand-off.
    sent: [],
  };
  window.viewstatsPlayer = player;

  function fail(message) {
    statusLine.textContent = message;
    statusLine.className = "error";
  }

  // The page is /player/<client_id>/<video_id>; matching the tail works under a path prefix.
  function readConfig() {
    const path = location.pathname.match(/\/(\d+)\/([^/]+)$/);
    const params = new URLSearchParams(location.search);
    const type = params.get("type") || "vod";
    if (!path) return fail("the page address must end in /<client_id>/<video_id>");
    if (!params.get("src")) return fail("no stream: add ?src=<HLS playlist URL> to the address");
    if (!TYPES.includes(type)) return fail(`type must be one of ${TYPES.join(", ")}`);
    return {
      clientId: Number(path[1]),
      videoId: decodeURIComponent(path[2]),
      type,
      src: params.get("src"),
      // Same origin by default; a page embedded elsewhere can name the platform's collector.
      collector: new URL(params.get("collector") || "/events", location.href).href,
      embedUrl: embeddingPage(),
    };
  }

  // The page that embeds the player, whose host the collector records (architecture §3): from
  // inside an iframe the beacon's own Origin is this page, on the platform's host. The browser
  // gives the embedding page as the frame's referrer: its origin under the default referrer
  // policy, its full URL where the embed snippet asks for it (README). Query and fragment are
  // dropped, as they may carry what the site's visitors never meant to share. "" when nothing
  // embeds the player: opened by itself (a link that led here is no embedding page), or framed
  // by a page of the platform itself, which is no customer's site.
  function embeddingPage() {
    if (window.parent === window || !document.referrer) return "";
    const page = new URL(document.referrer);
    if (page.origin === location.origin) return "";
    page.search = "";
    page.hash = "";
    return page.href;
  }

  function uuid4() {
    if (crypto.randomUUID) return crypto.randomUUID();
    // randomUUID exists only in secure contexts (https, localhost); getRandomValues everywhere.
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    return [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20),
      hex.slice(20)].join("-");
  }

  // --- delivery --------------------------------------------------------------------------------
  // fetch(keepalive) first, because only it sees a failure: a network error or a 5xx (the
  // collector answers 503 "retry" when it cannot store) is retried with the SAME body, so the
  // view_id never changes and the collector's dedup keeps one copy. keepalive lets a request
  // outlive the page. Retries still waiting when the page goes away, and browsers without
  // fetch, fall back to sendBeacon, which cannot report failure.
  const waitingRetries = new Set();

  function deliver(config, item, attempt) {
    if (typeof fetch !== "function") return beacon(config, item);
    const request = { method: "POST", body: item.body, keepalive: true, credentials: "omit" };
    fetch(config.collector, request)
      .then((response) => {
        record(item, response.status);
        // A 4xx will not get better by resending the same event.
        if (response.status >= 500 || response.status === 429) retry(config, item, attempt);
      }, () => {
        record(item, "network-error");
        retry(config, item, attempt);
      });
  }

  function retry(config, item, attempt) {
    if (attempt >= RETRY_DELAYS_MS.length) return;
    waitingRetries.add(item);
    item.timer = setTimeout(() => {
      waitingRetries.delete(item);
      deliver(config, item, attempt + 1);
    }, RETRY_DELAYS_MS[attempt]);
  }

  function beacon(config, item) {
    const queued = typeof navigator.sendBeacon === "function"
      && navigator.sendBeacon(config.collector, item.body);
    record(item, queued ? "beacon" : "beacon-refused");
  }

  function flushRetries(config) {
    for (const item of waitingRetries) {
      clearTimeout(item.timer);
      beacon(config, item);
    }
    waitingRetries.clear();
  }

  function record(item, result) {
    player.sent.push({ event: item.event, view_id: item.viewId, result });
  }

  function report(config, event) {
    const body = JSON.stringify({
      event, client_id: config.clientId, video_id: config.videoId, type: config.type,
      view_id: player.viewId, embed_url: config.embedUrl,
    });
    deliver(config, { event, viewId: player.viewId, body }, 0);
  }

  // --- timing ----------------------------------------------------------------------------------
  // Played time is summed from timeupdate samples: the media position must have moved forward
  // by itself (no seek in between), and each step counts at most the real time elapsed since
  // the previous sample, so neither a skip ahead nor a fast playback rate can make up a view.
  // Paused or stalled, the position does not move, so nothing is counted.
  let lastSample = null;

  function newSession() {
    Object.assign(player, {
      viewId: uuid4(), watchedSeconds: 0, watchSent: false, started: false, ended: false,
    });
    lastSample = null;
  }

  function onTimeUpdate(config) {
    const sample = { position: video.currentTime, at: performance.now() };
    if (lastSample && !video.seeking && !player.ended) {
      const advanced = sample.position - lastSample.position;
      const elapsed = (sample.at - lastSample.at) / 1000;
      if (advanced > 0) player.watchedSeconds += Math.min(advanced, elapsed);
    }
    lastSample = sample;
    if (!player.watchSent && player.watchedSeconds >= WATCH_AFTER_SECONDS) {
      player.watchSent = true;
      report(config, "watch");
    }
    showProgress();
  }

  function showProgress() {
    const watched = Math.min(player.watchedSeconds, WATCH_AFTER_SECONDS).toFixed(1);
    statusLine.textContent = `view ${player.viewId}: ${watched} of ${WATCH_AFTER_SECONDS} s`;
  }

  // --- playback --------------------------------------------------------------------------------
  // hls.js wherever Media Source Extensions exist, as hls.js advises: one playback engine on
  // every browser (recent Chromium claims native HLS too); native HLS (iOS Safari) otherwise.
  function attach(src) {
    if (window.Hls && window.Hls.isSupported()) {
      const hls = new window.Hls();
      hls.on(window.Hls.Events.ERROR, (_, data) => {
        if (data.fatal) fail(`playback error: ${data.details}`);
      });
      hls.loadSource(src);
      hls.attachMedia(video);
      return true;
    }
    if (video.canPlayType("application/vnd.apple.mpegurl")) {
      video.src = src;
      return true;
    }
    fail("this browser cannot play HLS here: the server has no hls.js (run `viewstats setup`)");
    return false;
  }

  function main() {
    const config = readConfig();
    if (!config || !attach(config.src)) return;
    newSession();
    video.addEventListener("seeking", () => { lastSample = null; });
    video.addEventListener("timeupdate", () => onTimeUpdate(config));
    video.addEventListener("ended", () => { player.ended = true; });
    video.addEventListener("play", () => {
      if (player.ended) newSession(); // a replay is a new view
      if (!player.started) {
        player.started = true;
        report(config, "start");
      }
      showProgress();
    });
    // Timers do not run after the page is gone: hand waiting retries to sendBeacon now.
    window.addEventListener("pagehide", () => flushRetries(config));
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "hidden") flushRetries(config);
    });
    report(config, "init");
  }

  main();
})();
