/**
 * Several hosts on this machine, for e2e tests that deploy to more than one (README.md, "Several
 * hosts"): each host is a network namespace and a mount (and UTS) namespace of its own, with its
 * own Docker engine and its own sshd, on a bridge in the root namespace (`clkfleet0`,
 * 10.231.0.1/24; host index i has address 10.231.0.(10+i)). The test side (this process, the
 * root namespace) reaches every host's address; the hosts reach each other and the harness's
 * registry (`registryForHosts`). `hosts.sh` does the work; this module is its API.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { freePort } from "./load";
import { type CommandResult, type RunLocalOptions, runLocal } from "./local";
import { ensureHarness, type Harness } from "./state";

/** The script that sets hosts up and down (`hosts.sh up|down|reset|exec|status`). */
export const HOSTS_SCRIPT = path.join(__dirname, "hosts.sh");
/** The bridge in the root namespace that every host's veth is plugged into. */
export const FLEET_BRIDGE = "clkfleet0";
/** The bridge's address: the root namespace as the hosts see it (and where the registry is). */
export const FLEET_GATEWAY = "10.231.0.1";
/** Each host's state (engine data, /opt, home, host key, logs) is `<FLEET_DIR>/<name>`. */
export const FLEET_DIR = "/var/lib/clicky-e2e-hosts";
/** Pid files of each host's processes, `<FLEET_RUN_DIR>/<name>/{holder,dockerd,sshd}.pid`. */
export const FLEET_RUN_DIR = "/run/clkfleet";
/** The images loaded into every host's engine (the backend tags are pulled, never loaded). */
export const FLEET_IMAGES = [
  "clicky-e2e/base:bookworm",
  "clicky-e2e/postgres:16",
  "clicky-e2e/redis:7",
  "clicky-e2e/proxy:1",
];

const NAME_RE = /^[a-z][a-z0-9]{0,9}$/;
const MAX_INDEX = 240;

/** One host of the fleet, as a test connects to it. */
export interface FleetHost {
  /** `h1`: 1 to 10 lowercase letters and digits, starting with a letter */
  name: string;
  /** 1..240; the address's last byte is 10 + index */
  index: number;
  /** `10.231.0.11`: where its sshd listens and where its containers publish ports */
  address: string;
  sshPort: 22;
  /** The harness's deploy user (group docker, key-only), with a home of its own on each host. */
  user: string;
  /** `ssh-ed25519 AAAA...` of this host's own host key (kept across runs), to pin. */
  hostPublicKey: string;
  /** `unix:///run/clicky-e2e-<name>.sock`: this host's engine, from the test side (`docker -H`). */
  dockerHost: string;
  /** Where app directories go on this host: `/opt` (per host; the deploy user may create in it). */
  appRoot: string;
  /** Its network namespace (`ip netns exec clk-<name> ...` enters the network only). */
  netns: string;
  /** The root-side end of its veth: down means the host is cut off (`setHostReachable`). */
  veth: string;
  /** `<FLEET_DIR>/<name>`: its state on this side (`opt/`, `home/`, `tmp/`, `docker/`, `logs/`). */
  stateDir: string;
  /** Its `/opt` as seen from the test side (files a deploy wrote, without SSH). */
  optDir: string;
  /** The deploy user's home on this host, as seen from the test side. */
  homeDir: string;
}

/** Options of ensureHosts. */
export interface EnsureHostsOptions {
  /**
   * Index of the first name (the next names get the next ones); default 1, so `h1, h2, h3`
   * are 10.231.0.11-13. Suites that run at the same time use disjoint names and indexes.
   */
  firstIndex?: number;
  /** The harness whose client key, registry and images the hosts use; default ensureHarness(). */
  harness?: Harness;
  /** Where hosts.sh's progress goes; default process.stderr, null for nowhere. */
  progress?: NodeJS.WritableStream | null;
  /** Give up after this long; default 10 minutes (a cold start loads ~0.5 GB of images). */
  timeoutMs?: number;
}

/** The address of host index `index` (1..240). */
export function fleetAddress(index: number): string {
  if (!Number.isInteger(index) || index < 1 || index > MAX_INDEX) {
    throw new Error(`fleet host index ${index}: must be an integer in 1..${MAX_INDEX}`);
  }
  return `10.231.0.${10 + index}`;
}

/**
 * Where the hosts pull the backend from: `10.231.0.1:<registry port>`, forwarded (DNAT) to the
 * harness's registry on 127.0.0.1. Log in there with `h.registry.user` and `.password`.
 */
export function registryForHosts(h: Harness): string {
  const port = h.registry.address.split(":").pop();
  if (!port || !/^\d+$/.test(port)) {
    throw new Error(`registryForHosts: no port in registry address ${h.registry.address}`);
  }
  return `${FLEET_GATEWAY}:${port}`;
}

/**
 * The harness as seen from one host: SSH goes to that host (its address, port 22, its pinned
 * host key) and the registry and backend refs are the ones the hosts pull from. Every helper that
 * takes a Harness (`runOverSsh`, `copyOverSsh`, `runAsProvider`, `prepareAndCopy`) then acts on
 * that host. (`cleanupProject` and `composeContainers` use the main engine: use resetHosts or
 * dockerOnHost instead.)
 */
export function harnessForHost(h: Harness, host: FleetHost): Harness {
  const to = registryForHosts(h);
  const swap = (ref: string) => refForHosts(h, ref);
  const tags = Object.fromEntries(
    Object.entries(h.images.backend.tags).map(([tag, t]) => [
      tag,
      { ...t, ref: swap(t.ref), pinned: swap(t.pinned) },
    ]),
  );
  return {
    ...h,
    ssh: {
      ...h.ssh,
      host: host.address,
      port: host.sshPort,
      user: host.user,
      hostPublicKey: host.hostPublicKey,
    },
    registry: { ...h.registry, address: to },
    images: {
      ...h.images,
      backend: { repository: swap(h.images.backend.repository), tags },
    },
  };
}

/** `ref` (an image in the harness's registry) as the hosts pull it, from registryForHosts. */
function refForHosts(h: Harness, ref: string): string {
  const from = `${h.registry.address}/`;
  return ref.startsWith(from) ? `${registryForHosts(h)}/${ref.slice(from.length)}` : ref;
}

function hostNames(hosts: (string | FleetHost)[]): string[] {
  const names = hosts.map((x) => (typeof x === "string" ? x : x.name));
  for (const n of names) {
    if (!NAME_RE.test(n)) {
      throw new Error(
        `fleet host name ${JSON.stringify(n)}: want ${NAME_RE} (it names interfaces)`,
      );
    }
  }
  if (new Set(names).size !== names.length) {
    throw new Error(`fleet host names repeat: ${names.join(", ")}`);
  }
  return names;
}

/** Runs hosts.sh, streaming its progress (stderr); rejects with its tail when it fails. */
function runHostsScript(
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; progress?: NodeJS.WritableStream | null; timeoutMs?: number },
): Promise<string> {
  const progress = opts.progress === undefined ? process.stderr : opts.progress;
  const timeoutMs = opts.timeoutMs ?? 10 * 60_000;
  return new Promise((resolve, reject) => {
    const child = spawn("bash", [HOSTS_SCRIPT, ...args], {
      env: { ...process.env, ...opts.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const out: Buffer[] = [];
    const errText: string[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGTERM");
    }, timeoutMs);
    child.stdout.on("data", (d: Buffer) => out.push(d));
    child.stderr.on("data", (d: Buffer) => {
      const text = d.toString("utf8");
      errText.push(text);
      progress?.write(text);
    });
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(new Error(`hosts.sh: cannot run ${HOSTS_SCRIPT}: ${err.message}`));
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      if (code === 0) return resolve(Buffer.concat(out).toString("utf8"));
      const tail = errText.join("").trimEnd().split("\n").slice(-25).join("\n");
      const how = timedOut ? `timed out after ${timeoutMs} ms` : `exit ${code ?? signal}`;
      reject(new Error(`hosts.sh ${args[0]} failed (${how}); last output:\n${tail}`));
    });
  });
}

function toFleetHost(line: string, user: string): FleetHost {
  const [tag, name, index, address, hostPublicKey] = line.split("\t");
  if (tag !== "host" || !name || !index || !address || !hostPublicKey) {
    throw new Error(`hosts.sh up: unexpected output line ${JSON.stringify(line)}`);
  }
  const stateDir = path.join(FLEET_DIR, name);
  return {
    name,
    index: Number(index),
    address,
    sshPort: 22,
    user,
    hostPublicKey,
    dockerHost: `unix:///run/clicky-e2e-${name}.sock`,
    appRoot: "/opt",
    netns: `clk-${name}`,
    veth: `clkv-${name}`,
    stateDir,
    optDir: path.join(stateDir, "opt"),
    homeDir: path.join(stateDir, "home"),
  };
}

/**
 * Brings the named hosts up, or finds them up (a warm call, from this process or another, checks
 * and reuses them in about 2 s): network namespace and veth with address 10.231.0.(10+index),
 * their own mounts (`/opt`, the deploy user's home, `/tmp`, `/run`, `/etc/docker` per host), a
 * Docker engine (the harness's postgres, redis, proxy and base images loaded; the backend is
 * pulled from `registryForHosts(h)`) and sshd on port 22 for the deploy user with the harness's
 * client key. Repairs what is missing; a host left half-dead by a crashed run is torn down and
 * started again. A host cut off by setHostReachable(false) is reconnected. Resolves in `names`'
 * order.
 */
export async function ensureHosts(
  names: string[],
  opts: EnsureHostsOptions = {},
): Promise<FleetHost[]> {
  const list = hostNames(names);
  if (list.length === 0) throw new Error("ensureHosts: no host names");
  const first = opts.firstIndex ?? 1;
  fleetAddress(first);
  fleetAddress(first + list.length - 1);
  const h = opts.harness ?? (await ensureHarness());
  const args = [
    "up",
    "--first-index",
    String(first),
    "--registry-port",
    registryForHosts(h).split(":")[1] ?? "",
    "--client-key",
    h.ssh.clientPublicKey,
    "--images",
    [h.images.base, h.images.postgres, h.images.redis, h.images.proxy].join(" "),
  ];
  const v1 = h.images.backend.tags.v1;
  if (v1) args.push("--prime-ref", refForHosts(h, v1.ref));
  const out = await runHostsScript([...args, ...list], {
    env: { E2E_REGISTRY_USER: h.registry.user, E2E_REGISTRY_PASSWORD: h.registry.password },
    progress: opts.progress,
    timeoutMs: opts.timeoutMs,
  });
  const hosts = out
    .split("\n")
    .filter((l) => l.startsWith("host\t"))
    .map((l) => toFleetHost(l, h.ssh.user));
  const byName = new Map(hosts.map((x) => [x.name, x]));
  return list.map((n) => {
    const host = byName.get(n);
    if (!host) throw new Error(`ensureHosts: hosts.sh did not report host ${n}`);
    return host;
  });
}

/** Options of stopHosts. */
export interface StopHostsOptions {
  /**
   * Also delete their state (engine data and loaded images, /opt, home, logs), keeping only the
   * host keys: the next ensureHosts is cold (it loads the images again, ~25 s for three hosts).
   */
  wipe?: boolean;
  progress?: NodeJS.WritableStream | null;
}

/**
 * Stops hosts: their containers first (removed), then dockerd with its containerd, sshd,
 * anything else still running in them, their namespaces and veths and pid files. Their state
 * (images, /opt, home) stays unless `wipe`. With no hosts given it stops every host of the
 * fleet, the front balancers and the bridge with its iptables rules; give names when other
 * suites may be using other hosts. The bridge goes when its last host does.
 */
export async function stopHosts(
  hosts?: (string | FleetHost)[],
  opts: StopHostsOptions = {},
): Promise<void> {
  const names = hosts ? hostNames(hosts) : [];
  if (hosts && names.length === 0) return;
  await runHostsScript(["down", ...(opts.wipe ? ["--wipe"] : []), ...names], {
    progress: opts.progress,
  });
}

/**
 * Makes running hosts clean machines again without restarting them: no containers, volumes or
 * networks, empty `/opt`, a fresh home (the authorized key stays) and `/tmp`; with `images`
 * also no images but the loaded ones (the backend must be pulled again). Reconnects a host that
 * was cut off. Much faster than stopping and starting.
 */
export async function resetHosts(
  hosts: (string | FleetHost)[],
  opts: { images?: boolean; progress?: NodeJS.WritableStream | null } = {},
): Promise<void> {
  const names = hostNames(hosts);
  if (names.length === 0) return;
  await runHostsScript(["reset", ...(opts.images ? ["--images"] : []), ...names], {
    progress: opts.progress,
  });
}

/** The pid of the process that holds a running host's namespaces; throws when it is not up. */
export function hostHolderPid(host: string | FleetHost): number {
  const [name] = hostNames([host]);
  const file = path.join(FLEET_RUN_DIR, `${name}`, "holder.pid");
  let pid = 0;
  try {
    pid = Number(readFileSync(file, "utf8").trim());
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
    if (!cmdline.startsWith(`clkfleet-holder-${name}\0`)) pid = 0;
  } catch {
    pid = 0;
  }
  if (!pid) throw new Error(`fleet host ${name} is not running (no live holder in ${file})`);
  return pid;
}

/**
 * Runs a command as root inside a host (its network, mount and UTS namespaces, through
 * `nsenter`): what a root shell on that machine would run. It sees the host's /opt, /tmp and
 * /run (so `docker` is the host's engine), not this side's.
 */
export function runOnHost(
  host: string | FleetHost,
  cmd: string,
  args: string[] = [],
  opts: RunLocalOptions = {},
): Promise<CommandResult> {
  const pid = hostHolderPid(host);
  return runLocal("nsenter", ["-t", String(pid), "-n", "-m", "-u", "--", cmd, ...args], opts);
}

/** Runs the docker CLI against a host's engine from this side (`docker -H <its socket> ...`). */
export function dockerOnHost(
  host: FleetHost,
  args: string[],
  opts: RunLocalOptions = {},
): Promise<CommandResult> {
  return runLocal("docker", ["-H", host.dockerHost, ...args], opts);
}

/**
 * Cuts a host off the network, or connects it again: the root-side end of its veth goes down
 * (or up). Nothing reaches it and it reaches nothing, without any refusal: connections time out,
 * established ones hang, as when a machine drops off the network. Its processes keep running.
 */
export async function setHostReachable(host: FleetHost, reachable: boolean): Promise<void> {
  const r = await runLocal("ip", ["link", "set", host.veth, reachable ? "up" : "down"]);
  if (r.code !== 0) {
    throw new Error(`setHostReachable ${host.name}: ip link set ${host.veth}: ${r.stderr.trim()}`);
  }
}

/** Options of startFrontBalancer. */
export interface FrontBalancerOptions {
  /** `address:port` of each app host's published port, e.g. `10.231.0.11:8080`. */
  upstreams: string[];
  /** Listen on 127.0.0.1:`port`; default a free one. */
  port?: number;
  /** Time to open a connection to an upstream before trying the next; default 500 ms. */
  connectTimeoutMs?: number;
  /**
   * Time to wait for an upstream's answer (between two reads) before trying the next; default
   * 3000 ms. It bounds the wait on a keep-alive connection to a host that was cut off: below the
   * load generator's 5 s request timeout, such requests are slow but succeed.
   */
  readTimeoutMs?: number;
  /** After a failed attempt, an upstream is left out this long; default 5 s. */
  failTimeoutS?: number;
  /** nginx's access log to the container's stdout (`logs()`); default off. */
  accessLog?: boolean;
  /** The nginx image (run in the main engine); default the harness's proxy image. */
  image?: string;
}

/** A running front balancer. */
export interface FrontBalancer {
  /** `http://127.0.0.1:<port>` */
  url: string;
  port: number;
  /** Its container in the main engine. */
  container: string;
  /** Replaces the upstreams (checked with `nginx -t`, then a graceful `nginx -s reload`). */
  setUpstreams(upstreams: string[]): Promise<void>;
  /** The container's output (nginx's error log, and the access log when on). */
  logs(): Promise<string>;
  stop(): Promise<void>;
}

const UPSTREAM_RE = /^[A-Za-z0-9.-]+:\d{1,5}$/;

function frontConfig(port: number, upstreams: string[], o: FrontBalancerOptions): string {
  if (upstreams.length === 0) throw new Error("startFrontBalancer: no upstreams");
  for (const u of upstreams) {
    if (!UPSTREAM_RE.test(u)) throw new Error(`startFrontBalancer: bad upstream ${u}`);
  }
  const fail = o.failTimeoutS ?? 5;
  const servers = upstreams
    .map((u) => `  server ${u} max_fails=1 fail_timeout=${fail}s;`)
    .join("\n");
  return `# clicky-e2e front balancer (test/harness/hosts.ts)
upstream clicky_e2e_front {
${servers}
  keepalive 32;
  keepalive_timeout 30s;
}
server {
  listen 127.0.0.1:${port};
  ${o.accessLog ? "" : "access_log off;"}
  location / {
    proxy_pass http://clicky_e2e_front;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host $host;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    proxy_connect_timeout ${o.connectTimeoutMs ?? 500}ms;
    proxy_send_timeout ${o.readTimeoutMs ?? 3000}ms;
    proxy_read_timeout ${o.readTimeoutMs ?? 3000}ms;
    proxy_next_upstream error timeout http_502 http_503 non_idempotent;
    proxy_next_upstream_tries 0;
    add_header X-Upstream $upstream_addr always;
  }
}
`;
}

function tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: "127.0.0.1", port });
    s.setTimeout(1000);
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("timeout", () => {
      s.destroy();
      resolve(false);
    });
    s.once("error", () => resolve(false));
  });
}

/**
 * Starts the load balancer in front of the app hosts, on the test side: nginx (the harness's
 * proxy image, nginx 1.22) in the main engine with `--network host`, listening on
 * 127.0.0.1:<port>, round-robin over `upstreams` with keep-alive connections to them. A failed
 * attempt (connection error, timeout, 502, 503; for any method) is retried on the next upstream
 * and the failed one is left out for `failTimeoutS`, so a host that goes away does not fail
 * requests. Each answer says which upstream(s) it came from in `X-Upstream`.
 */
export async function startFrontBalancer(opts: FrontBalancerOptions): Promise<FrontBalancer> {
  const port = opts.port ?? (await freePort());
  const dir = mkdtempSync(path.join(os.tmpdir(), "clicky-e2e-front-"));
  const file = path.join(dir, "front.conf");
  writeFileSync(file, frontConfig(port, opts.upstreams, opts));
  const container = `clicky-e2e-front-${port}`;
  const image = opts.image ?? "clicky-e2e/proxy:1";
  await runLocal("docker", ["rm", "-f", container]);
  const run = await runLocal("docker", [
    "run",
    "-d",
    "--name",
    container,
    "--label",
    "clicky-e2e.front=1",
    "--network",
    "host",
    "-v",
    `${dir}:/etc/nginx/conf.d:ro`,
    image,
  ]);
  const cleanup = async () => {
    await runLocal("docker", ["rm", "-f", container]);
    rmSync(dir, { recursive: true, force: true });
  };
  if (run.code !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`startFrontBalancer: docker run ${image}: ${run.stderr.trim()}`);
  }
  const logs = async () => {
    const r = await runLocal("docker", ["logs", container]);
    return r.stdout + r.stderr;
  };
  const deadline = Date.now() + 15_000;
  while (!(await tcpOpen(port))) {
    const state = await runLocal("docker", ["inspect", "-f", "{{.State.Running}}", container]);
    if (state.stdout.trim() !== "true" || Date.now() > deadline) {
      const text = await logs();
      await cleanup();
      throw new Error(`startFrontBalancer: nginx did not listen on 127.0.0.1:${port}:\n${text}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    container,
    logs,
    async setUpstreams(upstreams: string[]) {
      const before = readFileSync(file, "utf8");
      writeFileSync(file, frontConfig(port, upstreams, opts));
      const test = await runLocal("docker", ["exec", container, "nginx", "-t"]);
      if (test.code !== 0) {
        writeFileSync(file, before);
        throw new Error(`setUpstreams: nginx -t: ${test.stderr.trim()}`);
      }
      const reload = await runLocal("docker", ["exec", container, "nginx", "-s", "reload"]);
      if (reload.code !== 0) throw new Error(`setUpstreams: nginx -s reload: ${reload.stderr}`);
    },
    stop: cleanup,
  };
}
