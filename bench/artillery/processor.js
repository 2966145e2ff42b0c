"use strict";
/**
 * Artillery processor for spike.yml: each request carries seed 004's batch of 10 events (see
 * ../lib/seed004.js) for a random user, with the bench API key from BENCH_API_KEY.
 */
const { seedBatchBody } = require("../lib/seed004");

// Artillery's arrival timer would otherwise keep a core busy between arrivals (see the module).
require("./paced-arrivals").install();

function seedBatch(requestParams, _context, _ee, next) {
  requestParams.body = seedBatchBody();
  requestParams.headers = {
    ...(requestParams.headers || {}),
    "content-type": "application/json",
    "x-api-key": process.env.BENCH_API_KEY || "bench-key",
  };
  return next();
}

module.exports = { seedBatch };
