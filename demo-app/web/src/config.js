// The page's server-side config (lookout_demo/storefront/pages.py, page_config): endpoints,
// release, environment and this request's ids. The bundle holds no address of its own.

/** Return the config the shop rendered into the page, or {} when there is none. */
export function pageConfig() {
  const element = document.getElementById('lookout-config');
  if (!element) return {};
  try {
    return JSON.parse(element.textContent || '{}') || {};
  } catch {
    return {};
  }
}

/** Return the trace id of a W3C traceparent ("00-<trace id>-<span id>-<flags>"), or "". */
export function traceIdOf(traceparent) {
  const parts = (traceparent || '').split('-');
  return parts.length === 4 && /^[0-9a-f]{32}$/.test(parts[1]) ? parts[1] : '';
}
