/** The fault proxy itself, against a TCP echo server: each mode does what it says. */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import * as net from "node:net";
import { startFaultProxy, type FaultProxy } from "../helpers/fault-proxy.js";
import { eventually } from "../helpers/e2e.js";

interface Ctx {
  echo: net.Server;
  echoPort: number;
  proxy: FaultProxy;
  sockets: net.Socket[];
}

const proxySuite = suite<Ctx>("fault proxy");

async function startEcho(): Promise<net.Server> {
  const server = net.createServer((s) => {
    s.on("error", () => {});
    s.pipe(s);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  return server;
}

function portOf(server: net.Server): number {
  return (server.address() as net.AddressInfo).port;
}

/** Connects; resolves with the socket, or the connect error's code. */
function dial(ctx: Ctx, port = ctx.proxy.port): Promise<net.Socket | string> {
  return new Promise((resolve) => {
    const s = net.connect({ host: "127.0.0.1", port });
    ctx.sockets.push(s);
    s.once("connect", () => resolve(s));
    s.once("error", (err: NodeJS.ErrnoException) => resolve(err.code ?? "error"));
  });
}

/** Sends `text` and resolves with what comes back within `ms`, or how the link ended. */
function roundTrip(s: net.Socket, text: string, ms = 300): Promise<string> {
  return new Promise((resolve) => {
    let got = "";
    const finish = (why: string) => {
      clearTimeout(timer);
      s.off("data", onData);
      resolve(why);
    };
    const onData = (d: Buffer) => {
      got += d.toString();
      if (got === text) finish(got);
    };
    const timer = setTimeout(() => finish(got === "" ? "silence" : got), ms);
    s.on("data", onData);
    s.once("error", (err: NodeJS.ErrnoException) => finish(err.code ?? "error"));
    s.once("close", () => finish(got === text ? got : "closed"));
    s.write(text);
  });
}

proxySuite.before.each(async (ctx) => {
  ctx.echo = await startEcho();
  ctx.echoPort = portOf(ctx.echo);
  ctx.proxy = await startFaultProxy({ targetPort: ctx.echoPort });
  ctx.sockets = [];
});

proxySuite.after.each(async (ctx) => {
  for (const s of ctx.sockets) s.destroy();
  await ctx.proxy.close();
  await new Promise<void>((resolve) => ctx.echo.close(() => resolve()));
});

proxySuite("pass forwards both ways", async (ctx) => {
  const s = await dial(ctx);
  assert.type(s, "object");
  assert.is(await roundTrip(s as net.Socket, "hello"), "hello");
  assert.is(ctx.proxy.stats().accepted, 1);
  assert.ok(ctx.proxy.stats().bytesFromServer >= 5);
});

proxySuite("cut resets open links and every new one until restored", async (ctx) => {
  const s = (await dial(ctx)) as net.Socket;
  assert.is(await roundTrip(s, "a"), "a");
  const reset = new Promise<string>((resolve) => s.once("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? "?")));
  await ctx.proxy.cut();
  assert.is(await reset, "ECONNRESET");
  const again = await dial(ctx);
  const outcome = typeof again === "string" ? again : await roundTrip(again, "b");
  assert.ok(["ECONNRESET", "closed"].includes(outcome), outcome);
  await ctx.proxy.pass();
  const ok = (await dial(ctx)) as net.Socket;
  assert.is(await roundTrip(ok, "c"), "c");
  assert.is(ctx.proxy.stats().reset, 2);
});

proxySuite("blackhole keeps links open and silent; they stay dead after the mode changes", async (ctx) => {
  const s = (await dial(ctx)) as net.Socket;
  assert.is(await roundTrip(s, "a"), "a");
  await ctx.proxy.blackhole();
  assert.is(await roundTrip(s, "b"), "silence");
  const fresh = (await dial(ctx)) as net.Socket;
  assert.is(await roundTrip(fresh, "c"), "silence", "a new connection is accepted but hears nothing");
  await ctx.proxy.pass();
  assert.is(await roundTrip(s, "d"), "silence", "the half-open link does not heal");
  const healthy = (await dial(ctx)) as net.Socket;
  assert.is(await roundTrip(healthy, "e"), "e");
  const st = ctx.proxy.stats();
  assert.is(st.blackholed, 2);
  s.destroy();
  fresh.destroy();
  await eventually("the proxy sees both clients give up on a dead link", () => ctx.proxy.stats().deadClosedByClient === 2, 2000);
});

proxySuite("blackholeOpenLinks kills open links but lets new ones pass", async (ctx) => {
  const s = (await dial(ctx)) as net.Socket;
  assert.is(await roundTrip(s, "a"), "a");
  assert.is(ctx.proxy.blackholeOpenLinks(), 1);
  assert.is(ctx.proxy.mode, "pass");
  assert.is(await roundTrip(s, "b"), "silence");
  const fresh = (await dial(ctx)) as net.Socket;
  assert.is(await roundTrip(fresh, "c"), "c");
});

proxySuite("delay forwards late and in order", async (ctx) => {
  await ctx.proxy.delay(80);
  const s = (await dial(ctx)) as net.Socket;
  const t0 = performance.now();
  assert.is(await roundTrip(s, "slow", 1000), "slow");
  const ms = performance.now() - t0;
  assert.ok(ms >= 150, `round trip ${ms} ms`);
  let got = "";
  s.on("data", (d: Buffer) => (got += d.toString()));
  for (const part of ["1", "2", "3", "4"]) s.write(part);
  await eventually("all four parts, in order", () => got.length >= 4, 2000);
  assert.is(got, "1234");
});

proxySuite("refuse closes the port; pass listens again on the same port", async (ctx) => {
  const port = ctx.proxy.port;
  const open = (await dial(ctx)) as net.Socket;
  await ctx.proxy.refuse();
  assert.is(await dial(ctx), "ECONNREFUSED");
  assert.is(await roundTrip(open, "still"), "still", "open links keep passing");
  await ctx.proxy.pass();
  assert.is(ctx.proxy.port, port);
  const s = (await dial(ctx)) as net.Socket;
  assert.is(await roundTrip(s, "back"), "back");
});

proxySuite("a dead target resets the client; setTargetPort points at a new one", async (ctx) => {
  const other = await startEcho();
  const otherPort = portOf(other);
  await new Promise<void>((resolve) => ctx.echo.close(() => resolve()));
  ctx.echo = await startEcho();
  const closedPort = ctx.echoPort;
  await new Promise<void>((resolve) => ctx.echo.close(() => resolve()));
  ctx.echo = other;
  ctx.proxy.setTargetPort(closedPort);
  const s = (await dial(ctx)) as net.Socket;
  const outcome = await roundTrip(s, "x");
  assert.ok(["ECONNRESET", "closed"].includes(outcome), outcome);
  assert.is(ctx.proxy.stats().upstreamFailures, 1);
  ctx.proxy.setTargetPort(otherPort);
  const t = (await dial(ctx)) as net.Socket;
  assert.is(await roundTrip(t, "y"), "y");
});

proxySuite("close destroys every link and stops listening", async (ctx) => {
  const s = (await dial(ctx)) as net.Socket;
  const closed = new Promise<void>((resolve) => s.once("close", () => resolve()));
  await ctx.proxy.close();
  await closed;
  assert.is(await dial(ctx), "ECONNREFUSED");
});

proxySuite.run();
