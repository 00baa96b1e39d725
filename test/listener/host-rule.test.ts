import { suite } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { createHostRule } from "../../src/listener/host-rule.js";

const hostRule = suite("the listeners' Host rule (DNS rebinding)");

const port = 9464;

hostRule("accepts the loopback names, the given names and, when asked, any IP literal, each with the listening port", () => {
  const health = createHostRule({ names: ["0.0.0.0", "Sidecar.Internal"], allowIpLiterals: true });
  for (const host of ["localhost", "127.0.0.1", "[::1]", "sidecar.internal", "10.244.1.7", "[fd00::1]", "[::ffff:10.0.0.1]", "0.0.0.0"]) {
    assert.ok(health.allows(`${host}:${port}`, port), host);
    assert.not.ok(health.allows(`${host}:${port + 1}`, port), `${host} on another port`);
  }
  const inspector = createHostRule({ names: ["127.0.0.1"] });
  assert.not.ok(inspector.allows(`10.244.1.7:${port}`, port), "IP literals only when asked");
  for (const header of [undefined, "", ":9464", "[::1", "localhost:9464:1", "localhost:x", "10.1.2:9464", "[fd00::zz]:9464", "::1:9464"]) {
    assert.not.ok(health.allows(header, port), String(header));
  }
  assert.ok(createHostRule().allows("localhost", 80), "no port means 80");
});

hostRule("refuses every DNS name it was not given, however it resembles an allowed one (property)", () => {
  const rule = createHostRule({ names: ["sidecar.internal"], allowIpLiterals: true });
  fc.assert(
    fc.property(fc.domain(), (domain) => {
      fc.pre(!["localhost", "sidecar.internal"].includes(domain.toLowerCase()));
      assert.not.ok(rule.allows(`${domain}:${port}`, port), domain);
      assert.not.ok(rule.allows(`localhost.${domain}:${port}`, port), `localhost.${domain}`);
      assert.not.ok(rule.allows(`127.0.0.1.${domain}:${port}`, port), `127.0.0.1.${domain}`);
    }),
  );
});

hostRule("accepts every IPv4 and IPv6 literal when IP literals are allowed (property)", () => {
  const rule = createHostRule({ allowIpLiterals: true });
  fc.assert(
    fc.property(
      fc.oneof(
        fc.ipV4(),
        fc.ipV6().map((a) => `[${a}]`),
      ),
      (ip) => {
        assert.ok(rule.allows(`${ip}:${port}`, port), ip);
      },
    ),
  );
});

hostRule.run();
