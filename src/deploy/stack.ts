import * as pulumi from "@pulumi/pulumi";
import { withDeployImage } from "../config/deploy";
import { APP_SECRETS_KEY } from "../config/host-values";
import type { RunMode, SecretValues } from "../config/load";
import type { StackConfig } from "../config/schema";
import type { OwnOutputs } from "../stack/own-outputs";
import { type DeploySecrets, deployHosts, type RemoteDeploy } from "./component";
import { FleetDeploy } from "./fleet/component";
import type { HostProber } from "./host-probe";
import {
  DEPLOYED_IMAGE_OUTPUT,
  deployedImageOutput,
  liveImageSources,
  type ResolvedImage,
  resolveImage,
  synthImageSources,
} from "./image";

/** The deploy's secrets from the loaded stack secrets. */
export function deploySecrets(secrets: SecretValues): DeploySecrets {
  const need = (key: string) => {
    const value = secrets[key];
    if (value === undefined) throw new Error(`secret config key "${key}" was not loaded`);
    return value;
  };
  return {
    sshPrivateKey: need("sshPrivateKey"),
    jwtSecretKey: need("jwtSecretKey"),
    ...(secrets.postgresPassword ? { postgresPassword: secrets.postgresPassword } : {}),
    ...(secrets.databaseUrl ? { databaseUrl: secrets.databaseUrl } : {}),
    ...(secrets.redisUrl ? { redisUrl: secrets.redisUrl } : {}),
    ...(secrets.registryUsername ? { registryUsername: secrets.registryUsername } : {}),
    ...(secrets.registryToken ? { registryToken: secrets.registryToken } : {}),
    ...(secrets[APP_SECRETS_KEY] ? { appSecrets: secrets[APP_SECRETS_KEY] } : {}),
  };
}

/**
 * The image this run deploys (`./image.ts`). Called before the program registers any managed
 * resource, so a run that cannot name an image stops with nothing changed.
 */
export function resolveStackImage(
  config: StackConfig,
  secrets: SecretValues,
  own: OwnOutputs,
  mode: RunMode,
): Promise<ResolvedImage> {
  const live = liveImageSources(
    config.deploy,
    secrets.registryUsername && secrets.registryToken
      ? { username: secrets.registryUsername, password: secrets.registryToken }
      : undefined,
    own,
  );
  return resolveImage(
    config.deploy,
    mode === "synth" ? synthImageSources(live, config.deploy) : live,
    { stack: config.stack, file: `Pulumi.${config.stack}.yaml` },
  );
}

/**
 * The image record, resolved only once every host's deploy command succeeded.
 *
 * The engine keeps the outputs a failed update registered (pkg/resource/deploy/step_executor.go
 * `executeRegisterResourceOutputs`: on error, old outputs overwritten by the new ones), and the
 * SDK registers the stack's outputs as soon as all of them resolve (runtime/stack.js
 * `massage`). A record that did not wait for the deploy would name an image that failed on the
 * host, and every later run without a tag would retry it. Waiting on the commands' ids means a
 * failed deploy rejects this output, the SDK then registers no outputs (`{}`), and the stack
 * keeps the record of what the hosts still serve. A failed command is not recorded either
 * (pulumi-go-provider v1.3.0 infer/resource.go `Create` returns no partial state for a plain
 * error), so the next tagless run plans nothing.
 */
export function recordedAfter<T>(
  deployed: readonly (RemoteDeploy | FleetDeploy)[],
  record: T,
): pulumi.Output<T> {
  return pulumi
    .all(deployed.map((d) => (d instanceof FleetDeploy ? d.rollout.id : d.run.id)))
    .apply(() => record);
}

/** The stack output with each host's drift token (`./host-probe.ts`), by host name. */
export const HOST_PROBE_OUTPUT = "hostProbe";

/** What the host probe reads from the stack's last update. */
export interface HostProbeState {
  readonly prober: HostProber;
  /** The last update's `hostProbe` output. */
  readonly tokens: Readonly<Record<string, string>>;
  /** The last update's `deploy` output (image, release), if it deployed. */
  readonly previous?: { readonly image?: string; readonly release?: string };
}

/** The host probe's state from the recorded outputs; anything malformed reads as none. */
export async function hostProbeState(own: OwnOutputs, prober: HostProber): Promise<HostProbeState> {
  const tokens = await own.get(HOST_PROBE_OUTPUT);
  const deploy = await own.get("deploy");
  const text = (v: unknown) => (typeof v === "string" ? v : undefined);
  const record = (v: unknown): Record<string, unknown> =>
    v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  const previous = deploy === undefined ? undefined : record(deploy);
  return {
    prober,
    tokens: Object.fromEntries(
      Object.entries(record(tokens)).filter((e): e is [string, string] => typeof e[1] === "string"),
    ),
    ...(previous
      ? {
          previous: {
            ...(text(previous.image) ? { image: text(previous.image) } : {}),
            ...(text(previous.release) ? { release: text(previous.release) } : {}),
          },
        }
      : {}),
  };
}

/**
 * The deploy of this stack: the resolved image to every host, one at a time. Returns the stack
 * outputs it adds; `deployedImage` is what the next run reads back when it names no tag, and
 * `hostProbe` (when the hosts were read) each host's drift token.
 */
export function deployStack(
  config: StackConfig,
  secrets: SecretValues,
  resolved: ResolvedImage,
  probe?: HostProbeState,
) {
  const deploy = { ...withDeployImage(config.deploy, resolved.image), migrate: resolved.migrate };
  if (deploy.accessories) {
    // A fleet: one rollout across the hosts (./fleet/component.ts); hosts are not probed yet.
    const fleet = new FleetDeploy("deploy", {
      stack: config.stack,
      deploy,
      secrets: deploySecrets(secrets),
    });
    return {
      [DEPLOYED_IMAGE_OUTPUT]: recordedAfter([fleet], deployedImageOutput(resolved)),
      deploy: {
        image: fleet.image,
        imageFrom: { tag: resolved.tagFrom, digest: resolved.digestFrom },
        releases: fleet.releases,
        accessories: deploy.accessories.external ? "external" : deploy.accessories.host,
        hosts: config.deploy.hosts.map((h) => `${h.user}@${h.host}:${h.port}`),
      },
    };
  }
  const deployed = deployHosts(
    config.stack,
    deploy,
    deploySecrets(secrets),
    undefined,
    probe
      ? (host) => ({
          prober: probe.prober,
          ...(probe.tokens[host.name] ? { previousToken: probe.tokens[host.name] } : {}),
          ...(probe.previous ? { previous: probe.previous } : {}),
        })
      : undefined,
  );
  const tokens: Record<string, pulumi.Output<string>> = {};
  deployed.forEach((d, i) => {
    const name = config.deploy.hosts[i]?.name;
    if (d.hostToken && name) tokens[name] = d.hostToken;
  });
  return {
    [DEPLOYED_IMAGE_OUTPUT]: recordedAfter(deployed, deployedImageOutput(resolved)),
    ...(Object.keys(tokens).length > 0
      ? { [HOST_PROBE_OUTPUT]: recordedAfter(deployed, pulumi.all(tokens)).apply((t) => t) }
      : {}),
    deploy: {
      image: deployed[0]?.image,
      imageFrom: { tag: resolved.tagFrom, digest: resolved.digestFrom },
      release: deployed[0]?.release,
      hosts: config.deploy.hosts.map((h) => `${h.user}@${h.host}:${h.port}`),
    },
  };
}
