// The storefront's inline bootstrap (under 1 KB minified; the shop writes it into each page's
// <head>, so it costs no request): it keeps the telemetry off the page's critical path, as
// Sentry's loader script and web-vitals' README advise. The telemetry bundle (OpenTelemetry
// JS, web-vitals) and the Sentry SDK (errors.js) are fetched after the load event, and:
// - errors thrown before the Sentry SDK is there are buffered here and reported by errors.js;
// - the page's own interactive code (app.js) registers its listeners through
//   `lookoutBoot.whenReady`, that is once telemetry.js has installed the instrumentations
//   (so a click and its fetch are spans of the page's trace); a click on a `button[data-action]`
//   before that is held, loads the telemetry at once and is replayed when it is ready;
// - the telemetry counts as ready when telemetry.js calls `lookoutBoot.settle()`, when its
//   script fails to load, or READY_TIMEOUT_MS after it was asked for: the page never waits on
//   the telemetry for longer than that.
// Nothing here is telemetry: the document-load instrumentation reads Navigation and Resource
// Timing after the fact, and web-vitals reads buffered performance entries.
const READY_TIMEOUT_MS = 5000;

const doc = document;
const config = JSON.parse(doc.getElementById('lookout-config').textContent);
const ERROR_EVENTS = ['error', 'unhandledrejection'];
const waiting = [];
const held = [];
let requested = false;
// Without traces to take (no OTLP URL) nothing needs to wait: app.js starts straight away.
let live = !config.telemetryScript;

// The shop names errorsScript only with a Sentry DSN, telemetryScript only with an OTLP URL.
if (config.errorsScript) {
  const pending = [];
  const buffer = (event) => pending.push(event.error || event.reason || event.message);
  for (const type of ERROR_EVENTS) addEventListener(type, buffer);
  window.lookoutErrors = {
    /** Called by errors.js once the Sentry SDK's own handlers are installed. */
    stopBuffering() {
      for (const type of ERROR_EVENTS) removeEventListener(type, buffer);
      return pending.splice(0);
    },
  };
}

const add = (src, onerror) => {
  const script = doc.createElement('script');
  script.src = src;
  script.onerror = onerror;
  doc.head.append(script);
};

/** Ask for the telemetry (once): after the load event, or at the first held interaction. */
const load = () => {
  if (requested) return;
  requested = true;
  if (config.errorsScript) add(config.errorsScript);
  if (config.telemetryScript) {
    add(config.telemetryScript, settle);
    setTimeout(settle, READY_TIMEOUT_MS);
  }
};

/** Replay the held clicks: app.js's listeners are registered by now. */
const replay = () => {
  for (const button of held.splice(0)) button.click();
};

/** The telemetry is ready (or failed, or timed out): run what waited for it (once). */
function settle() {
  if (live) return;
  live = true;
  // Before DOMContentLoaded (a click during parsing made the telemetry load early) app.js has
  // not run yet: then its whenReady call replays.
  if (waiting.length) {
    for (const callback of waiting.splice(0)) callback();
    replay();
  }
}

const hold = (event) => {
  if (live) return;
  const button = event.target.closest('button[data-action]');
  if (!button) return;
  event.preventDefault();
  event.stopImmediatePropagation();
  held.push(button);
  load();
};
// A click, or Enter in a form's field (the browser clicks its submit button for that).
doc.addEventListener('click', hold, true);
addEventListener('load', () => setTimeout(load));

window.lookoutBoot = {
  /** Run callback once the telemetry is ready (or has failed or timed out). */
  whenReady: (callback) => (live ? (callback(), replay()) : waiting.push(callback)),
  settle,
};
