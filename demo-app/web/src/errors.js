// Browser errors into Bugsink through the Sentry browser SDK: release and environment, the
// page's trace id and request id as tags, form values and card numbers scrubbed (scrub.js).
// Loaded by boot.js (inline in the page) after the load event; reports what boot.js buffered.
import {
  BrowserClient,
  captureException,
  dedupeIntegration,
  defaultStackParser,
  getCurrentScope,
  globalHandlersIntegration,
  httpContextIntegration,
  linkedErrorsIntegration,
  makeFetchTransport,
} from '@sentry/browser';

import { pageConfig, traceIdOf } from './config.js';
import { scrubEvent, scrubValue } from './scrub.js';

const config = pageConfig();

// A client with only the integrations used here (uncaught errors and rejections, linked causes,
// duplicates dropped, the page URL): Sentry.init's defaults (breadcrumbs, API wrappers,
// sessions) add weight, and the page's trace already says what the user did.
if (config.sentryDsn) {
  const client = new BrowserClient({
    dsn: config.sentryDsn,
    release: config.release,
    environment: config.environment,
    transport: makeFetchTransport,
    stackParser: defaultStackParser,
    integrations: [
      globalHandlersIntegration(),
      linkedErrorsIntegration(),
      dedupeIntegration(),
      httpContextIntegration(),
    ],
    sendDefaultPii: false,
    beforeSend: (event) => scrubEvent(event),
    beforeBreadcrumb: (crumb) => scrubValue(crumb),
  });
  const scope = getCurrentScope();
  scope.setClient(client);
  scope.setTags({ trace_id: traceIdOf(config.traceparent), request_id: config.requestId || '' });
  client.init();
  for (const error of window.lookoutErrors?.stopBuffering() || []) captureException(error);
  window.lookoutErrors = { ...window.lookoutErrors, ready: true };
}
