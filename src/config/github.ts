import { z } from "zod";
import { branchName, githubLogin, githubRepositoryName } from "./patterns";

/**
 * `clicky-delivery:github`: the application repository this program manages.
 *
 * Repository-wide resources (workflow files, repository secrets and variables, the ruleset)
 * belong to exactly one stack, `repositoryStack`, so two stacks never fight over them.
 */
export const githubConfigSchema = z.strictObject({
  /** Organization or user that owns the repository. */
  owner: githubLogin,
  /** Repository name, without the owner. */
  repository: githubRepositoryName,
  /** The branch that pull requests target and that deploys to staging. */
  defaultBranch: branchName.default("main"),
  /** The stack that owns the repository-wide resources. */
  repositoryStack: z
    .string()
    .regex(/^[A-Za-z0-9._-]+$/, "expected a stack name, e.g. staging")
    .default("staging"),
});

export type GithubConfig = z.infer<typeof githubConfigSchema>;
