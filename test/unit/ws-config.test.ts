import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig, VARIABLES } from "../../config/env";

describe("WebSocket stream settings", () => {
  it("default to the documented values, the frame cap to MAX_BODY_BYTES", () => {
    expect(loadConfig({})).toMatchObject({ wsMaxPayloadBytes: 524288, wsIdleTimeoutSec: 60, wsMaxInflight: 64, wsMaxBackpressureBytes: 1048576 });
    expect(loadConfig({ MAX_BODY_BYTES: "1000" }).wsMaxPayloadBytes).toBe(1000);
    expect(loadConfig({ MAX_BODY_BYTES: "1000", WS_MAX_PAYLOAD_BYTES: "2000" }).wsMaxPayloadBytes).toBe(2000);
    expect(VARIABLES.filter((v) => v.name.startsWith("WS_")).map((v) => v.name)).toEqual([
      "WS_MAX_PAYLOAD_BYTES",
      "WS_IDLE_TIMEOUT_SEC",
      "WS_MAX_INFLIGHT",
      "WS_MAX_BACKPRESSURE_BYTES",
    ]);
  });

  it("accepts an idle timeout of 0 (off) or 8-960 s, as uWS does", () => {
    expect(loadConfig({ WS_IDLE_TIMEOUT_SEC: "0" }).wsIdleTimeoutSec).toBe(0);
    expect(loadConfig({ WS_IDLE_TIMEOUT_SEC: "8" }).wsIdleTimeoutSec).toBe(8);
    for (const bad of ["1", "7", "961", "-1", "ten"]) {
      expect(() => loadConfig({ WS_IDLE_TIMEOUT_SEC: bad })).toThrow(ConfigError);
    }
  });

  it.each([
    ["WS_MAX_INFLIGHT", "0"],
    ["WS_MAX_PAYLOAD_BYTES", "10"],
    ["WS_MAX_BACKPRESSURE_BYTES", "100"],
  ])("refuses %s=%s, naming the variable", (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(new RegExp(`^${name}:`));
  });
});
