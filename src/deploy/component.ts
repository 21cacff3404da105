import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import type { DeployConfig, DeployHost } from "../config/deploy";
import { pinnedHostKey } from "../config/host-keys";
import { hostValues } from "../config/host-values";
import { buildRelease, contentHash } from "./compose";
import { buildPrepareScript } from "./prepare";
import { buildRunCommand, deployRunArgs, deployScriptPath } from "./run-command";
import { buildDeployScript, imageReference } from "./script";
import { buildDeployStdin } from "./stdin";

/** The deploy's secrets as the stack holds them: secret Outputs, never plain strings. */
export interface DeploySecrets {
  readonly sshPrivateKey: pulumi.Input<string>;
  readonly postgresPassword: pulumi.Input<string>;
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

  constructor(name: string, args: RemoteDeployArgs, opts?: pulumi.ComponentResourceOptions) {
    super("clicky:deploy:RemoteDeploy", name, {}, opts);
    const { deploy, host, stack, secrets } = args;
    const release = buildRelease(stack, deploy);
    const connection = hostConnection(host, secrets.sshPrivateKey);

    const prepare = new command.remote.Command(
      `${name}-prepare`,
      {
        connection,
        create: buildPrepareScript(deploy.appDir, release.dir),
        addPreviousOutputInEnv: false,
      },
      { parent: this, dependsOn: [...(args.after ?? [])] },
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
          { parent: this, dependsOn: [prepare] },
        ),
    );

    const script = buildDeployScript({ stack, host, deploy, release: release.id });
    const scriptPath = deployScriptPath(release.dir, script);
    const scriptCopy = new command.remote.CopyToRemote(
      `${name}-deploy-script`,
      {
        connection,
        source: new pulumi.asset.StringAsset(script),
        remotePath: scriptPath,
        triggers: [contentHash([script]).slice(0, 16)],
      },
      { parent: this, dependsOn: [prepare] },
    );
    const specs = hostValues(deploy.app.secrets).specs;
    const stdin = pulumi.secret(
      pulumi
        .all([
          secrets.postgresPassword,
          secrets.jwtSecretKey,
          secrets.registryUsername,
          secrets.registryToken,
          secrets.appSecrets,
        ])
        .apply(([postgresPassword, jwtSecretKey, registryUsername, registryToken, appSecrets]) =>
          buildDeployStdin(specs, deploy.database, {
            secrets: { postgresPassword, jwtSecretKey, registryUsername, registryToken },
            appSecrets: appSecrets ? (JSON.parse(appSecrets) as Record<string, string>) : {},
          }),
        ),
    );
    this.image = imageReference(deploy.image);
    this.release = release.id;

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
      },
    );
    this.registerOutputs({ image: this.image, release: this.release });
  }
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
): RemoteDeploy[] {
  const deployed: RemoteDeploy[] = [];
  for (const host of deploy.hosts) {
    const previous = deployed[deployed.length - 1];
    deployed.push(
      new RemoteDeploy(
        `deploy-${host.name}`,
        { stack, deploy, host, secrets, ...(previous ? { after: [previous.run] } : {}) },
        opts,
      ),
    );
  }
  return deployed;
}
