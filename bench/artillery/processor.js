"use strict";
/**
 * Artillery processor for spike.yml: each request carries 10 events in the shape of seed 004's
 * POST /events (event_name, channel, campaign_id, user_id, timestamp in epoch ms, tags,
 * metadata), for random users, with the bench API key from BENCH_API_KEY.
 */
const NAMES = ["product_view", "add_to_cart", "checkout", "search", "page_view"];
const CHANNELS = ["web", "mobile", "api", "email", "push"];
const EVENTS_PER_REQUEST = 10;

function seedBatch(requestParams, _context, _ee, next) {
  const now = Date.now();
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
  requestParams.body = JSON.stringify({ events });
  requestParams.headers = {
    ...(requestParams.headers || {}),
    "content-type": "application/json",
    "x-api-key": process.env.BENCH_API_KEY || "bench-key",
  };
  return next();
}

module.exports = { seedBatch, EVENTS_PER_REQUEST };
