// The storefront's browser telemetry: OpenTelemetry traces (document load, fetch, clicks) with
// the Web Vitals on the page-load span; browser errors are buffered here and reported by the
// Sentry SDK in errors.js, which is loaded after the page (it is half the code and nothing on
// the page needs it sooner).
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

// --- errors: buffered until errors.js (the Sentry browser SDK) has loaded ---------------------
// errors.js is fetched after the load event, off the critical path; an error thrown before it
// runs is kept here and reported by it, so nothing from the first moments of a page is lost.
if (config.sentryDsn) {
  const pending = [];
  const onError = (event) => pending.push(event.error || event.message);
  const onRejection = (event) => pending.push(event.reason);
  window.addEventListener('error', onError);
  window.addEventListener('unhandledrejection', onRejection);
  window.lookoutErrors = {
    pending,
    /** Called by errors.js once Sentry's own handlers are installed. */
    stopBuffering() {
      window.removeEventListener('error', onError);
      window.removeEventListener('unhandledrejection', onRejection);
      return pending.splice(0);
    },
  };
  const loadErrors = () => {
    if (!config.errorsScript) return;
    const script = document.createElement('script');
    script.src = config.errorsScript;
    script.async = true;
    document.head.append(script);
  };
  if (document.readyState === 'complete') setTimeout(loadErrors, 0);
  else window.addEventListener('load', () => setTimeout(loadErrors, 0), { once: true });
}

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

function holdPageLoadSpan(span) {
  const end = span.end.bind(span);
  span.end = (endTime) => {
    releasePageLoad = () => {
      releasePageLoad = null;
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

  for (const on of [onLCP, onINP, onCLS, onTTFB]) on(report, { reportAllChanges: true });
  // Registered after web-vitals' own listeners, so the vitals are final when this runs.
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'hidden') flush();
  });
  window.addEventListener('pagehide', () => flush());
}

/** Release the page-load span with the vitals so far and send every span now. */
export function flush() {
  if (releasePageLoad) releasePageLoad();
  return provider ? provider.forceFlush() : Promise.resolve();
}

// The page's own script (app.js) and the tests reach the telemetry through this one name.
window.lookoutTelemetry = { flush, vitals, traceId: pageTraceId, tracer: () => trace.getTracer('storefront'), context };
