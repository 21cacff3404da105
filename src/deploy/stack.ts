import * as pulumi from "@pulumi/pulumi";
import { withDeployImage } from "../config/deploy";
import { type SecretValues, StackConfigError, SYNTH_ENV } from "../config/load";
import type { StackConfig } from "../config/schema";
import { type DeploySecrets, deployHosts, hostKeyPolicy } from "./component";
import {
  DEPLOYED_IMAGE_OUTPUT,
  deployedImageOutput,
  liveImageSources,
  type ResolvedImage,
  resolveImage,
  synthImageSources,
} from "./image";

/**
 * Checks of the deploy config that need the stack name or the secrets, run before the program
 * registers anything: production hosts must pin their host key; the registry secrets come in
 * pairs. Throws a StackConfigError listing every problem; logs the warnings.
 */
export function checkDeployConfig(config: StackConfig, secrets: SecretValues): void {
  const file = `Pulumi.${config.stack}.yaml`;
  const { errors, warnings } = hostKeyPolicy(config.stack, config.deploy.hosts, file);
  const hasUser = secrets.registryUsername !== undefined;
  const hasToken = secrets.registryToken !== undefined;
  if (hasUser !== hasToken) {
    errors.push(
      `${file}: clicky-delivery:${hasUser ? "registryToken" : "registryUsername"}: is not set, but ${hasUser ? "registryUsername" : "registryToken"} is; set both or neither`,
    );
  }
  if (errors.length > 0) throw new StackConfigError(errors);
  for (const warning of warnings) pulumi.log.warn(warning);
}

/** The deploy's secrets from the loaded stack secrets. */
export function deploySecrets(secrets: SecretValues): DeploySecrets {
  const need = (key: string) => {
    const value = secrets[key];
    if (value === undefined) throw new Error(`secret config key "${key}" was not loaded`);
    return value;
  };
  return {
    sshPrivateKey: need("sshPrivateKey"),
    postgresPassword: need("postgresPassword"),
    jwtSecretKey: need("jwtSecretKey"),
    ...(secrets.registryUsername ? { registryUsername: secrets.registryUsername } : {}),
    ...(secrets.registryToken ? { registryToken: secrets.registryToken } : {}),
  };
}

/**
 * The image this run deploys (`./image.ts`). Called before the program registers any managed
 * resource, so a run that cannot name an image stops with nothing changed.
 */
export function resolveStackImage(
  config: StackConfig,
  secrets: SecretValues,
): Promise<ResolvedImage> {
  const live = liveImageSources(
    config.deploy,
    secrets.registryUsername && secrets.registryToken
      ? { username: secrets.registryUsername, password: secrets.registryToken }
      : undefined,
  );
  return resolveImage(
    config.deploy,
    process.env[SYNTH_ENV] === "1" ? synthImageSources(live, config.deploy) : live,
    { stack: config.stack, file: `Pulumi.${config.stack}.yaml` },
  );
}

/**
 * The deploy of this stack: the resolved image to every host, one at a time. Returns the stack
 * outputs it adds; `deployedImage` is what the next run reads back when it names no tag.
 */
export function deployStack(config: StackConfig, secrets: SecretValues, resolved: ResolvedImage) {
  const deploy = { ...withDeployImage(config.deploy, resolved.image), migrate: resolved.migrate };
  const deployed = deployHosts(config.stack, deploy, deploySecrets(secrets));
  return {
    [DEPLOYED_IMAGE_OUTPUT]: deployedImageOutput(resolved),
    deploy: {
      image: deployed[0]?.image,
      imageFrom: { tag: resolved.tagFrom, digest: resolved.digestFrom },
      release: deployed[0]?.release,
      hosts: config.deploy.hosts.map((h) => `${h.user}@${h.host}:${h.port}`),
    },
  };
}
