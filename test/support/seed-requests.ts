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
