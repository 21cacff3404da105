import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import {
  accessoriesOf,
  type DeployConfig,
  type DeployHost,
  type HostAccessories,
} from "../../config/deploy";
import {
  type DeploySecrets,
  deployStdin,
  deployTriggers,
  hostConnection,
  layOutRelease,
} from "../component";
import { buildFleetRelease, contentHash, type FleetRole } from "../compose";
import { deployRunArgs, deployScriptPath } from "../run-command";
import { buildFleetScript, imageReference } from "../script";
import { PLAN_VARIABLE } from "./plan";
import type { FleetHostPlan, RolloutPlan } from "./rollout";

/** The command Pulumi runs for a rollout, from the project directory (`./cli.ts`). */
export const ROLLOUT_COMMAND = "node --import tsx src/deploy/fleet/cli.ts";

/** Where the app hosts reach PostgreSQL: the accessories host's private address. */
export function postgresServer(accessories: HostAccessories): string {
  const address = accessories.privateAddress.includes(":")
    ? `[${accessories.privateAddress}]`
    : accessories.privateAddress;
  return `${address}:${accessories.postgresPort}`;
}

/** One host of a fleet as laid out: its role, release, script and where the script lies. */
interface LaidOutHost {
  readonly host: DeployHost;
  readonly role: FleetRole;
  readonly release: string;
  readonly script: string;
  readonly scriptPath: string;
  readonly copies: pulumi.Resource[];
}

/**
 * The deploy of a fleet (`deploy.accessories`; docs/scaling.md): per host, the release files and
 * the deploy script of its role are copied (`deploy-<host>`, as for one host, without a run
 * command), then one rollout command (`deploy-rollout`, Pulumi's local command) runs the phases
 * over SSH in order (`./rollout.ts`): the database side once, each app host's switch in turn,
 * and the commit, or the revert of the hosts that switched when one fails.
 *
 * The rollout runs again when its triggers change: the image, any host's release or script, and
 * a secret hash of the env. It has no `delete`: destroying it never stops the app.
 */
export class FleetDeploy extends pulumi.ComponentResource {
  readonly rollout: command.local.Command;
  readonly image: string;
  /** Release id per host. */
  readonly releases: Readonly<Record<string, string>>;

  constructor(
    name: string,
    args: {
      readonly stack: string;
      readonly deploy: DeployConfig;
      readonly secrets: DeploySecrets;
    },
    opts?: pulumi.ComponentResourceOptions,
  ) {
    super("clicky:deploy:FleetDeploy", name, {}, opts);
    const { stack, deploy, secrets } = args;
    const accessories = accessoriesOf(deploy);
    if (!accessories) throw new Error("a fleet needs deploy.accessories");
    this.image = imageReference(deploy.image);
    const hosts: LaidOutHost[] = deploy.hosts.map((host) => {
      const role: FleetRole =
        accessories.kind === "host" && host.name === accessories.host ? "database" : "app";
      const release = buildFleetRelease(stack, deploy, accessories, role);
      const script = buildFleetScript({ stack, host, deploy, release }, role, accessories);
      const scriptPath = deployScriptPath(release.dir, script);
      const parent = new pulumi.ComponentResource(
        "clicky:deploy:FleetHost",
        `deploy-${host.name}`,
        {},
        { parent: this },
      );
      const laid = layOutRelease(parent, `deploy-${host.name}`, {
        connection: hostConnection(host, secrets.sshPrivateKey),
        appDir: deploy.appDir,
        release,
        script,
        scriptPath,
        after: [],
        trigger: {},
      });
      return {
        host,
        role,
        release: release.id,
        script,
        scriptPath,
        copies: [...laid.copies, laid.scriptCopy],
      };
    });
    this.releases = Object.fromEntries(hosts.map((h) => [h.host.name, h.release]));
    const apps = hosts.filter((h) => h.role === "app");
    // With an external database, the first app host takes the database side (its backup and
    // the migrations) and holds the stack's lock.
    const database = hosts.find((h) => h.role === "database") ?? apps[0];
    if (!database) throw new Error("a fleet needs a host for its database side");
    const plan = rolloutPlan(stack, deploy, database, apps);
    const app = deployStdin(
      deploy,
      secrets,
      accessories.kind === "host" ? postgresServer(accessories) : undefined,
    );
    const stdin = {
      database: accessories.kind === "host" ? deployStdin(deploy, secrets) : app,
      app,
    };
    const rolloutStdin = pulumi.secret(
      pulumi
        .all([secrets.sshPrivateKey, stdin.database, stdin.app])
        .apply(([privateKey, databaseStdin, appStdin]) =>
          JSON.stringify({ privateKey, stdin: { database: databaseStdin, app: appStdin } }),
        ),
    );
    const scripts = hosts.map((h) => `${h.host.name}:${h.release}:${h.script}`).join("\n");
    this.rollout = new command.local.Command(
      `${name}-rollout`,
      {
        create: ROLLOUT_COMMAND,
        environment: { [PLAN_VARIABLE]: JSON.stringify(plan) },
        stdin: rolloutStdin,
        triggers: deployTriggers(
          this.image,
          contentHash(hosts.map((h) => h.release)).slice(0, 12),
          scripts,
          pulumi.all([stdin.database, stdin.app]).apply((texts) => texts.join("\n")),
        ),
        addPreviousOutputInEnv: false,
        logging: "stdoutAndStderr",
      },
      {
        parent: this,
        dependsOn: hosts.flatMap((h) => h.copies),
        additionalSecretOutputs: ["stdout", "stderr"],
      },
    );
    this.registerOutputs({ image: this.image, releases: this.releases });
  }
}

/** The rollout's plan, without secrets: what the preview shows in the command's environment. */
function rolloutPlan(
  stack: string,
  deploy: DeployConfig,
  database: LaidOutHost,
  apps: readonly LaidOutHost[],
): RolloutPlan {
  const plan = (h: LaidOutHost): FleetHostPlan => ({
    host: {
      name: h.host.name,
      host: h.host.host,
      port: h.host.port,
      user: h.host.user,
      ...(h.host.hostKey ? { hostKey: h.host.hostKey } : {}),
    },
    scriptPath: h.scriptPath,
  });
  return {
    stack,
    args: deployRunArgs(deploy),
    database: plan(database),
    apps: apps.map(plan),
    lockPath: `${deploy.appDir}/state/fleet.lock`,
    // A switch still running on a host that stopped answering: at most its health gate, its
    // watch and its drain-back, plus a margin.
    revertWaitSeconds: deploy.health.timeoutSeconds + deploy.watchSeconds + 30,
  };
}
