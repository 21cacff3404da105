/**
 * Proves the multi-host extension of the harness (hosts.ts, hosts.sh) before a deploy test relies
 * on it: three hosts come up (and are reused warm by another process), each answers SSH as deploy
 * with its own pinned host key and runs its own Docker engine, containers on one host reach
 * another host's published ports, a host pulls the backend from the registry, /opt is per host
 * and is what that host's engine mounts, a crashed host is recovered, the front balancer spreads
 * requests over two hosts and keeps answering when one is cut off, and stopping leaves nothing
 * behind. Uses hosts of its own (hst1..hst3, 10.231.0.211-213) and stops them at the end, so it
 * never touches the hosts of a deploy suite. E2E_HOSTS_COLD=1 wipes them first (cold timing).
 * Skips with a plain reason where e2e cannot run, except under CI=true, where that fails.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import {
  type CommandResult,
  dockerOnHost,
  e2eSkip,
  ensureHarness,
  ensureHosts,
  FLEET_BRIDGE,
  FLEET_RUN_DIR,
  type FleetHost,
  fleetAddress,
  type Harness,
  harnessAvailability,
  harnessForHost,
  hostHolderPid,
  httpGet,
  registryForHosts,
  runLocal,
  runOnHost,
  runOverSsh,
  setHostReachable,
  startFrontBalancer,
  startLoad,
  stopHosts,
} from ".";

const availability = harnessAvailability();
const skip = e2eSkip("e2e fleet hosts");

const NAMES = ["hst1", "hst2", "hst3"];
const FIRST_INDEX = 201;
const BASE_IMAGE = "clicky-e2e/base:bookworm";
const WEB_PORT = 18080;

/** Fails with the command's output when it did not exit 0. */
function ok(r: CommandResult, what: string): CommandResult {
  assert.equal(
    r.code,
    0,
    `${what} exited ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`,
  );
  return r;
}

/** A tiny HTTP/1.1 server (keep-alive) answering its host's name, also as X-App-Version. */
const WEB_SERVER = `
import http.server, os, socketserver
name = os.environ["NAME"].encode()
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(name)))
        self.send_header("X-App-Version", name.decode())
        self.end_headers()
        self.wfile.write(name)
    def log_message(self, *args):
        pass
socketserver.ThreadingTCPServer.allow_reuse_address = True
socketserver.ThreadingTCPServer.daemon_threads = True
socketserver.ThreadingTCPServer(("0.0.0.0", 8080), H).serve_forever()
`;

/** One GET to any address (httpGet takes loopback only), bounded by `timeoutMs` in all. */
function getText(url: string, timeoutMs = 3000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    // A whole-request timer: a request's own timeout starts only once connected, and a
    // connection to a host that was cut off hangs in SYN retries.
    const timer = setTimeout(
      () => req.destroy(new Error(`GET ${url}: no answer in ${timeoutMs} ms`)),
      timeoutMs,
    );
    const req = http.get(url, { agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (d: Buffer) => chunks.push(d));
      res.on("end", () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") });
      });
      res.on("error", reject);
    });
    req.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Starts the tiny server on a host, publishing port 8080 on the host's address:WEB_PORT. */
async function startWeb(host: FleetHost): Promise<void> {
  await dockerOnHost(host, ["rm", "-f", "fleet-selftest-web"]);
  ok(
    await dockerOnHost(host, [
      "run",
      "-d",
      "--name",
      "fleet-selftest-web",
      "-e",
      `NAME=${host.name}`,
      "-p",
      `${host.address}:${WEB_PORT}:8080`,
      BASE_IMAGE,
      "python3",
      "-c",
      WEB_SERVER,
    ]),
    `web on ${host.name}`,
  );
  await waitFor(`web on ${host.name}`, async () => {
    const r = await getText(`http://${host.address}:${WEB_PORT}/`);
    return r.body === host.name;
  });
}

/** Processes whose command line names one of the self-test's hosts. */
function selftestProcesses(): string[] {
  const found: string[] = [];
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    let cmd = "";
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ");
    } catch {
      continue;
    }
    if (NAMES.some((n) => cmd.includes(`clicky-e2e-hosts/${n}/`) || cmd.includes(`holder-${n} `)))
      found.push(`${pid}: ${cmd.trim()}`);
  }
  return found;
}

describe("e2e fleet hosts", { skip }, () => {
  let h: Harness;
  let hosts: FleetHost[] = [];
  let firstMs = 0;

  const host = (i: number): FleetHost => {
    const x = hosts[i];
    assert.ok(x, `host ${i}`);
    return x;
  };

  before(
    async () => {
      if (!availability.ok) {
        throw new Error(`CI=true but e2e cannot run here: ${availability.reason}`);
      }
      h = await ensureHarness();
      if (process.env.E2E_HOSTS_COLD === "1") await stopHosts(NAMES, { wipe: true });
      const t0 = Date.now();
      hosts = await ensureHosts(NAMES, { firstIndex: FIRST_INDEX, harness: h });
      firstMs = Date.now() - t0;
    },
    { timeout: 20 * 60_000 },
  );

  after(async () => {
    if (hosts.length > 0) await stopHosts(NAMES);
  });

  test("three hosts come up, and another process reuses them warm", async (t) => {
    assert.deepEqual(
      hosts.map((x) => [x.name, x.address, x.dockerHost]),
      NAMES.map((n, i) => [n, fleetAddress(FIRST_INDEX + i), `unix:///run/clicky-e2e-${n}.sock`]),
    );
    const holders = hosts.map((x) => hostHolderPid(x));
    // A second ensureHosts in another process, as a second test file would call it.
    const code = `
const { ensureHosts } = require(${JSON.stringify(path.join(__dirname, "hosts"))});
const { loadHarness } = require(${JSON.stringify(path.join(__dirname, "state"))});
const t0 = Date.now();
ensureHosts(${JSON.stringify(NAMES)}, { firstIndex: ${FIRST_INDEX}, harness: loadHarness(${JSON.stringify(h.stateDir)}), progress: null })
  .then((hs) => console.log(JSON.stringify({ ms: Date.now() - t0, keys: hs.map((x) => x.hostPublicKey) })))
  .catch((e) => { console.error(e); process.exit(1); });
`;
    const t0 = Date.now();
    const r = ok(await runLocal(process.execPath, ["--import", "tsx", "-e", code]), "warm ensure");
    const processMs = Date.now() - t0;
    const warm = JSON.parse(r.stdout.trim().split("\n").pop() ?? "{}") as {
      ms: number;
      keys: string[];
    };
    assert.deepEqual(
      warm.keys,
      hosts.map((x) => x.hostPublicKey),
    );
    assert.deepEqual(
      hosts.map((x) => hostHolderPid(x)),
      holders,
      "the warm call reused the running hosts",
    );
    t.diagnostic(
      `bring-up of 3 hosts: first ${firstMs} ms (${process.env.E2E_HOSTS_COLD === "1" ? "cold: wiped first" : "from whatever state they were in"}), warm ${warm.ms} ms (${processMs} ms with the node process)`,
    );
    // ~2 s on a quiet machine (README.md); generous here, as other suites may run beside this one.
    assert.ok(warm.ms < 60_000, `warm bring-up took ${warm.ms} ms`);
  });

  test("ssh as deploy to each host with its own pinned key; each has its own engine", async () => {
    const ids = new Set<string>();
    for (const x of hosts) {
      const r = ok(
        await runOverSsh(
          harnessForHost(h, x),
          "hostname; id -un; docker info --format '{{.ID}} {{.Name}}'; docker compose version --short; docker-compose version --short; echo $HOME; ls -ld /opt | cut -d' ' -f1,3,4",
        ),
        `ssh ${x.name}`,
      );
      const [name, user, info, v2, v1, home, opt] = r.stdout.trim().split("\n");
      assert.equal(name, x.name);
      assert.equal(user, "deploy");
      const [id, engineName] = (info ?? "").split(" ");
      assert.equal(engineName, x.name, "the engine's name is the host's");
      assert.ok(id && !ids.has(id), `engine ID ${id} is unique`);
      ids.add(id);
      assert.equal(v2, h.docker.composeV2);
      assert.equal(v1, h.docker.composeV1);
      assert.equal(home, "/home/deploy");
      assert.equal(opt, "drwxrwxr-t root deploy");
    }
    const main = ok(await runLocal("docker", ["info", "--format", "{{.ID}}"]), "docker info");
    assert.ok(!ids.has(main.stdout.trim()), "no host uses the main engine");
    // The keys differ: host 1 pinned with host 2's key is refused.
    await assert.rejects(
      runOverSsh(harnessForHost(h, { ...host(0), hostPublicKey: host(1).hostPublicKey }), "true", {
        readyTimeoutMs: 10_000,
      }),
      /host key mismatch/,
    );
  });

  test("/opt is per host, and a host's engine mounts the same /opt its SSH user sees", async () => {
    const dir = "/opt/fleet-selftest";
    const [h1, h2] = [host(0), host(1)];
    ok(
      await runOverSsh(
        harnessForHost(h, h1),
        `rm -rf ${dir}; mkdir ${dir} && echo from-${h1.name} > ${dir}/f`,
      ),
      "write on h1",
    );
    const seen = ok(
      await runOverSsh(
        harnessForHost(h, h1),
        `docker run --rm -v ${dir}:/x ${BASE_IMAGE} cat /x/f; stat -c %U ${dir}`,
      ),
      "bind mount on h1",
    );
    assert.equal(seen.stdout, `from-${h1.name}\ndeploy\n`);
    const other = ok(
      await runOverSsh(harnessForHost(h, h2), `test -e ${dir} && echo there || echo absent`),
      "look on h2",
    );
    assert.equal(other.stdout, "absent\n");
    assert.ok(existsSync(path.join(h1.optDir, "fleet-selftest", "f")), "visible from this side");
    assert.ok(!existsSync(path.join(h2.optDir, "fleet-selftest")));
    assert.ok(!existsSync(dir), "not in this machine's own /opt");
    ok(await runOverSsh(harnessForHost(h, h1), `rm -rf ${dir}`), "cleanup");
  });

  test("a container on one host reaches a port another host publishes on its address", async () => {
    const [h1, h3] = [host(0), host(2)];
    await startWeb(h3);
    const url = `http://${h3.address}:${WEB_PORT}/`;
    const fromContainer = ok(
      await dockerOnHost(h1, ["run", "--rm", BASE_IMAGE, "curl", "-sS", "-m", "5", url]),
      "curl in a container on h1",
    );
    assert.equal(fromContainer.stdout, h3.name);
    const fromHost = ok(await runOnHost(h1, "curl", ["-sS", "-m", "5", url]), "curl on h1");
    assert.equal(fromHost.stdout, h3.name);
    const ns = ok(await runOnHost(h1, "ip", ["-4", "-o", "addr", "show", "eth0"]), "ip addr");
    assert.match(ns.stdout, new RegExp(`inet ${h1.address.replace(/\./g, "\\.")}/24`));
    assert.equal((await getText(url)).body, h3.name, "and the test side reaches it too");
    ok(await dockerOnHost(h3, ["rm", "-f", "fleet-selftest-web"]), "rm web");
  });

  test("deploy logs in and pulls the backend from the registry on a host", async () => {
    const hh = harnessForHost(h, host(0));
    const v1 = hh.images.backend.tags.v1;
    assert.ok(v1);
    assert.ok(v1.ref.startsWith(`${registryForHosts(h)}/`), v1.ref);
    const cfg = "/tmp/fleet-selftest-docker";
    const r = ok(
      await runOverSsh(
        hh,
        `set -e
rm -rf ${cfg}; mkdir -p ${cfg}; export DOCKER_CONFIG=${cfg}
docker rmi ${v1.ref} >/dev/null 2>&1 || true
if docker pull ${v1.ref} >/dev/null 2>&1; then echo without-login: pulled; else echo without-login: refused; fi
IFS= read -r password
printf '%s' "$password" | docker login -u ${hh.registry.user} --password-stdin ${hh.registry.address} >/dev/null
start=$(date +%s%N)
docker pull -q ${v1.ref} >/dev/null
echo "pull ms: $((($(date +%s%N) - start) / 1000000))"
docker image inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' ${v1.ref}
docker rmi ${v1.ref} >/dev/null; rm -rf ${cfg}`,
        { stdin: `${h.registry.password}\n` },
      ),
      "pull script",
    );
    assert.match(r.stdout, /without-login: refused/);
    assert.ok(r.stdout.includes(v1.pinned), `RepoDigests include ${v1.pinned}:\n${r.stdout}`);
  });

  test("a crashed host (holder, dockerd and sshd killed) is recovered by ensureHosts", async (t) => {
    const h2 = host(1);
    const before = hosts.map((x) => hostHolderPid(x));
    for (const f of ["holder", "dockerd", "sshd"]) {
      const pid = Number(readFileSync(path.join(FLEET_RUN_DIR, h2.name, `${f}.pid`), "utf8"));
      process.kill(pid, "SIGKILL");
    }
    await waitFor("the holder to die", async () => {
      try {
        hostHolderPid(h2);
        return false;
      } catch {
        return true;
      }
    });
    const t0 = Date.now();
    hosts = await ensureHosts(NAMES, { firstIndex: FIRST_INDEX, harness: h });
    t.diagnostic(`ensureHosts recovered ${h2.name} in ${Date.now() - t0} ms`);
    const now = hosts.map((x) => hostHolderPid(x));
    assert.notEqual(now[1], before[1], "host 2 was started again");
    assert.equal(now[0], before[0], "host 1 was left alone");
    assert.equal(now[2], before[2], "host 3 was left alone");
    const r = ok(
      await runOverSsh(harnessForHost(h, h2), "docker info --format '{{.Name}}'"),
      "ssh",
    );
    assert.equal(r.stdout.trim(), h2.name);
  });

  test("the front balancer spreads over two hosts and keeps answering when one is cut off", async (t) => {
    const [h1, h2] = [host(0), host(1)];
    const t0 = Date.now();
    const phases: string[] = [];
    const phase = (what: string) => phases.push(`${what} at ${Date.now() - t0} ms`);
    await Promise.all([startWeb(h1), startWeb(h2)]);
    phase("web servers up");
    const front = await startFrontBalancer({
      upstreams: [h1, h2].map((x) => `${x.address}:${WEB_PORT}`),
    });
    try {
      const seen: Record<string, number> = {};
      for (let i = 0; i < 20; i++) {
        const a = await httpGet(`${front.url}/`);
        assert.equal(a.status, 200);
        seen[a.body] = (seen[a.body] ?? 0) + 1;
      }
      assert.deepEqual(Object.keys(seen).sort(), [h1.name, h2.name], JSON.stringify(seen));
      phase("front up and spreading");
      // Open-loop load through the front; h2 drops off the network in the middle of it.
      const load = startLoad({
        url: `${front.url}/`,
        ratePerSecond: 40,
        durationMs: 7000,
        keepAlive: "mixed",
        // A request caught on a keep-alive connection to h2 waits the front's 3 s read timeout,
        // then is answered by h1: slow, not failed. Room for a busy machine on top.
        requestTimeoutMs: 10_000,
      });
      await new Promise((r) => setTimeout(r, 2000));
      phase("cutting h2 off");
      await setHostReachable(h2, false);
      phase("h2 cut off");
      await new Promise((r) => setTimeout(r, 1000));
      await assert.rejects(
        getText(`http://${h2.address}:${WEB_PORT}/`, 1000),
        /no answer in 1000 ms/,
        "h2 does not answer while cut off",
      );
      phase("h2 checked unreachable");
      const res = await load.done;
      phase("load done");
      t.diagnostic(
        `load through the front: ${res.sent} sent, ${res.ok2xx} ok, answers by host ${JSON.stringify(res.versions)}, errors ${JSON.stringify(res.errors)}, non-2xx ${JSON.stringify(res.non2xx)}, latency p50 ${res.latencyMs.p50} ms p99 ${res.latencyMs.p99} ms max ${res.latencyMs.max} ms (h2 cut off 2 s into the 7 s)`,
      );
      assert.equal(res.errorsTotal, 0, JSON.stringify(res.failures.slice(0, 5)));
      assert.equal(res.non2xxTotal, 0, JSON.stringify(res.non2xx));
      assert.ok((res.versions[h2.name] ?? 0) > 0 && (res.versions[h1.name] ?? 0) > 0);
      const afterCut: Record<string, number> = {};
      for (let i = 0; i < 10; i++) {
        const a = await httpGet(`${front.url}/`, 5000);
        afterCut[a.body] = (afterCut[a.body] ?? 0) + 1;
      }
      assert.deepEqual(afterCut, { [h1.name]: 10 }, "only h1 answers while h2 is cut off");
      phase("10 requests while cut off");
      await setHostReachable(h2, true);
      await waitFor(
        "h2 back behind the front",
        async () => (await httpGet(`${front.url}/`)).body === h2.name,
        20_000,
      );
      phase("h2 back behind the front");
    } finally {
      await setHostReachable(h2, true);
      await front.stop();
      await Promise.all([h1, h2].map((x) => dockerOnHost(x, ["rm", "-f", "fleet-selftest-web"])));
      phase("cleaned up");
      t.diagnostic(phases.join(", "));
    }
  });

  test("stopHosts leaves no namespace, process, link, socket or mount behind", async () => {
    await stopHosts(NAMES);
    const stopped = hosts;
    hosts = [];
    const netns = ok(await runLocal("ip", ["netns", "list"]), "ip netns list").stdout;
    for (const x of stopped) {
      assert.ok(!netns.includes(x.netns), `netns ${x.netns} gone`);
      const link = await runLocal("ip", ["link", "show", x.veth]);
      assert.notEqual(link.code, 0, `veth ${x.veth} gone`);
      assert.ok(!existsSync(path.join(FLEET_RUN_DIR, x.name)), "pid files gone");
      assert.ok(!existsSync(`/run/clicky-e2e-${x.name}.sock`), "socket link gone");
      assert.ok(existsSync(path.join(x.stateDir, "ssh", "ssh_host_ed25519_key")), "host key kept");
    }
    assert.deepEqual(selftestProcesses(), []);
    const mounts = readFileSync("/proc/self/mountinfo", "utf8")
      .split("\n")
      .filter((l) => stopped.some((x) => l.includes(x.stateDir)));
    assert.deepEqual(mounts, []);
    if (!/^clk-/m.test(netns)) {
      const bridge = await runLocal("ip", ["link", "show", FLEET_BRIDGE]);
      assert.notEqual(bridge.code, 0, "no host left: the bridge is gone too");
      const rules = ok(await runLocal("iptables-save", []), "iptables-save").stdout;
      assert.ok(!rules.includes("clicky-e2e-fleet"), "and its iptables rules");
    }
  });
});
