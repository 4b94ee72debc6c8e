// The storefront's page behaviour: log in and pay through the shop's JSON API (fetch), show an
// order. Browsing needs none of it. Runs the same with or without the telemetry on the page:
// with it, the listeners and the order's fetch wait for boot.js's `whenReady` (telemetry.js
// loads after the page's load event, and only listeners registered after its instrumentations
// make click spans); a click on a `data-action` button before that is held by boot.js and
// replayed then.

const TOKEN_KEY = 'lookout.token';

/** Return the session token kept for this tab, or null. */
function token() {
  return window.sessionStorage.getItem(TOKEN_KEY);
}

/** Send JSON to the shop's API; return [status, body]. */
async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (token()) headers.Authorization = `Bearer ${token()}`;
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
  });
  const data = await response.json().catch(() => ({}));
  return [response.status, data];
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Send the page's spans before leaving it (adds at most about 0.8 s, only with telemetry). */
async function flushTelemetry() {
  const flush = window.lookoutTelemetry?.flush;
  if (!flush) return;
  // The fetch instrumentation ends a fetch's span 300 ms after the response (it waits for the
  // resource timing entry); a navigation before that would lose the span.
  await sleep(350);
  await Promise.race([flush(), sleep(500)]);
}

function say(element, text, isError = false) {
  element.textContent = text;
  element.classList.toggle('error', isError);
}

/** Return `next` as a page of this site, or '/': never an open redirect. */
function nextPage(next) {
  // Resolved as the browser will (it reads "/\evil.example" as "//evil.example" and drops tabs),
  // not checked as text.
  try {
    const url = new URL(next || '/', window.location.origin);
    if (url.origin === window.location.origin) return url.pathname + url.search + url.hash;
  } catch {
    // not a URL at all
  }
  return '/';
}

function setUpLogin(form) {
  const status = document.getElementById('login-status');
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (!form.reportValidity()) return;
    const data = new FormData(form);
    const [code, body] = await api('POST', '/api/login', {
      email: data.get('email'),
      password: data.get('password'),
    });
    if (code !== 200) {
      say(status, body.message || `Login failed (${code}).`, true);
      return;
    }
    window.sessionStorage.setItem(TOKEN_KEY, body.token);
    say(status, `Logged in as ${body.user.name}.`);
    window.location.assign(nextPage(new URLSearchParams(window.location.search).get('next')));
  });
}

function setUpCheckout(form) {
  const status = document.getElementById('checkout-status');
  // The click handler calls fetch synchronously, so the fetch span is the click span's child.
  document.getElementById('pay').addEventListener('click', (event) => {
    event.preventDefault();
    if (!form.reportValidity()) return;
    if (!token()) {
      say(status, 'Log in first.', true);
      return;
    }
    const data = new FormData(form);
    const born = data.get('date_of_birth');
    const request = {
      cart_id: form.dataset.cartId,
      payment: { method: 'card', card_number: String(data.get('card_number') || '') },
    };
    if (born) request.age_verification = { method: 'self_declared', date_of_birth: born };
    say(status, 'Paying…');
    api('POST', '/api/checkout', request).then(async ([code, body]) => {
      if (code === 201) {
        await flushTelemetry();
        window.location.assign(`/orders/${encodeURIComponent(body.id)}`);
        return;
      }
      if (code === 401) window.sessionStorage.removeItem(TOKEN_KEY);
      say(status, body.message || `The payment failed (${code}).`, true);
    });
  });
  // A deliberate bug, for the error-tracking demo: it copies the form into the error's
  // context and message, which the Sentry SDK's beforeSend must scrub (scrub.js).
  document.getElementById('report-test-error').addEventListener('click', () => {
    const fields = Object.fromEntries(new FormData(form));
    throwCheckoutError(fields);
  });
}

function throwCheckoutError(fields) {
  const error = new Error(`storefront test error: card ${fields.card_number} was not accepted`);
  error.form = fields;
  throw error;
}

async function showOrder(section) {
  const status = document.getElementById('order-status');
  if (!token()) {
    say(status, 'Log in to see the order’s details.');
    return;
  }
  const [code, order] = await api('GET', `/api/orders/${encodeURIComponent(section.dataset.orderId)}`);
  if (code !== 200) {
    say(status, order.message || `The order could not be read (${code}).`, true);
    return;
  }
  const items = order.items.reduce((sum, line) => sum + line.quantity, 0);
  say(status, `Status: ${order.status}. ${items} item(s), total $${(order.total_cents / 100).toFixed(2)}.`);
}

function setUpLoginLink(link) {
  if (token()) link.textContent = 'Logged in';
}

/** Register the page's listeners and start its API calls. */
function setUpInteractions() {
  const login = document.getElementById('login-form');
  if (login) setUpLogin(login);
  const checkout = document.getElementById('checkout-form');
  if (checkout) setUpCheckout(checkout);
  const order = document.getElementById('order-details');
  if (order) showOrder(order);
}

const checkoutForm = document.getElementById('checkout-form');
if (checkoutForm && !token()) document.querySelector('[data-needs-login]')?.removeAttribute('hidden');
const loginLink = document.querySelector('[data-login-link]');
if (loginLink) setUpLoginLink(loginLink);
if (window.lookoutBoot) window.lookoutBoot.whenReady(setUpInteractions);
else setUpInteractions();
