"use strict";
/**
 * Scenario (d)'s traffic: seed 004's profile (2,000 events/s sustained, a 20,000 events/s spike,
 * recovery) and its request shape (POST /events with 10 events: event_name, channel, campaign_id,
 * user_id, timestamp in epoch ms, tags, metadata). One definition for both generators that run
 * it: the open-loop generator of run.js and Artillery (artillery/processor.js, and run.js passes
 * these phases to Artillery as overrides of spike.yml's).
 */
const EVENTS_PER_REQUEST = 10;

const PHASES = [
  { name: "sustained 2k events/s", durationSec: 20, requestsPerSec: 200 },
  { name: "spike 20k events/s", durationSec: 15, requestsPerSec: 2000 },
  { name: "recovery 2k events/s", durationSec: 10, requestsPerSec: 200 },
];

const NAMES = ["product_view", "add_to_cart", "checkout", "search", "page_view"];
const CHANNELS = ["web", "mobile", "api", "email", "push"];

/** One request's body: 10 events of one random user, stamped now. */
function seedBatchBody(now = Date.now()) {
  const user = `user_${Math.floor(Math.random() * 1_000_000)}`;
  const events = [];
  for (let i = 0; i < EVENTS_PER_REQUEST; i++) {
    events.push({
      event_name: NAMES[(i + now) % NAMES.length],
      channel: CHANNELS[i % CHANNELS.length],
      campaign_id: "summer_sale_2024",
      user_id: user,
      timestamp: now - 50 + i,
      tags: ["electronics", "featured"],
      metadata: { product_id: `SKU-${i}`, page_url: "/products/laptop" },
    });
  }
  return JSON.stringify({ events });
}

const offeredRequests = () => PHASES.reduce((sum, p) => sum + p.durationSec * p.requestsPerSec, 0);
const profileSeconds = () => PHASES.reduce((sum, p) => sum + p.durationSec, 0);

module.exports = { EVENTS_PER_REQUEST, PHASES, seedBatchBody, offeredRequests, profileSeconds };
