import { type DeployConfig, deployConfigSchema } from "../../src/config/deploy";

/**
 * A `deploy` section validated like the stack file's, with its image as given (these tests
 * always name a tag, as a pipeline run or a rollback does; `src/deploy/image.ts` resolves it
 * otherwise).
 */
export function parseDeploy(input: unknown): DeployConfig {
  const parsed = deployConfigSchema.parse(input);
  const { tag } = parsed.image;
  if (tag === undefined) throw new Error("test deploy config must name image.tag");
  return {
    ...parsed,
    image: {
      repository: parsed.image.repository,
      tag,
      ...(parsed.image.digest ? { digest: parsed.image.digest } : {}),
    },
  };
}
