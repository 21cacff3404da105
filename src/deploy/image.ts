import * as docker from "@pulumi/docker";
import type * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import { type DeployConfigInput, type DeployImage, registryOf } from "../config/deploy";
import { StackConfigError } from "../config/load";
import type { OwnOutputs } from "../stack/own-outputs";

/**
 * Which image a run deploys.
 *
 * The tag is the pipeline's per-run input, not committed config: the main pipeline and the
 * production job set `deploy.image.tag` for the run they start, and a rollback sets it by hand.
 * A run without it (a drift check, a pull request preview, a `pulumi up` that only adds a
 * reviewer) keeps the image the stack last deployed, read from its own `deployedImage` output,
 * so it neither redeploys nor reports the running version as drift.
 *
 * A tag is resolved to its registry digest at deploy time and hosts pull by digest: the bytes
 * that were checked are the bytes that run, and a tag moved in the registry shows up as a
 * change in the preview.
 */
export interface ResolvedImage {
  readonly image: DeployImage;
  /** Whether the migration runs (the previous run's choice when the image is kept). */
  readonly migrate: boolean;
  readonly tagFrom: "config" | "last-deploy";
  readonly digestFrom: "config" | "registry" | "last-deploy";
}

/** What the stack records of a deploy, and reads back on the next run. */
export const DEPLOYED_IMAGE_OUTPUT = "deployedImage";

const deployedImageSchema = z.object({
  repository: z.string(),
  tag: z.string(),
  digest: z.string().optional(),
  migrate: z.boolean().optional(),
});
export type DeployedImage = z.infer<typeof deployedImageSchema>;

export interface ImageSources {
  /** The stack's own last `deployedImage` output, if it ever deployed. */
  readonly lastDeployed: () => Promise<DeployedImage | undefined>;
  /** The registry's manifest digest of `repository:tag`. */
  readonly digestOf: (repository: string, tag: string) => Promise<string>;
}

/**
 * Resolves the image of this run from the `deploy` config and the sources above. Throws a
 * {@link StackConfigError} (nothing registered yet) when no image can be named.
 */
export async function resolveImage(
  deploy: DeployConfigInput,
  sources: ImageSources,
  ctx: { readonly stack: string; readonly file: string },
): Promise<ResolvedImage> {
  const { repository, tag, digest } = deploy.image;
  const key = "clicky-delivery:deploy.image";
  if (tag !== undefined) {
    return {
      image: { repository, tag, digest: digest ?? (await sources.digestOf(repository, tag)) },
      migrate: deploy.migrate,
      tagFrom: "config",
      digestFrom: digest !== undefined ? "config" : "registry",
    };
  }
  if (digest !== undefined) {
    throw new StackConfigError([
      `${ctx.file}: ${key}.digest: is set without ${key}.tag; name the tag it belongs to`,
    ]);
  }
  const last = await sources.lastDeployed();
  if (last === undefined) {
    throw new StackConfigError([
      `${ctx.file}: ${key}.tag: is not set, and stack ${ctx.stack} has never deployed an image. The main pipeline sets it for every build; to deploy by hand run \`pulumi config set --path deploy.image.tag <tag> --stack ${ctx.stack}\` first`,
    ]);
  }
  if (last.repository !== repository) {
    throw new StackConfigError([
      `${ctx.file}: ${key}.tag: is not set, and ${key}.repository changed from ${last.repository} to ${repository}; name the tag to deploy from the new repository`,
    ]);
  }
  return {
    image: { repository, tag: last.tag, ...(last.digest ? { digest: last.digest } : {}) },
    migrate: last.migrate ?? deploy.migrate,
    tagFrom: "last-deploy",
    digestFrom: "last-deploy",
  };
}

/** The output the stack records for the next run. */
export function deployedImageOutput(resolved: ResolvedImage): DeployedImage {
  return { ...resolved.image, migrate: resolved.migrate };
}

/**
 * The real sources: the stack's own outputs through a StackReference to itself (reading the
 * last completed update, which is what the hosts run: a failed deploy records nothing), and
 * the registry through `@pulumi/docker`'s `getRegistryImage` (no Docker daemon needed), logged
 * in with the pull credentials when the image is private.
 */
export function liveImageSources(
  deploy: DeployConfigInput,
  registryAuth: { username: pulumi.Output<string>; password: pulumi.Output<string> } | undefined,
  own: OwnOutputs,
): ImageSources {
  // Registered on every run that has registry credentials, not only on runs that look a digest
  // up: an explicit provider is a resource, so one that a tagless run stops registering would
  // be deleted, and that delete is a change for `preview --expect-no-changes` (false drift).
  // Engine: pkg/resource/deploy/step_generator.go (providers are registered like resources;
  // what a run does not register is deleted).
  const provider =
    registryAuth === undefined
      ? undefined
      : new docker.Provider("registry", {
          registryAuth: [
            { address: deploy.registry ?? registryOf(deploy.image.repository), ...registryAuth },
          ],
        });
  return {
    lastDeployed: async () => {
      const value = await own.get(DEPLOYED_IMAGE_OUTPUT);
      if (value === undefined) return undefined;
      const parsed = deployedImageSchema.safeParse(value);
      if (!parsed.success) {
        throw new Error(`${own.stack}: output ${DEPLOYED_IMAGE_OUTPUT} is not an image record`);
      }
      return parsed.data;
    },
    digestOf: async (repository, tag) => {
      const result = await docker.getRegistryImage(
        { name: `${repository}:${tag}` },
        provider ? { provider } : {},
      );
      return result.sha256Digest;
    },
  };
}

/**
 * Under synth no stack has state and nothing is looked up: the last deploy appears as markers
 * that say what `pulumi up` would read, never as an invented tag or digest.
 */
/** The markers synth shows for the stack's last deployed image. */
export const SYNTH_LAST_DEPLOYED = {
  tag: "lookup.last-deployed-tag",
  digest: "lookup:last-deployed-digest",
} as const;

export function synthImageSources(live: ImageSources, deploy: DeployConfigInput): ImageSources {
  return {
    lastDeployed: async () => ({ repository: deploy.image.repository, ...SYNTH_LAST_DEPLOYED }),
    digestOf: live.digestOf,
  };
}
