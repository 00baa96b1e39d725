import { suite } from "uvu";
import * as assert from "uvu/assert";
import { backoffDelayMs, defaultBridgeTiming, heartbeatDelayMs } from "../../src/timing.js";

const timing = suite("timing");

timing("backoff doubles from 1 s and caps at 60 s with no jitter at the midpoint", () => {
  const got = [1, 2, 3, 4, 5, 6, 7, 8, 20].map((n) => backoffDelayMs(n, defaultBridgeTiming, 0.5));
  assert.equal(got, [1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000]);
});

timing("backoff jitter stays within [1-j, 1+j] of the base", () => {
  assert.is(backoffDelayMs(1, defaultBridgeTiming, 0), 800);
  assert.is(backoffDelayMs(1, defaultBridgeTiming, 1), 1200);
  assert.is(backoffDelayMs(10, defaultBridgeTiming, 1), 72000);
});

timing("heartbeat waits are uniform in [55 s, 65 s]", () => {
  assert.is(heartbeatDelayMs(defaultBridgeTiming, 0), 55000);
  assert.is(heartbeatDelayMs(defaultBridgeTiming, 1), 65000);
  assert.is(heartbeatDelayMs(defaultBridgeTiming, 0.5), 60000);
});

timing.run();
