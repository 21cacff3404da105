// The e2e suites' published ports (test/harness/load.ts, freePort) stay out of the kernel's range
// for outgoing connections' local ports: a port from that range can become the local end of any
// connection between being picked and being published, and Docker's proxy then cannot bind it.
import assert from "node:assert/strict";
import net from "node:net";
import { describe, test } from "node:test";
import { canListen, ephemeralPortRange, freePort, freePortRange } from "../harness/load";

describe("freePort", () => {
  test("the ephemeral range is read from the kernel's text, with Linux's default otherwise", () => {
    assert.deepEqual(ephemeralPortRange("32768\t60999\n"), [32768, 60999]);
    assert.deepEqual(ephemeralPortRange("40000 50000"), [40000, 50000]);
    assert.deepEqual(ephemeralPortRange(undefined), [32768, 60999]);
    assert.deepEqual(ephemeralPortRange("garbage"), [32768, 60999]);
  });

  test("ports are picked below the ephemeral range, or above it when it starts too low", () => {
    assert.deepEqual(freePortRange([32768, 60999]), [10000, 19999]);
    assert.deepEqual(freePortRange([15000, 60999]), [10000, 14999]);
    assert.deepEqual(freePortRange([1024, 50000]), [50001, 65535]);
    assert.throws(() => freePortRange([1024, 65000]), /leaves no room for test ports/);
  });

  test("a handed-out port is outside the ephemeral range, listenable, and never handed out twice", async () => {
    const [lo, hi] = ephemeralPortRange();
    const ports = new Set<number>();
    for (let i = 0; i < 50; i++) {
      const port = await freePort();
      assert.ok(port < lo || port > hi, `${port} is in the ephemeral range ${lo}-${hi}`);
      assert.ok(await canListen(port), `${port} can be listened on`);
      assert.ok(!ports.has(port), `${port} was handed out twice`);
      ports.add(port);
    }
  });

  test("canListen is false while something listens on the port", async () => {
    const port = await freePort();
    const srv = net.createServer();
    await new Promise<void>((resolve) => srv.listen(port, "127.0.0.1", resolve));
    try {
      assert.equal(await canListen(port), false);
    } finally {
      await new Promise((resolve) => srv.close(resolve));
    }
    assert.equal(await canListen(port), true);
  });
});
