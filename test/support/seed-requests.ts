/** The request body of the reference document's curl example (../shared/seeds/000_*.txt), verbatim. */
export const SEED_000_REQUEST = `{
    "events": [
      {
        "eventType": "click",
        "timestamp": "2024-01-15T10:30:45Z",
        "sessionId": "sess-123",
        "route": "/checkout",
        "target": {"type": "button"},
        "metadata": {}
      }
    ]
  }`;

/**
 * The payload fields of the learning platform's attempt event (../shared/seeds/002_*.txt), the
 * seed's values with real UUIDs where it has placeholders; `user_id` and `session_id` are the
 * caller's (top-level on the seed's endpoint, beside the payload on /v1/events).
 */
export function seed002AttemptFields(ids: { item_id: string; client_attempt_id: string }) {
  return {
    item_id: ids.item_id,
    client_attempt_id: ids.client_attempt_id,
    selected: "answer_data",
    correct: true,
    quality: 4,
    confidence: 3,
    time_taken_ms: 5000,
    hints_used: 0,
    device_type: "mobile",
    app_version: "1.0.0",
  };
}
