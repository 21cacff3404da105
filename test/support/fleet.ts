import { spawn } from "node:child_process";
import {
  type FleetHost,
  type Harness,
  harnessForHost,
  prepareAndCopy,
  REPO_ROOT,
  registryForHosts,
} from "../harness";
import { e2eHostSettings, e2eSecrets } from "./e2e-config";
import { renderFleet } from "./render";

/** Where the fleet e2e and bench deploy on each host, and their compose project. */
export const FLEET_APP_DIR = "/opt/clicky-fleet";
export const FLEET_PROJECT = "clickyfleet";
/** The port each app host's proxy publishes (on all of its addresses). */
export const FLEET_PROXY_PORT = 8080;

/**
 * The `deploy` section of a fleet on harness hosts: `apps` then `db` (the accessories host, at
 * its own address), the backend `tag` from the registry the hosts pull from, short timings.
 */
export function fleetDeployConfig(
  h: Harness,
  fleet: { readonly apps: readonly FleetHost[]; readonly db?: FleetHost },
  tag: string,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  const t = h.images.backend.tags[tag];
  if (!t) throw new Error(`the harness has no backend tag ${tag}`);
  const { db } = fleet;
  return {
    appDir: FLEET_APP_DIR,
    composeProject: FLEET_PROJECT,
    compose: "v2",
    hosts: [...fleet.apps, ...(db ? [db] : [])].map((host) => ({
      name: host.name,
      host: host.address,
      port: host.sshPort,
      user: host.user,
      hostKey: host.hostPublicKey,
    })),
    // Without `db`: an external database (the secrets databaseUrl and redisUrl).
    accessories: db ? { host: db.name, privateAddress: db.address } : { external: true },
    image: { repository: `${registryForHosts(h)}/clicky/backend`, tag, digest: t.digest },
    proxy: { bindAddress: "0.0.0.0", port: FLEET_PROXY_PORT },
    ...e2eHostSettings(h, 30),
    app: { env: { APP_ENV: "e2e-fleet" } },
    ...extra,
  };
}

/** One rollout as it ran: exit code, output, wall time, and each phase's start. */
export interface FleetRolloutRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly seconds: number;
  /** `[host, phase, seconds into the rollout]`, from the rollout's own lines. */
  readonly phases: readonly [string, string, number][];
  /** Each host's step timings line (`lock 0.0 s, preflight 1.2 s, ...`). */
  readonly steps: readonly [string, string][];
}

/**
 * One `pulumi up` of a fleet, as Pulumi runs it: each host's prepare command and copies over
 * SSH, then the rollout command (`node --import tsx src/deploy/fleet/cli.ts` from the project
 * directory) with the plan in its environment and the secrets on stdin. `during` runs beside
 * the rollout with its output so far. Copies go to `hosts` by name.
 */
export async function runFleetRollout(
  h: Harness,
  hosts: readonly FleetHost[],
  deploy: Record<string, unknown>,
  during?: (output: () => string) => Promise<void>,
  secrets: Readonly<Record<string, string>> = {},
): Promise<FleetRolloutRun> {
  const rendered = await renderFleet({ deploy, secrets: { ...e2eSecrets(h), ...secrets } });
  for (const host of rendered.hosts) {
    const target = hosts.find((x) => `deploy-${x.name}` === host.name);
    if (!target) throw new Error(`no harness host for ${host.name}`);
    await prepareAndCopy(harnessForHost(h, target), host);
  }
  const [cmd, ...args] = rendered.rollout.create.split(" ");
  const t0 = Date.now();
  const child = spawn(cmd ?? "node", args, {
    cwd: REPO_ROOT,
    env: { ...process.env, ...rendered.rollout.environment },
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (b: Buffer) => {
    stdout += b.toString();
  });
  child.stderr.on("data", (b: Buffer) => {
    stderr += b.toString();
  });
  child.stdin.end(rendered.rollout.stdin);
  const exited = new Promise<number | null>((resolve) => child.on("close", resolve));
  await during?.(() => stdout + stderr);
  const code = await exited;
  const seconds = (Date.now() - t0) / 1000;
  const phases: [string, string, number][] = [];
  const steps: [string, string][] = [];
  for (const line of `${stdout}\n${stderr}`.split("\n")) {
    const phase = /^\[(\w+)\] (\w+): starting \(([\d.]+) s/.exec(line);
    if (phase?.[1] && phase[2] && phase[3]) phases.push([phase[1], phase[2], Number(phase[3])]);
    const step = /^\[(\w+)\] .*; timings: (.*)$/.exec(line);
    if (step?.[1] && step[2]) steps.push([step[1], step[2]]);
  }
  return { code, stdout, stderr, seconds, phases, steps };
}
