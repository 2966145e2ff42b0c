"use strict";
/**
 * The events every scenario and baseline sends: product-analytics events of about 230 bytes of
 * JSON each (the README's shape plus a timestamp, channel and four properties), no event_id
 * (the node assigns one, so every event sent is a new row).
 *
 * Bodies are built ahead of the run and cycled, so the load generator spends its CPU on
 * sending, not on building JSON. A pool is large enough that a body is never in flight twice.
 */
const PAGES = ["/", "/pricing", "/products/42", "/checkout", "/docs/getting-started", "/blog/launch"];
const NAMES = ["page_view", "click", "add_to_cart", "search", "signup_step"];

function makeEvent(session, seq, now) {
  return {
    event_name: NAMES[seq % NAMES.length],
    session_id: session,
    seq,
    user_id: `u-${session}`,
    timestamp: now - 1000 + (seq % 1000),
    channel: "web",
    properties: {
      path: PAGES[seq % PAGES.length],
      referrer: "https://example.com/landing",
      title: "Product page",
      duration_ms: 1200 + seq,
    },
  };
}

/**
 * `count` request bodies of `eventsPerRequest` events. `sessionsPerRequest` sessions share each
 * body's events (1 = an SDK batch from one device; eventsPerRequest = every event its own session).
 */
function bodyPool({ count, eventsPerRequest, sessionsPerRequest = 1, prefix }) {
  const now = Date.now();
  const bodies = [];
  for (let b = 0; b < count; b++) {
    const events = [];
    for (let i = 0; i < eventsPerRequest; i++) {
      const s = i % sessionsPerRequest;
      events.push(makeEvent(`${prefix}-${b}-${s}`, Math.floor(i / sessionsPerRequest), now));
    }
    bodies.push(Buffer.from(JSON.stringify(eventsPerRequest === 1 ? events[0] : { events })));
  }
  return bodies;
}

module.exports = { makeEvent, bodyPool };
