import * as pulumi from "@pulumi/pulumi";
import * as pulumiservice from "@pulumi/pulumiservice";

/** GitHub Actions' OIDC issuer, whose tokens Pulumi Cloud exchanges for Pulumi tokens. */
export const GITHUB_ACTIONS_ISSUER = "https://token.actions.githubusercontent.com";

/** What a team's token may do: update one stack, or read (and so preview) the stacks. */
export type TeamRole = { readonly deploys: string } | { readonly reads: readonly string[] };

/** One Pulumi team whose token a job of one GitHub environment may get. */
export interface LoginTeam {
  /** Team name in Pulumi Cloud, e.g. `clicky-delivery-production`. */
  readonly team: string;
  /** The only GitHub environment whose jobs may get its token. */
  readonly environment: string;
  readonly role: TeamRole;
}

/**
 * The team a workflow job logs in as: one per deploy target (it may update that stack) and one
 * for drift (it may read every stack). One function for the program (which creates the teams
 * and the issuer's policies) and the workflows (which ask for the token), so they cannot differ.
 *
 * @example loginTeamName("clicky-delivery", "production") // "clicky-delivery-production"
 */
export function loginTeamName(project: string, role: string): string {
  return `${project}-${role}`;
}

export interface PulumiCloudLoginArgs {
  readonly organization: string;
  readonly project: string;
  /** `owner/name` of the app repository whose workflows log in. */
  readonly repository: string;
  readonly teams: readonly LoginTeam[];
}

/**
 * The issuer's authorization policy for each team: allow a team token only to a job of the
 * team's environment in this repository (GitHub's `sub` claim for an environment job is
 * `repo:<owner>/<repo>:environment:<name>`, and the audience pulumi/auth-actions asks for is
 * `urn:pulumi:org:<organization>`: Pulumi Cloud's "Configuring OpenID Connect for GitHub").
 * A job of another environment, of no environment, or of a fork gets nothing.
 */
export function loginPolicies(
  args: PulumiCloudLoginArgs,
): pulumiservice.types.input.AuthPolicyDefinitionArgs[] {
  return args.teams.map((t) => ({
    decision: "allow",
    tokenType: "team",
    teamName: t.team,
    rules: {
      aud: `urn:pulumi:org:${args.organization}`,
      sub: `repo:${args.repository}:environment:${t.environment}`,
    },
  }));
}

/**
 * Short-lived Pulumi logins for the workflows (no Pulumi token stored in GitHub): the GitHub
 * Actions OIDC issuer of the organization, one team per login with the least stack permission
 * it needs, and the issuer's policies binding each team to its environment. Managed by the
 * approval-gated stack: who can update production changes only through an approved run.
 */
export class PulumiCloudLogin extends pulumi.ComponentResource {
  constructor(name: string, args: PulumiCloudLoginArgs, opts?: pulumi.ComponentResourceOptions) {
    super("clicky:cloud:PulumiCloudLogin", name, {}, opts);
    const teams = args.teams.map(
      (t) =>
        new pulumiservice.Team(
          t.team,
          {
            organizationName: args.organization,
            teamType: "pulumi",
            name: t.team,
            displayName: t.team,
            description: `GitHub Actions jobs of environment ${t.environment} (clicky-delivery OIDC login)`,
          },
          { parent: this },
        ),
    );
    args.teams.forEach((t, i) => {
      const team = teams[i] as pulumiservice.Team;
      const grants =
        "deploys" in t.role
          ? [{ stack: t.role.deploys, permission: 102 as const }]
          : t.role.reads.map((stack) => ({ stack, permission: 101 as const }));
      for (const grant of grants) {
        new pulumiservice.TeamStackPermission(
          `${t.team}-${grant.stack}`,
          {
            organization: args.organization,
            project: args.project,
            stack: grant.stack,
            team: t.team,
            permission: grant.permission,
          },
          { parent: this, dependsOn: [team] },
        );
      }
    });
    new pulumiservice.OidcIssuer(
      name,
      {
        organization: args.organization,
        name: "github-actions",
        url: GITHUB_ACTIONS_ISSUER,
        policies: loginPolicies(args),
      },
      { parent: this, dependsOn: teams },
    );
    this.registerOutputs({});
  }
}

/** The deploy targets as the workflows config names them (`workflows.targets`). */
export interface LoginTargets {
  readonly staging: { readonly stack: string; readonly environment: string };
  readonly production: { readonly stack: string; readonly environment: string };
}

/**
 * The logins the generated workflows use: each deploy target's team may update its own stack
 * from its own environment; the drift team may read both stacks from the drift environment.
 */
export function loginTeams(
  project: string,
  targets: LoginTargets,
  driftEnvironment: string,
): LoginTeam[] {
  const deployer = (t: LoginTargets["staging"]): LoginTeam => ({
    team: loginTeamName(project, t.stack),
    environment: t.environment,
    role: { deploys: t.stack },
  });
  return [
    deployer(targets.staging),
    deployer(targets.production),
    {
      team: loginTeamName(project, "drift"),
      environment: driftEnvironment,
      role: { reads: [targets.staging.stack, targets.production.stack] },
    },
  ];
}
