// What must never leave the browser in an error event: form values and card numbers.
// Applied to every event (beforeSend) and breadcrumb (beforeBreadcrumb) the Sentry SDK sends.

export const FILTERED = '[Filtered]';

// 12 to 19 digits, grouped by any run of spaces, tabs or dashes (the checkout form takes
// "4242  4242" and "4242 - 4242" too): card numbers (PANs) and the like.
const CARD_NUMBER = /\b(?:\d[\s-]*){11,18}\d\b/g;
// Keys whose values are form input, credentials or personal data, whatever object holds them:
// containing one of these words, or exactly a form's name. ("value" itself is not one: the
// exception's message is kept, its card numbers masked.)
const SENSITIVE_WORD = /card|cvc|cvv|password|passwd|secret|token|authorization|cookie|e-?mail|birth/i;
const SENSITIVE_EXACT = /^(form|form_?data|fields|inputs?|data|body|query_string)$/i;

/** Return text with every card-number-like run of digits replaced. */
export function scrubText(text) {
  return typeof text === 'string' ? text.replace(CARD_NUMBER, FILTERED) : text;
}

/** Return a deep copy of value with sensitive keys' values filtered and card numbers masked. */
export function scrubValue(value, depth = 0) {
  if (depth > 12) return FILTERED;
  if (typeof value === 'string') return scrubText(value);
  if (Array.isArray(value)) return value.map((item) => scrubValue(item, depth + 1));
  if (value && typeof value === 'object') {
    const out = {};
    for (const [key, item] of Object.entries(value)) {
      out[key] = isSensitiveKey(key) ? FILTERED : scrubValue(item, depth + 1);
    }
    return out;
  }
  return value;
}

/** Say whether a key's value is form input or a secret, wherever it appears. */
export function isSensitiveKey(key) {
  return SENSITIVE_WORD.test(key) || SENSITIVE_EXACT.test(key);
}

/** Scrub a Sentry event in place of the SDK's (beforeSend): never drop it, only mask it. */
export function scrubEvent(event) {
  // Exception messages (Error.message) are kept, their card numbers masked; request bodies,
  // cookies and any object named like a form are filtered whole. debug_meta is the SDK's own
  // (file URLs and debug ids): a debug id such as 10982917-1556-... looks like a card number,
  // and masked, Bugsink can no longer find the source map of the stack.
  const { debug_meta: debugMeta, ...rest } = event;
  const scrubbed = scrubValue(rest);
  if (debugMeta !== undefined) scrubbed.debug_meta = debugMeta;
  return scrubbed;
}
