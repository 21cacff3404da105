/**
 * The resource types the program registers, as the engine names them: one place for synth's
 * outputs, the policy pack and the tests that read registrations.
 */
export const RESOURCE_TYPES = {
  environment: "github:index/repositoryEnvironment:RepositoryEnvironment",
  deploymentPolicy:
    "github:index/repositoryEnvironmentDeploymentPolicy:RepositoryEnvironmentDeploymentPolicy",
  repositorySecret: "github:index/actionsSecret:ActionsSecret",
  environmentSecret: "github:index/actionsEnvironmentSecret:ActionsEnvironmentSecret",
  environmentVariable: "github:index/actionsEnvironmentVariable:ActionsEnvironmentVariable",
  repositoryFile: "github:index/repositoryFile:RepositoryFile",
  branch: "github:index/branch:Branch",
  pullRequest: "github:index/repositoryPullRequest:RepositoryPullRequest",
  remoteCommand: "command:remote:Command",
  localCommand: "command:local:Command",
  copyToRemote: "command:remote:CopyToRemote",
  deploymentSettings: "pulumiservice:index:DeploymentSettings",
} as const;
