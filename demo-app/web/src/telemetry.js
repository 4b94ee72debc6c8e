// The storefront's browser telemetry: OpenTelemetry traces (document load, fetch, clicks) with
// the Web Vitals on the page-load span. boot.js (inline in the page) loads this file and the
// Sentry SDK (errors.js) after the page's load event, off its critical path: the document-load
// instrumentation reads Navigation and Resource Timing after the fact, web-vitals reads the
// buffered performance entries, and the page's own listeners (app.js) are registered only once
// this file has installed the instrumentations (lookoutBoot.whenReady), so they are traced.
//
// One trace per page view: the shop renders the traceparent of the server span that built the
// page into <meta name="traceparent">; the document-load span, every click and every fetch of
// the page become its descendants, and the fetches carry `traceparent` to the shop (our own
// origin only), so click -> fetch -> shop -> payments -> database is one trace in Tempo.
import { context, defaultTextMapGetter, ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { DocumentLoadInstrumentation } from '@opentelemetry/instrumentation-document-load';
import { FetchInstrumentation } from '@opentelemetry/instrumentation-fetch';
import { UserInteractionInstrumentation } from '@opentelemetry/instrumentation-user-interaction';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BatchSpanProcessor,
  ParentBasedSampler,
  StackContextManager,
  TraceIdRatioBasedSampler,
  WebTracerProvider,
} from '@opentelemetry/sdk-trace-web';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import { onCLS, onINP, onLCP, onTTFB } from 'web-vitals';

import { pageConfig, traceIdOf } from './config.js';

const config = pageConfig();
const pageTraceId = traceIdOf(config.traceparent);

/** Escape text for use inside a RegExp. */
const escapeRegExp = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

// --- the page-load span waits for the final Web Vitals ---------------------------------------
// LCP, CLS and INP are final only when the page is hidden (INP needs an interaction first), long
// after the load event that ends the document-load span. So that span's end is held back: the
// instrumentation's hook swaps its `end` for one that records the end time, and the span really
// ends (with the vitals as attributes, at the recorded time) when the page is hidden or the
// telemetry is flushed.
const vitals = {};
const report = ({ name, value, rating }) => {
  vitals[name] = { value, rating };
};
let releasePageLoad = null;

// web-vitals processes interactions in an idle callback (up to a second later) and finalises
// INP on visibilitychange, which Chrome does not always fire when a page navigates away: a
// click that leads straight to the next page (Pay) could leave INP unreported. So the page
// also keeps the longest interaction itself (Event Timing entries of 16 ms and more, taken
// synchronously at release): with fewer than 50 interactions, as on these pages, that is
// exactly INP's definition, and it is used only when web-vitals has not reported one.
const longestInteraction = { value: 0 };
let eventObserver = null;
function observeInteractions() {
  const note = (entries) => {
    for (const entry of entries) {
      if (entry.interactionId) {
        longestInteraction.value = Math.max(longestInteraction.value, entry.duration);
      }
    }
  };
  try {
    eventObserver = new PerformanceObserver((list) => note(list.getEntries()));
    eventObserver.observe({ type: 'event', buffered: true, durationThreshold: 16 });
    eventObserver.observe({ type: 'first-input', buffered: true });
  } catch {
    eventObserver = null; // no Event Timing in this browser: web-vitals reports nothing either
  }
  return () => {
    if (eventObserver) note(eventObserver.takeRecords());
  };
}
const settleInteractions = observeInteractions();

function holdPageLoadSpan(span) {
  const end = span.end.bind(span);
  span.end = (endTime) => {
    releasePageLoad = () => {
      releasePageLoad = null;
      settleInteractions();
      if (!vitals.INP && longestInteraction.value > 0) {
        const value = longestInteraction.value;
        vitals.INP = { value, rating: value <= 200 ? 'good' : value <= 500 ? 'needs-improvement' : 'poor' };
      }
      for (const [name, { value, rating }] of Object.entries(vitals)) {
        const key = `web_vitals.${name.toLowerCase()}`;
        // CLS is a unitless score; the others are milliseconds.
        span.setAttribute(name === 'CLS' ? key : `${key}_ms`, value);
        span.setAttribute(`${key}_rating`, rating);
      }
      end(endTime);
    };
  };
}

// --- traces: OpenTelemetry JS to the collector (compose) or Tempo (native run) ---------------
let provider = null;

/** Every span of this page view descends from the server span that rendered it. */
class PageContextManager extends StackContextManager {
  constructor(pageContext) {
    super();
    this.pageContext = pageContext;
  }

  enable() {
    super.enable();
    this._currentContext = this.pageContext;
    return this;
  }

  disable() {
    super.disable();
    this._currentContext = ROOT_CONTEXT;
    return this;
  }
}

if (config.otlpTracesUrl) {
  // Extracted with the propagator itself: the global one is a no-op until register() below.
  const propagator = new W3CTraceContextPropagator();
  const pageContext = propagator.extract(
    ROOT_CONTEXT,
    { traceparent: config.traceparent || '' },
    defaultTextMapGetter,
  );
  const exporter = new OTLPTraceExporter({ url: config.otlpTracesUrl });
  const spans = new BatchSpanProcessor(exporter, {
    // Flushed below, after the page-load span is released with its final vitals.
    disableAutoFlushOnDocumentHide: true,
    scheduledDelayMillis: 2000,
  });
  provider = new WebTracerProvider({
    resource: resourceFromAttributes({
      [ATTR_SERVICE_NAME]: config.serviceName || 'storefront',
      [ATTR_SERVICE_VERSION]: config.release || 'unknown',
      'deployment.environment.name': config.environment || 'unknown',
    }),
    // A page view follows the server's sampling decision; a page without one, the rate.
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(config.sampleRate ?? 1) }),
    spanProcessors: [spans],
  });
  provider.register({
    contextManager: new PageContextManager(pageContext),
    propagator,
  });

  // Same-origin fetches always carry traceparent; no other origin ever does (not the
  // collector, not Bugsink): the only cross-origin URL allowed is our own origin again.
  const ownOrigin = new RegExp(`^${escapeRegExp(window.location.origin)}/`);
  const ignoreUrls = [config.otlpTracesUrl, config.sentryDsn && new URL(config.sentryDsn).origin]
    .filter(Boolean)
    .map((url) => new RegExp(`^${escapeRegExp(url)}`));
  registerInstrumentations({
    tracerProvider: provider,
    instrumentations: [
      new DocumentLoadInstrumentation({
        applyCustomAttributesOnSpan: { documentLoad: holdPageLoadSpan },
      }),
      new FetchInstrumentation({ propagateTraceHeaderCorsUrls: [ownOrigin], ignoreUrls }),
      new UserInteractionInstrumentation({ eventNames: ['click', 'submit'] }),
    ],
  });

  for (const on of [onLCP, onCLS, onTTFB]) on(report, { reportAllChanges: true });
  // Every interaction counts (the minimum 16 ms, not web-vitals' 40 ms): pages here see a few
  // clicks each, and an INP left out because each was quick would read as "no interaction".
  onINP(report, { reportAllChanges: true, durationThreshold: 16 });
  // The page-load span is released when the page is hidden, once web-vitals has finalised the
  // values: web-vitals adds visibilitychange listeners of its own as entries come in (after
  // this one), so a page being left is finished at pagehide (the spec fires it after every
  // visibilitychange listener), a page merely hidden a task later. Its export is a keepalive
  // request that outlives the page.
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'hidden') setTimeout(finish, 0);
  });
  window.addEventListener('pagehide', () => finish());
}

/** Send every ended span now (the page's script calls it before it navigates away). */
export function flush() {
  return provider ? provider.forceFlush() : Promise.resolve();
}

/** Release the page-load span with the final vitals, and send everything. */
function finish() {
  if (releasePageLoad) releasePageLoad();
  return flush();
}

// The page's own script (app.js) and the tests reach the telemetry through this one name.
window.lookoutTelemetry = { flush, vitals, traceId: pageTraceId, tracer: () => trace.getTracer('storefront'), context };
// The bench (bench/storefront_overhead.py) reads when the telemetry was ready.
performance.mark('lookout-telemetry-ready');
// Now the page's listeners may be registered (instrumented) and held clicks replayed.
window.lookoutBoot?.settle();
