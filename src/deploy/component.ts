import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import type { DeployConfig, DeployHost } from "../config/deploy";
import { pinnedHostKey } from "../config/host-keys";
import { hostValues } from "../config/host-values";
import { buildRelease, contentHash } from "./compose";
import { buildProbeScript, type HostProber, probeOutcome, sha256 } from "./host-probe";
import { buildPrepareScript } from "./prepare";
import { buildRunCommand, deployRunArgs, deployScriptPath } from "./run-command";
import { buildDeployScript, imageReference } from "./script";
import { buildDeployStdin } from "./stdin";

/** The deploy's secrets as the stack holds them: secret Outputs, never plain strings. */
export interface DeploySecrets {
  readonly sshPrivateKey: pulumi.Input<string>;
  /** Absent with an external database, whose URLs carry their passwords. */
  readonly postgresPassword?: pulumi.Input<string>;
  readonly databaseUrl?: pulumi.Input<string>;
  readonly redisUrl?: pulumi.Input<string>;
  readonly jwtSecretKey: pulumi.Input<string>;
  readonly registryUsername?: pulumi.Input<string>;
  readonly registryToken?: pulumi.Input<string>;
  /** The app's own secrets (`appSecrets`) as JSON text, when the stack declares any. */
  readonly appSecrets?: pulumi.Input<string>;
}

export interface RemoteDeployArgs {
  readonly stack: string;
  readonly deploy: DeployConfig;
  readonly host: DeployHost;
  readonly secrets: DeploySecrets;
  /** What this host's deploy waits for: the previous host's deploy, so hosts go one by one. */
  readonly after?: readonly pulumi.Resource[];
  /** Read the host before planning (`./host-probe.ts`); absent under offline synth. */
  readonly probe?: HostProbeInput;
}

/** What a host's probe needs from the program and from the stack's last update. */
export interface HostProbeInput {
  readonly prober: HostProber;
  /** The host's token from the stack's last update (`hostProbe` output), if any. */
  readonly previousToken?: string;
  /** The image and release the stack's last update deployed (its `deploy` output), if any. */
  readonly previous?: { readonly image?: string; readonly release?: string };
}

/**
 * The SSH connection of a host, shared by all its commands. The host key is pinned when
 * configured (never the all-zero placeholder of a stack file, which is no key); the private key stays a secret Output inside an otherwise plain object, so
 * previews and synth show host, port, user and host key, and mask only the key.
 */
export function hostConnection(
  host: DeployHost,
  privateKey: pulumi.Input<string>,
): command.types.input.remote.ConnectionArgs {
  const hostKey = pinnedHostKey(host);
  return {
    host: host.host,
    port: host.port,
    user: host.user,
    privateKey: pulumi.secret(privateKey),
    ...(hostKey ? { hostKey } : {}),
    dialErrorLimit: 5,
    perDialTimeout: 20,
  };
}

/**
 * Deploys the stack's image to one host over SSH: lays out the app directory, copies the
 * compose project and the deploy script (non-secret files only), then runs the script with
 * the secrets on stdin. The script's own steps keep the old version serving whenever anything
 * fails.
 *
 * The run command's `create` is a short line that runs the copied script (`./run-command.ts`
 * says why: the provider quotes `create` in its error). It reruns only when its triggers
 * change: the image reference, the release (compose files), the script and a hash of the env.
 * It has no `delete`: replacing or destroying it never stops the app.
 */
export class RemoteDeploy extends pulumi.ComponentResource {
  /** The deploy script's command; later hosts wait for it. */
  readonly run: command.remote.Command;
  readonly image: string;
  readonly release: string;
  /**
   * The host's drift token (`./host-probe.ts`), the `replacementTrigger` of its commands and
   * copies; undefined when the host was not probed.
   */
  readonly hostToken?: pulumi.Output<string>;

  constructor(name: string, args: RemoteDeployArgs, opts?: pulumi.ComponentResourceOptions) {
    super("clicky:deploy:RemoteDeploy", name, {}, opts);
    const { deploy, host, stack, secrets } = args;
    const release = buildRelease(stack, deploy);
    const connection = hostConnection(host, secrets.sshPrivateKey);
    const script = buildDeployScript({ stack, host, deploy, release });
    const scriptPath = deployScriptPath(release.dir, script);
    this.image = imageReference(deploy.image);
    this.release = release.id;
    if (args.probe) this.hostToken = this.probeHost(args, release, script, scriptPath);
    // A new token replaces every command and copy of the host: prepare, the files, the deploy.
    const trigger = this.hostToken
      ? { replacementTrigger: this.hostToken.apply((t) => `host:${t}`) }
      : {};

    const { copies, scriptCopy } = layOutRelease(this, name, {
      connection,
      appDir: deploy.appDir,
      release,
      script,
      scriptPath,
      after: args.after ?? [],
      trigger,
    });
    const stdin = deployStdin(deploy, secrets);
    this.run = new command.remote.Command(
      `${name}-run`,
      {
        connection,
        create: buildRunCommand(scriptPath, deployRunArgs(deploy)),
        stdin,
        triggers: deployTriggers(this.image, release.id, script, stdin),
        addPreviousOutputInEnv: false,
        logging: "stdoutAndStderr",
      },
      {
        parent: this,
        dependsOn: [...copies, scriptCopy],
        additionalSecretOutputs: ["stdout", "stderr"],
        ...trigger,
      },
    );
    this.registerOutputs({ image: this.image, release: this.release });
  }

  /**
   * Reads the host once and logs how it differs from the stack; resolves to its token. The
   * key is a secret, so the token would be one too: it is a hash of what the host holds, made
   * plain so the preview can show the trigger change.
   */
  private probeHost(
    args: RemoteDeployArgs,
    release: ReturnType<typeof buildRelease>,
    script: string,
    scriptPath: string,
  ): pulumi.Output<string> {
    const { host, deploy } = args;
    const probe = args.probe as HostProbeInput;
    const files = new Map([...release.files].map(([name, text]) => [name, sha256(text)]));
    files.set(scriptPath.slice(release.dir.length + 1), sha256(script));
    const expectation = {
      appDir: deploy.appDir,
      project: deploy.composeProject,
      release: release.id,
      releaseDir: release.dir,
      files,
      image: this.image,
      stackChanges: probe.previous?.image !== this.image || probe.previous?.release !== release.id,
      deployedBefore: probe.previous !== undefined,
    };
    const probeScript = buildProbeScript(expectation);
    const where = `host ${host.name} (${host.user}@${host.host}:${host.port})`;
    const token = pulumi.output(args.secrets.sshPrivateKey).apply(async (privateKey) => {
      const outcome = await probeOutcome(
        probe.prober,
        { host, privateKey, script: probeScript },
        expectation,
        probe.previousToken,
      );
      if (outcome.unreadable) {
        await pulumi.log.warn(
          `${where} could not be read to compare it with the stack (${outcome.unreadable}); whether it drifted is unknown in this run`,
          this,
        );
      } else if (outcome.differences.length > 0) {
        const action = pulumi.runtime.isDryRun()
          ? "`pulumi up` runs prepare, the release copies and the deploy on it again"
          : "this update runs prepare, the release copies and the deploy on it again";
        await pulumi.log.warn(
          `drift: ${where} differs from the stack: ${outcome.differences.join("; ")}; ${action}`,
          this,
        );
      }
      return outcome.token;
    });
    return pulumi.unsecret(token);
  }
}

/**
 * The deploy command's stdin (dotenv lines, `./stdin.ts`) as a secret Output. `server` is where
 * the app reaches PostgreSQL (default: the compose service beside it).
 */
export function deployStdin(
  deploy: DeployConfig,
  secrets: DeploySecrets,
  server?: string,
): pulumi.Output<string> {
  const specs = hostValues(deploy.app.secrets, {
    externalDatabase: deploy.accessories?.external === true,
  }).specs;
  return pulumi.secret(
    pulumi
      .all([
        secrets.postgresPassword,
        secrets.jwtSecretKey,
        secrets.registryUsername,
        secrets.registryToken,
        secrets.appSecrets,
        secrets.databaseUrl,
        secrets.redisUrl,
      ])
      .apply(
        ([
          postgresPassword,
          jwtSecretKey,
          registryUsername,
          registryToken,
          appSecrets,
          databaseUrl,
          redisUrl,
        ]) =>
          buildDeployStdin(
            specs,
            deploy.database,
            {
              secrets: {
                postgresPassword,
                jwtSecretKey,
                registryUsername,
                registryToken,
                databaseUrl,
                redisUrl,
              },
              appSecrets: appSecrets ? (JSON.parse(appSecrets) as Record<string, string>) : {},
            },
            server,
          ),
      ),
  );
}

/** What `layOutRelease` copies to a host, and how it connects. */
export interface ReleaseLayout {
  readonly connection: command.types.input.remote.ConnectionArgs;
  readonly appDir: string;
  readonly release: ReturnType<typeof buildRelease>;
  readonly script: string;
  readonly scriptPath: string;
  readonly after: readonly pulumi.Resource[];
  readonly trigger: { replacementTrigger?: pulumi.Input<string> };
}

/**
 * A host's prepare command (the app directory's layout), then a copy of each release file and
 * of the deploy script: non-secret files only, children of `parent`, named after `name`.
 */
export function layOutRelease(
  parent: pulumi.Resource,
  name: string,
  layout: ReleaseLayout,
): {
  prepare: command.remote.Command;
  copies: command.remote.CopyToRemote[];
  scriptCopy: command.remote.CopyToRemote;
} {
  const { connection, release, script, scriptPath, trigger } = layout;
  const prepare = new command.remote.Command(
    `${name}-prepare`,
    {
      connection,
      create: buildPrepareScript(layout.appDir, release.dir),
      addPreviousOutputInEnv: false,
    },
    { parent, dependsOn: [...layout.after], ...trigger },
  );

  const copies = [...release.files].map(
    ([file, text]) =>
      new command.remote.CopyToRemote(
        `${name}-${file.replace(/[^A-Za-z0-9]+/g, "-").replace(/-+$/, "")}`,
        {
          connection,
          source: new pulumi.asset.StringAsset(text),
          remotePath: `${release.dir}/${file}`,
          triggers: [contentHash([text]).slice(0, 16)],
        },
        { parent, dependsOn: [prepare], ...trigger },
      ),
  );

  const scriptCopy = new command.remote.CopyToRemote(
    `${name}-deploy-script`,
    {
      connection,
      source: new pulumi.asset.StringAsset(script),
      remotePath: scriptPath,
      triggers: [contentHash([script]).slice(0, 16)],
    },
    { parent, dependsOn: [prepare], ...trigger },
  );
  return { prepare, copies, scriptCopy };
}

/**
 * What makes a deploy run again: the image reference, the release id, a hash of the script,
 * and a secret hash of the env (so a rotated secret redeploys without showing its value).
 */
export function deployTriggers(
  image: string,
  release: string,
  script: string,
  stdin: pulumi.Output<string>,
): pulumi.Input<unknown>[] {
  return [
    image,
    `release:${release}`,
    `script:${contentHash([script]).slice(0, 16)}`,
    pulumi.secret(stdin.apply((text) => `env:${contentHash([text]).slice(0, 16)}`)),
  ];
}

/**
 * One RemoteDeploy per host, strictly one after the other: each host's first command waits
 * for the previous host's deploy, so a failure stops the rollout at the first failed host.
 */
export function deployHosts(
  stack: string,
  deploy: DeployConfig,
  secrets: DeploySecrets,
  opts?: pulumi.ComponentResourceOptions,
  probe?: (host: DeployHost) => HostProbeInput,
): RemoteDeploy[] {
  const deployed: RemoteDeploy[] = [];
  for (const host of deploy.hosts) {
    const previous = deployed[deployed.length - 1];
    deployed.push(
      new RemoteDeploy(
        `deploy-${host.name}`,
        {
          stack,
          deploy,
          host,
          secrets,
          ...(previous ? { after: [previous.run] } : {}),
          ...(probe ? { probe: probe(host) } : {}),
        },
        opts,
      ),
    );
  }
  return deployed;
}
