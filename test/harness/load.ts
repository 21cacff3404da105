/**
 * An open-loop HTTP load generator that counts every failure (the e2e zero-downtime checks
 * and the bench), and small HTTP helpers. Loopback targets only.
 */
import { readFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import { performance } from "node:perf_hooks";

export interface LoadOptions {
  /** http://127.0.0.1:PORT/path; only loopback targets are accepted. */
  url: string;
  /** Requests started per second (open loop: slow answers do not slow the rate). */
  ratePerSecond: number;
  /** Stop by itself after this long; default 60 s, at most 10 minutes. */
  durationMs?: number;
  /**
   * Reuse connections (HTTP keep-alive, as mobile apps and most HTTP libraries do); default
   * false (a new connection per request); "mixed": every other request each way.
   */
  keepAlive?: boolean | "mixed";
  /** A request with no complete answer after this long counts as an error; default 5 s. */
  requestTimeoutMs?: number;
  /** Never more than this many requests in flight; extra ticks are counted as skipped. */
  maxInFlight?: number;
  /** Keep at most this many failure records; default 200. */
  maxFailureRecords?: number;
  /** Keep every request's outcome in `samples` (for plots); default false. */
  recordSamples?: boolean;
}

/** One request's outcome, when `recordSamples` is on. */
export interface LoadSample {
  /** ms since the load started, when the request was sent */
  atMs: number;
  /** ms until the answer or the error */
  latencyMs: number;
  /** the HTTP status, or 0 for a connection error or timeout */
  status: number;
}

/** One failed request, for the report. */
export interface LoadFailure {
  /** ms since the load started */
  atMs: number;
  kind: "status" | "error";
  /** the HTTP status or the error message */
  detail: string;
}

/** Latency summary in milliseconds, of the requests that got an answer. */
export interface LatencySummary {
  count: number;
  min: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

/** Counts of a load run. `sent === ok2xx + non2xxTotal + errorsTotal + inFlight`. */
export interface LoadResult {
  sent: number;
  ok2xx: number;
  non2xx: Record<string, number>;
  non2xxTotal: number;
  errors: Record<string, number>;
  errorsTotal: number;
  /** Ticks not sent because maxInFlight was reached. */
  skipped: number;
  /** Requests still unanswered when the result was taken (0 after stop()). */
  inFlight: number;
  /** Answers by X-App-Version header (`-` when absent). */
  versions: Record<string, number>;
  latencyMs: LatencySummary;
  /**
   * Latency of every request sent, a failed one (an error, or an answer that is not 2xx)
   * counted at the request timeout, as a client that retries would wait at least that long.
   */
  latencyAllMs: LatencySummary;
  failures: LoadFailure[];
  durationMs: number;
  /** Every request's outcome in the order they ended, when `recordSamples` was on. */
  samples: LoadSample[];
}

/** A running load. */
export interface LoadHandle {
  /** Stops sending, waits for requests in flight, and resolves with the final counts. */
  stop(): Promise<LoadResult>;
  /** Resolves with the final counts once the load ended (by duration or stop()). */
  done: Promise<LoadResult>;
  /** Counts so far. */
  snapshot(): LoadResult;
}

function isLoopback(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, "");
  return h === "localhost" || h === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

function summarize(lat: number[]): LatencySummary {
  if (lat.length === 0) return { count: 0, min: 0, p50: 0, p90: 0, p99: 0, max: 0, mean: 0 };
  const s = [...lat].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? 0;
  const round = (x: number) => Math.round(x * 100) / 100;
  return {
    count: s.length,
    min: round(s[0] ?? 0),
    p50: round(at(0.5)),
    p90: round(at(0.9)),
    p99: round(at(0.99)),
    max: round(s[s.length - 1] ?? 0),
    mean: round(s.reduce((a, b) => a + b, 0) / s.length),
  };
}

/**
 * The latency summary of every request sent, where a failed request (an error, or an answer
 * that is not 2xx) counts at `timeoutMs` whatever it took: a refused connection answered in
 * 1 ms is no fast answer. E.g. 98 answers at 2 ms and 2 failures at a 5000 ms timeout give a
 * p50 of 2 ms and a p99 and max of 5000 ms.
 */
export function summarizeEveryRequest(
  requests: readonly { readonly latencyMs: number; readonly ok: boolean }[],
  timeoutMs: number,
): LatencySummary {
  return summarize(requests.map((r) => (r.ok ? r.latencyMs : timeoutMs)));
}

/**
 * Sends a steady stream of HTTP GETs to a loopback URL while a deploy runs, so a test can
 * prove that no request was dropped: every request ends up counted as 2xx, non-2xx (by
 * status) or a connection error (by message). Bounded in time, stoppable, loopback only.
 */
export function startLoad(opts: LoadOptions): LoadHandle {
  const url = new URL(opts.url);
  if (url.protocol !== "http:") throw new Error(`startLoad: only http:// URLs (${opts.url})`);
  if (!isLoopback(url.hostname)) {
    throw new Error(`startLoad: only loopback targets are allowed, not ${url.hostname}`);
  }
  if (!(opts.ratePerSecond > 0 && opts.ratePerSecond <= 2000)) {
    throw new Error("startLoad: ratePerSecond must be in (0, 2000]");
  }
  const durationMs = Math.min(opts.durationMs ?? 60_000, 10 * 60_000);
  const requestTimeoutMs = opts.requestTimeoutMs ?? 5000;
  const maxInFlight = opts.maxInFlight ?? 256;
  const maxFailures = opts.maxFailureRecords ?? 200;
  const keepAlive = opts.keepAlive ?? false;
  const reused = new http.Agent({ keepAlive: true, maxSockets: maxInFlight });
  const fresh = new http.Agent({ keepAlive: false, maxSockets: maxInFlight });
  const reuses = (n: number) => keepAlive === true || (keepAlive === "mixed" && n % 2 === 1);

  const start = performance.now();
  let sent = 0;
  let ok2xx = 0;
  let skipped = 0;
  let inFlight = 0;
  let non2xxTotal = 0;
  let errorsTotal = 0;
  let stoppedAt: number | undefined;
  const non2xx: Record<string, number> = {};
  const errors: Record<string, number> = {};
  const versions: Record<string, number> = {};
  const latencies: number[] = [];
  /** Every request that ended, and whether it succeeded (latencyAllMs). */
  const everyRequest: { latencyMs: number; ok: boolean }[] = [];
  const failures: LoadFailure[] = [];
  const samples: LoadSample[] = [];
  const sample = (t0: number, status: number) => {
    if (opts.recordSamples) {
      const now = performance.now();
      samples.push({
        atMs: Math.round((t0 - start) * 10) / 10,
        latencyMs: Math.round((now - t0) * 100) / 100,
        status,
      });
    }
  };
  let idleWaiters: (() => void)[] = [];

  const fail = (kind: LoadFailure["kind"], detail: string) => {
    if (failures.length < maxFailures) {
      failures.push({ atMs: Math.round(performance.now() - start), kind, detail });
    }
  };
  const settle = () => {
    inFlight--;
    if (inFlight === 0 && stoppedAt !== undefined) {
      for (const w of idleWaiters) w();
      idleWaiters = [];
    }
  };

  const fire = () => {
    sent++;
    inFlight++;
    const agent = reuses(sent) ? reused : fresh;
    const t0 = performance.now();
    let finished = false;
    const end = (fn: () => void) => {
      if (finished) return;
      finished = true;
      fn();
      settle();
    };
    const req = http.get(url, { agent, headers: { "user-agent": "clicky-e2e-load" } }, (res) => {
      res.on("data", () => {});
      res.on("end", () =>
        end(() => {
          latencies.push(performance.now() - t0);
          const status = res.statusCode ?? 0;
          sample(t0, status);
          const v = res.headers["x-app-version"];
          const version = typeof v === "string" ? v : "-";
          versions[version] = (versions[version] ?? 0) + 1;
          if (status >= 200 && status < 300) {
            ok2xx++;
            everyRequest.push({ latencyMs: performance.now() - t0, ok: true });
          } else {
            everyRequest.push({ latencyMs: performance.now() - t0, ok: false });
            non2xxTotal++;
            non2xx[String(status)] = (non2xx[String(status)] ?? 0) + 1;
            fail("status", String(status));
          }
        }),
      );
      res.on("error", (err) => onError(err));
    });
    const onError = (err: Error & { code?: string }) =>
      end(() => {
        const msg = err.code ? `${err.code}: ${err.message}` : err.message;
        sample(t0, 0);
        everyRequest.push({ latencyMs: performance.now() - t0, ok: false });
        errorsTotal++;
        errors[msg] = (errors[msg] ?? 0) + 1;
        fail("error", req.reusedSocket ? `${msg} (on a reused connection)` : msg);
      });
    req.setTimeout(requestTimeoutMs, () => {
      req.destroy(
        Object.assign(new Error(`no answer in ${requestTimeoutMs} ms`), { code: "TIMEOUT" }),
      );
    });
    req.on("error", onError);
  };

  const interval = 1000 / opts.ratePerSecond;
  let due = 0;
  const tick = setInterval(
    () => {
      const elapsed = performance.now() - start;
      if (elapsed >= durationMs) {
        void stop();
        return;
      }
      const target = Math.floor(elapsed / interval) + 1;
      while (due < target) {
        due++;
        if (inFlight >= maxInFlight) skipped++;
        else fire();
      }
    },
    Math.max(1, Math.min(10, Math.floor(interval))),
  );

  const snapshot = (): LoadResult => ({
    sent,
    ok2xx,
    non2xx: { ...non2xx },
    non2xxTotal,
    errors: { ...errors },
    errorsTotal,
    skipped,
    inFlight,
    versions: { ...versions },
    latencyMs: summarize(latencies),
    latencyAllMs: summarizeEveryRequest(everyRequest, requestTimeoutMs),
    failures: [...failures],
    durationMs: Math.round((stoppedAt ?? performance.now()) - start),
    samples: opts.recordSamples ? [...samples] : [],
  });

  let resolveDone: (r: LoadResult) => void = () => {};
  const done = new Promise<LoadResult>((r) => {
    resolveDone = r;
  });
  let stopping: Promise<LoadResult> | undefined;
  const stop = (): Promise<LoadResult> => {
    if (!stopping) {
      stopping = (async () => {
        clearInterval(tick);
        stoppedAt = performance.now();
        if (inFlight > 0) await new Promise<void>((r) => idleWaiters.push(r));
        reused.destroy();
        fresh.destroy();
        const result = snapshot();
        resolveDone(result);
        return result;
      })();
    }
    return stopping;
  };
  return { stop, done, snapshot };
}

/** An HTTP answer, body as text. */
export interface HttpAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** Options of a writer: acknowledged writes at a fixed rate, each one checked afterwards. */
export interface WriterOptions {
  /** http://127.0.0.1:PORT/items; only loopback targets are accepted. */
  url: string;
  ratePerSecond: number;
  /** Each write's name is `<prefix>-<n>`, so a test finds them in the database. */
  prefix: string;
  /** Stop by itself after this long; default 60 s, at most 10 minutes. */
  durationMs?: number;
  /** A write with no answer after this long counts as failed; default 5 s. */
  requestTimeoutMs?: number;
}

/** What a writer saw: which writes the app acknowledged (201), and every one that failed. */
export interface WriterResult {
  sent: number;
  /** Names of the writes answered 201, which must all be in the database afterwards. */
  acknowledged: string[];
  failures: LoadFailure[];
  /** The slowest acknowledged write, ms. */
  maxLatencyMs: number;
  /** The ten slowest writes: when each was sent (ms since the writer started) and its latency. */
  slowest: { atMs: number; latencyMs: number }[];
}

/**
 * An open-loop writer: `POST {"name": "<prefix>-<n>"}` at a fixed rate on reused keep-alive
 * connections, as an app's clients write. A write counts as acknowledged only on a 201.
 */
export function startWriter(opts: WriterOptions): { stop(): Promise<WriterResult> } {
  const url = new URL(opts.url);
  if (!isLoopback(url.hostname)) {
    throw new Error(`startWriter: only loopback targets are allowed, not ${url.hostname}`);
  }
  const timeoutMs = opts.requestTimeoutMs ?? 5000;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const start = performance.now();
  const acknowledged: string[] = [];
  const failures: LoadFailure[] = [];
  let sent = 0;
  let inFlight = 0;
  let maxLatencyMs = 0;
  const latencies: { atMs: number; latencyMs: number }[] = [];
  let idle: (() => void) | undefined;
  const settle = () => {
    inFlight--;
    if (inFlight === 0) idle?.();
  };
  const write = () => {
    sent++;
    inFlight++;
    const name = `${opts.prefix}-${sent}`;
    const t0 = performance.now();
    const body = JSON.stringify({ name });
    let finished = false;
    const end = (failure?: string) => {
      if (finished) return;
      finished = true;
      latencies.push({
        atMs: Math.round(t0 - start),
        latencyMs: Math.round(performance.now() - t0),
      });
      if (failure === undefined) {
        acknowledged.push(name);
        maxLatencyMs = Math.max(maxLatencyMs, performance.now() - t0);
      } else {
        failures.push({
          atMs: Math.round(t0 - start),
          kind: failure.startsWith("status") ? "status" : "error",
          detail: `${name}: ${failure}`,
        });
      }
      settle();
    };
    const req = http.request(
      url,
      {
        method: "POST",
        agent,
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) },
      },
      (res) => {
        // The body of a refusal says why (the app's error), for whoever reads the failure.
        let said = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          if (said.length < 300) said += chunk;
        });
        res.on("end", () =>
          end(
            res.statusCode === 201
              ? undefined
              : `status ${res.statusCode}: ${said.slice(0, 300).trim()}`,
          ),
        );
        res.on("error", (err) => end(err.message));
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer in ${timeoutMs} ms`)));
    req.on("error", (err: Error & { code?: string }) =>
      end(err.code ? `${err.code}: ${err.message}` : err.message),
    );
    req.end(body);
  };
  const tick = setInterval(write, 1000 / opts.ratePerSecond);
  const limit = setTimeout(
    () => clearInterval(tick),
    Math.min(opts.durationMs ?? 60_000, 10 * 60_000),
  );
  return {
    async stop() {
      clearInterval(tick);
      clearTimeout(limit);
      if (inFlight > 0) await new Promise<void>((r) => (idle = r));
      agent.destroy();
      const slowest = [...latencies].sort((a, b) => b.latencyMs - a.latencyMs).slice(0, 10);
      return { sent, acknowledged, failures, maxLatencyMs: Math.round(maxLatencyMs), slowest };
    },
  };
}

/** One request to a loopback URL, without keep-alive; rejects on connection errors and timeout. */
function oneRequest(
  method: "GET" | "POST",
  url: string,
  timeoutMs: number,
  body?: Buffer,
): Promise<HttpAnswer> {
  const u = new URL(url);
  if (!isLoopback(u.hostname))
    throw new Error(`${method}: only loopback targets, not ${u.hostname}`);
  return new Promise((resolve, reject) => {
    const req = http.request(
      u,
      {
        method,
        agent: false,
        ...(body
          ? { headers: { "Content-Type": "application/json", "Content-Length": body.length } }
          : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (d: Buffer) => chunks.push(d));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString("utf8"),
          }),
        );
        res.on("error", reject);
      },
    );
    req.setTimeout(timeoutMs, () =>
      req.destroy(new Error(`${method} ${url}: no answer in ${timeoutMs} ms`)),
    );
    req.on("error", reject);
    req.end(body);
  });
}

/**
 * One GET to a loopback URL, without keep-alive; rejects on connection errors and after
 * `timeoutMs` (default 5 s). For assertions on what a deployed service answers.
 */
export function httpGet(url: string, timeoutMs = 5000): Promise<HttpAnswer> {
  return oneRequest("GET", url, timeoutMs);
}

/**
 * One POST of a JSON body to a loopback URL, without keep-alive; rejects like `httpGet`. For a
 * write through a deployed service (`POST /items`).
 */
export function httpPost(url: string, json: unknown, timeoutMs = 5000): Promise<HttpAnswer> {
  return oneRequest("POST", url, timeoutMs, Buffer.from(JSON.stringify(json)));
}

/**
 * Polls a loopback URL until it answers `status` (default 200), for services that take a
 * moment to start; rejects after `timeoutMs` (default 60 s) with the last answer or error.
 */
export async function waitForHttp(
  url: string,
  opts: { status?: number; timeoutMs?: number; intervalMs?: number } = {},
): Promise<HttpAnswer> {
  const want = opts.status ?? 200;
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  let last = "no attempt";
  while (Date.now() < deadline) {
    try {
      const a = await httpGet(url, 2000);
      if (a.status === want) return a;
      last = `HTTP ${a.status}: ${a.body.slice(0, 200)}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 250));
  }
  throw new Error(`waitForHttp ${url}: no ${want} in time (last: ${last})`);
}

/** Where Linux takes the local ports of outgoing connections (`ip_local_port_range`). */
export function ephemeralPortRange(
  text = readProcFile("/proc/sys/net/ipv4/ip_local_port_range"),
): [number, number] {
  const [lo, hi] = (text ?? "").trim().split(/\s+/).map(Number);
  if (lo && hi && Number.isInteger(lo) && Number.isInteger(hi) && lo <= hi) return [lo, hi];
  return [32768, 60999];
}

function readProcFile(file: string): string | undefined {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
}

/**
 * The ports `freePort` picks from: below the kernel's range for outgoing connections (the
 * harness's registry and sshd sit at 20000 to 28000), or above it when that range starts too
 * low to leave room.
 */
export function freePortRange(
  ephemeral: [number, number] = ephemeralPortRange(),
): [number, number] {
  const [lo, hi] = ephemeral;
  if (lo - 1 >= 11000) return [10000, Math.min(lo - 1, 19999)];
  if (hi + 1000 <= 65535) return [hi + 1, 65535];
  throw new Error(`freePort: the ephemeral port range ${lo}-${hi} leaves no room for test ports`);
}

const handedOut = new Set<number>();

/**
 * A TCP port on 127.0.0.1 that nothing listens on, so that parallel tests (and other users of
 * the same Docker engine) do not fight over fixed published ports. It is never one of the
 * kernel's ports for outgoing connections: a port from that range may become the local end of
 * any connection (the load generator's, SSH's, the engine's pulls) between being picked here
 * and being published, and the engine then fails to publish it ("address already in use").
 * A port handed out once in this process is not handed out again.
 */
export async function freePort(): Promise<number> {
  const [lo, hi] = freePortRange();
  for (let attempt = 0; attempt < 500; attempt++) {
    const port = lo + Math.floor(Math.random() * (hi - lo + 1));
    if (handedOut.has(port) || !(await canListen(port))) continue;
    handedOut.add(port);
    return port;
  }
  throw new Error(`freePort: no free port in ${lo}-${hi} after 500 tries`);
}

/** Whether a listener can bind 127.0.0.1:`port` now (it is closed again at once). */
export function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once("error", () => resolve(false));
    srv.listen({ port, host: "127.0.0.1", exclusive: true }, () => srv.close(() => resolve(true)));
  });
}
