/**
 * The built-in client's link probe (checkConnection) on the wire, through
 * the fault proxy enforcing gRPC core's keepalive policy (5 minutes, 2
 * strikes): within the PING interval a PING goes out only after the server
 * sent headers or trailers since the last one (which resets its strikes),
 * and an old answer is never reused (issue 21, fourth review).
 */
import { create } from "@bufbuild/protobuf";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { SyncProjectStateRequestSchema } from "../../src/gen/engram/v1/engram_pb.js";
import { createGrpcEventsClient } from "../../src/grpc-client.js";
import { startDevServer } from "../../src/index.js";
import { parseServerUrl } from "../../src/server-url.js";
import { startFaultProxy } from "../helpers/fault-proxy.js";

const probe = suite("the link probe's PING rule");

probe("one PING per sign of life within the interval; none, and no reused answer, without one", async () => {
  const server = await startDevServer({ port: 0 });
  const proxy = await startFaultProxy({
    targetPort: server.port,
    pingPolicy: { minPingIntervalWithoutDataMs: 300_000, maxPingStrikes: 2 },
  });
  const client = createGrpcEventsClient({ address: parseServerUrl(proxy.url) });
  const check = (): Promise<boolean> => {
    if (client.checkConnection === undefined) throw new Error("the built-in client has a link probe");
    return client.checkConnection({ signal: AbortSignal.timeout(5000), timeoutMs: 2000 });
  };
  const sync = () =>
    client.syncProjectState(create(SyncProjectStateRequestSchema, { clientId: "probe-test", localProjectIds: ["a"] }), {
      signal: AbortSignal.timeout(5000),
      timeoutMs: 2000,
    });
  try {
    await sync();
    // A check abandoned before it starts sends no PING and does not use up the allowance (sixth review).
    assert.is(await client.checkConnection?.({ signal: AbortSignal.abort(), timeoutMs: 2000 }), false);
    assert.is(proxy.stats().http2.clientPings, 0);
    assert.is(await check(), true, "the first PING is answered");
    assert.is(proxy.stats().http2.clientPings, 1);
    // No sign of life since that PING: no PING may go out, and its old answer does not stand.
    assert.is(await check(), false, "no sign of life since the last PING: suspect");
    assert.is(proxy.stats().http2.clientPings, 1, "no second PING");
    // The server answers a call (headers and trailers): its strikes are reset, a PING may go out again.
    await sync();
    assert.is(await check(), true);
    assert.is(proxy.stats().http2.clientPings, 2);
    await sync();
    assert.is(await check(), true);
    assert.is(proxy.stats().http2.clientPings, 3);
    assert.is(proxy.stats().http2.pingStrikes, 0, "no PING was a strike");
    assert.equal(proxy.stats().http2.goaways, [], "no GOAWAY too_many_pings");
    // The link dies: a PING goes out (a sign of life came since the last) and gets no answer.
    await sync();
    proxy.blackholeOpenLinks();
    assert.is(await check(), false, "a dead link is not taken for a slow server");
  } finally {
    client.close();
    await proxy.close();
    await server.close();
  }
});

probe.run();
