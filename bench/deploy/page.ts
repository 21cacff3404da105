/**
 * docs/benchmarks.md, from a bench record alone: the machine, every procedure against the floor
 * of the same run, the cost curve, the targets, the steps, every run, and how it is measured.
 * Everything it says of a run comes from the record.
 */
import { FLOOR_PROBE_INTERVAL_SECONDS } from "./floor";
import { BASELINE_POLL } from "./baseline";
import { median } from "./cost";
import type { BenchRecord, ScenarioId } from "./record";
import {
  costTable,
  failureKinds,
  writeFailureKinds,
  floorRunsTable,
  floorTable,
  fmt,
  runsTable,
  SCENARIOS,
  stepsTable,
} from "./report";
import { targets } from "./targets";

export interface PageFiles {
  /** The record the page is rendered from, as the repository names it. */
  readonly record: string;
  /** The latency chart's file name, next to the page. */
  readonly chart: string;
  /** The cost chart's file name, next to the page. */
  readonly costChart: string;
}

const STATUS = { met: "**met**", missed: "**missed**", "not measured": "**not measured**" };

/** The page's markdown. */
export function renderBenchmarkPage(record: BenchRecord, files: PageFiles): string {
  const { settings, machine, software } = record;
  const ms = record.measurements;
  const of = (id: ScenarioId) => ms.filter((m) => m.scenario === id);
  const started = new Date(record.startedAt);
  const finished = new Date(record.finishedAt);
  const left = record.backupsLeft;
  const gib = (bytes: number) => fmt.gib(bytes / 2 ** 30);
  const sizes = record.sizes
    .map(
      (s) =>
        `${gib(s.bytes.ours)} (ours), ${gib(s.bytes.baseline)} (spec procedure)${s.bytes.peer === null ? "" : `, ${gib(s.bytes.peer)} (peer)`}`,
    )
    .join("; ");
  const larger = settings.imageMb.filter((mb) => mb > 0);
  const seen = SCENARIOS.filter(({ id }) => of(id).length > 0);
  const clients = seen
    .map(({ id, title }) => {
      const kinds = [...failureKinds(of(id)), ...writeFailureKinds(of(id))];
      return `- ${title}: ${kinds.length ? kinds.join(", ") : "no failed request or write"}`;
    })
    .join("\n");
  const baselineSteps = stepsTable(record, "baseline");
  const noSleepSteps = stepsTable(record, "baselineNoSleep");
  const failedSteps = stepsTable(record, "failedHealth", "v3");
  return `# Deploy benchmark: our deploy against the floor of an upgrade

Rendered from \`${files.record}\`, the record of a run of \`npm run bench:deploy\`
(\`bench/deploy/main.ts\`), by \`npm run bench:report -- ${files.record}\`. Do not edit by hand:
run the bench again, or render the page again from a record.

- **Command:** \`npm run bench:deploy\` (${settings.runs} runs of each procedure per size, ${settings.ratePerSecond} reads/s and ${settings.writesPerSecond} acknowledged writes/s during each)
- **Date:** ${started.toISOString().slice(0, 16).replace("T", " ")} to ${finished.toISOString().slice(11, 16)} UTC
- **Machine:** ${machine.cores} cores (${machine.cpuModel}), ${(machine.memoryBytes / 2 ** 30).toFixed(0)} GiB memory, ${machine.kernel}; load average ${machine.loadAverage.toFixed(2)} at the start
- **Software:** Docker Engine ${software.docker}, docker-compose ${software.composeV1 ?? "absent"} (compose v2 ${software.composeV2 ?? "absent"}), PostgreSQL ${software.postgres} (\`${software.postgresImage}\`), ${software.nginx} (\`${software.proxyImage}\`), Node ${machine.node}
- **Databases** (\`pg_database_size\` at each size step, grown by the bench): ${sizes}
- **New image:** v2 of the stand-in app${larger.length ? `, and v2 with ${larger.map((mb) => `${mb} MB`).join(", ")} of incompressible data in an extra layer (on the smallest database only)` : ""}
- **Peer:** ${settings.peer ? "docker-rollout, on a compose project of its own" : "not run"}

## Every procedure against the floor

The floor is what no upgrade on this host can skip, measured in the same run (below, "How it
is measured"). Medians of ${settings.runs} runs; **× floor** is the procedure's median wall time
divided by the floor's median at the same database size. Latencies are over every request sent,
a failed one counted at the ${settings.requestTimeoutMs / 1000} s request timeout; failed requests and writes are
totals over the runs.

${floorTable(record)}

![Latency of every read during an upgrade, one panel per procedure](${files.chart})

Each dot is one request (log scale; red ticks above a plot: failed requests, a non-2xx answer
or no answer). The run shown of each is the one with the median wall time, on the largest
database.

## The cost curve

Median wall time per database size and image size, in brackets its ratio to the floor of the
same size; the last row is the slope of a least-squares line of the median wall time against
the database's measured size: what each added GiB costs.

${costTable(record)}

![Wall time of an upgrade against the database's size](${files.costChart})

## Targets

${targets(record)
  .map((t) => `- ${STATUS[t.status]}: ${t.name} (${t.detail})`)
  .join("\n")}

## Step by step (median seconds)

Ours (its script's own \`timings:\` line), the upgrade from v1 to v2:

${stepsTable(record, "deploy")}

\`pull\` runs in the background during \`backup\`; its column is the time left to wait for it
afterwards. The dump runs in the background too: \`backup\` is its start, \`backup_wait\` the
time the deploy then waited for it. With a migration pending that wait comes before the
migration and is counted inside \`migrate\` as well; with none, inside \`watch\`.
${failedSteps ? `\nOurs, the deploy of v3, which never gets healthy (the timings its failure report gives: the steps that ended, the one that failed, then \`undo\`):\n\n${failedSteps}\n` : ""}${baselineSteps ? `\nThe spec's procedure (its marks; \`health\` is the \`sleep 10\` and the \`curl\`):\n\n${baselineSteps}\n` : ""}${noSleepSteps ? `\nThe spec's procedure, health polled (\`health\` is the poll):\n\n${noSleepSteps}\n` : ""}
## What the clients saw

Failed requests by kind, over all sizes and runs:

${clients}

The spec's \`docker compose up -d\` stops the old \`fastapi\` container and starts the new one
in its place, so for the seconds in between nothing listens on the port. Its backups stay in
the working directory, never pruned: after this bench it holds ${left.baseline.dumps} plain dumps, ${(left.baseline.bytes / 1e9).toFixed(1)} GB in all
(ours keeps the newest \`backup.keep\`: ${left.ours.dumps} dumps, ${(left.ours.bytes / 1e9).toFixed(1)} GB). nginx logged ${record.dnsTimeouts} lookups of
a slot's name that Docker's DNS did not answer within its 1 s \`resolver_timeout\`; such a
request goes through the fallback group (the slot by address) instead of failing with a 502.

${probeSection(record)}## Every run

${runsTable(record)}

The floor, every run:

${floorRunsTable(record)}

## How it is measured

- **The floor** (\`bench/deploy/floor.ts\`), on our project while it serves v1, under the same load as the deploys (reads and writes),
  timed on the host by the script itself (the SSH connection is not counted): (1) \`docker pull\`
  of the new image by digest, already on the host for v2 (a larger image is removed from the
  engine first, so its pull is real); (2) \`docker run\` of the new image on the project's network
  with the serving slot's app env, until the first passing \`curl -fsS\` of \`/health\` on the
  container's address, probed every ${FLOOR_PROBE_INTERVAL_SECONDS} s; (3) one proxy switch as our deploy does it: the
  routing file that nginx reads per request replaced by one atomic rename (no reload), until the
  proxy's first answer from the new container (its slot header), probed back to back. Then the
  routing file is put back and the container removed. The floor is their sum; no backup, no
  migration, no check, no drain: it is not a safe deploy, only what any deploy must spend.
- **Ours** is the exact commands the program registers (rendered by running the program under
  Pulumi's mocks), in Pulumi's order: prepare, the copies, the deploy script with the secrets on
  stdin; its wall time covers all three. Its config is the defaults, except for what the harness
  dictates (host, directories, image names, the proxy's address) and \`deploy.health.timeoutSeconds\`
  = ${settings.healthTimeoutSeconds}, explicit. The failed-health deploy (v3 never gets healthy) is timed from start to exit.
  Between runs (not measured) ours goes back to schema 001 with the \`alembic downgrade\`
  runbook of docs/operations.md, so every upgrade runs the migration.
- **The spec's procedure** (\`bench/deploy/baseline.ts\`), for real, in the project's working
  directory: \`docker compose exec -T postgres pg_dump -U clicky clicky_db > backup_<time>.sql\`,
  \`docker compose pull\`, \`docker compose up -d --remove-orphans\`, \`sleep 10\`, \`curl -f\` once,
  on a compose project shaped like the spec's (one \`fastapi\` service published on the host,
  PostgreSQL, Redis, every image pulled from the registry). Its clients reach that port
  directly, as the spec's would: no proxy of ours in front of it. The spec's migration line is
  left out, as the issue lists the procedure; that makes it faster, not slower. "docker compose"
  is what the host has: here \`${software.composeCommand}\`.
- **The spec's procedure, health polled** is the fair variant: the same, with \`sleep 10\` and the
  one \`curl -f\` replaced by \`curl -fsS\` of the health path every ${BASELINE_POLL.intervalSeconds} s, up to ${BASELINE_POLL.limitSeconds} s, so that its wall
  time is not its fixed sleep.
- **The peer** is docker-rollout on a compose project of its own, with the same images, its
  clients on its own published port${settings.peer ? "" : " (not run here)"}.
- **The same load for all**: \`startLoad\` of the e2e harness, an open loop of \`GET /health\` at ${settings.ratePerSecond}/s
  (${settings.keepAlive === "mixed" ? "every other request on a reused keep-alive connection, the rest each on a new one" : "a new connection per request"}), and \`startWriter\`, \`POST /items\`
  at ${settings.writesPerSecond}/s on keep-alive connections, acknowledged only on a 201, both from ${settings.preRollMs / 1000} s before each
  deploy starts to ${settings.postRollMs / 1000} s after it ends, to the port the procedure's clients use. Afterwards every
  acknowledged write is looked up in that project's database (psql in its postgres container).
- **Latency over every request**: a failed request (no answer, or not 2xx) counts at the
  ${settings.requestTimeoutMs / 1000} s request timeout, whatever it took; the every-run table also has the p99 of the
  answered requests alone. **Skipped ticks** are requests the load did not send because 1024
  were already in flight.
- **Counters measured the same way for everyone**: connection errors and requests of 1 s or
  more, both as the load's client saw them. Kernel counters of the host are not compared: for
  ours they would miss the hop from nginx to the app.
- **Database sizes**: each database grows to each size in turn (\`bench_payload\` rows of 192
  characters of md5 hex, which compress about as real data does), smallest first, and every
  procedure runs at each. **Image sizes**: at the smallest database only, v2 with an extra layer
  from \`/dev/urandom\`, pushed to the harness registry and removed from the host's engine
  before each deploy, so the pull moves every byte of it.
- Numbers vary from machine to machine and run to run; ratios to the floor of the same run hold
  better than absolute values. Run it on a quiet machine: the deploys, the load generator and the
  databases share its cores.
`;
}

/** What the host probe adds to a preview, when the record measured it. */
function probeSection(record: BenchRecord): string {
  const p = record.probe;
  if (!p) return "";
  const off = median(p.previewWithoutProbeMs);
  const on = median(p.previewWithProbeMs);
  const floor = median(p.sshFloorMs);
  return `## The host probe's cost to a preview

Every \`pulumi preview\` and \`pulumi up\` reads each host once before planning
([Host drift](drift.md#host-drift-the-probe)). The program run as a preview runs it (under
Pulumi's mocks, so without the engine's own time), ${p.previewWithProbeMs.length} times each way, interleaved, against the
bench's deployed host:

| median of ${p.previewWithProbeMs.length} | milliseconds |
| --- | ---: |
| preview without the probe | ${off.toFixed(0)} |
| preview with the probe (one host) | ${on.toFixed(0)} |
| the probe's cost per host (difference) | ${(on - off).toFixed(0)} |
| floor: an SSH connection that runs \`true\` | ${floor.toFixed(0)} |

Hosts are read concurrently, one connection each, so a preview of several hosts costs about
the slowest host's probe, not the sum.

`;
}
