import { z } from "zod";
import { DRIFT_ENVIRONMENT, isApprovalGated } from "./catalog";
import { deployConfigSchema, deploySecretKeys } from "./deploy";
import { deploymentsSectionSchema } from "./deployments";
import { environmentConfigSchema } from "./environment";
import { githubConfigSchema } from "./github";
import { APP_SECRETS_KEY } from "./host-values";
import { formatIssues, formatKeyPath } from "./problems";
import { unwrap } from "./schema-walk";
import { githubSecretKeys, type SecretKeySpec, type SecretRequirementContext } from "./secret-keys";
import { workflowsSectionSchema } from "./workflows";

/** The Pulumi project name, and so the namespace of every config key of ours. */
export const PROJECT = "clicky-delivery";

/** The stack whose environment gates releases: it always needs reviewers and pinned hosts. */
export const PRODUCTION_STACK = "production";

/** The schema inside defaults, optionals and transforms (re-exported for the docs checks). */
export { unwrap } from "./schema-walk";

/**
 * The sections of a stack's config, one top-level key each (`clicky-delivery:<section>`).
 * A capability adds its own section module here; nothing else changes.
 */
export const sectionSchemas = {
  github: githubConfigSchema,
  environment: environmentConfigSchema,
  deployments: deploymentsSectionSchema,
  deploy: deployConfigSchema,
  workflows: workflowsSectionSchema,
} as const;

/** Every secret config key the program knows, from all capabilities. */
export const secretKeySpecs: readonly SecretKeySpec[] = [...githubSecretKeys, ...deploySecretKeys];

/** A secret's value: a non-empty string, or for a structured secret an object of them. */
const secretValueSchema = z.string().min(1, "must not be empty");
const secretKeyShape = Object.fromEntries(
  secretKeySpecs.map((spec) => [
    spec.key,
    spec.names
      ? z
          .record(
            z.string().regex(/^[A-Z_][A-Z0-9_]*$/, "expected an upper-case variable name"),
            secretValueSchema.regex(/^[^\n\r\0]*$/, "must fit on one line"),
          )
          .optional()
      : spec.jsonDocument
        ? z
            .union([
              secretValueSchema,
              z.record(z.string(), z.unknown(), { error: "expected a JSON object" }),
            ])
            .optional()
        : secretValueSchema.optional(),
  ]),
) as Record<string, z.ZodOptional<z.ZodType>>;

/** The whole stack config: sections plus secret keys; anything else is an unknown key. */
export const stackConfigSchema = z.strictObject({ ...sectionSchemas, ...secretKeyShape });

type Sections = { [K in keyof typeof sectionSchemas]: z.output<(typeof sectionSchemas)[K]> };

/** A validated stack config. Secret values are not part of it (see `load.ts`). */
export interface StackConfig extends Sections {
  /** Stack name, e.g. `production`. */
  readonly stack: string;
  /** True for the stack that owns repository-wide resources. */
  readonly ownsRepository: boolean;
  /** The names `appSecrets` holds values for (never the values); undefined when it is unset. */
  readonly appSecretsGiven?: readonly string[];
}

export type ParseResult =
  | { readonly ok: true; readonly config: StackConfig; readonly secretKeysSet: readonly string[] }
  | { readonly ok: false; readonly problems: readonly string[] };

/**
 * Validates the decoded values of our namespace (key without namespace -> value) once, at the
 * edge, and returns either the typed config or every problem, one line each, prefixed with
 * the stack file's name. `secretKeys` are the keys whose values were stored encrypted.
 *
 * @example parseStackConfig({ github: {...}, environment: {...} }, { stack: "staging" })
 */
export function parseStackConfig(
  values: Readonly<Record<string, unknown>>,
  opts: {
    readonly stack: string;
    readonly file?: string;
    readonly secretKeys?: ReadonlySet<string>;
  },
): ParseResult {
  const file = opts.file ?? `Pulumi.${opts.stack}.yaml`;
  const problems: string[] = [];
  for (const spec of secretKeySpecs) {
    if (values[spec.key] !== undefined && opts.secretKeys && !opts.secretKeys.has(spec.key)) {
      problems.push(
        `${file}: ${PROJECT}:${spec.key}: is stored in plain text; remove it and run \`pulumi config set --secret ${spec.key} --stack ${opts.stack}\``,
      );
    }
  }
  // Issues carry their input so that a missing or empty value can be told apart; no input
  // is ever quoted from them.
  const parsed = stackConfigSchema.safeParse(values, { reportInput: true });
  if (!parsed.success) {
    problems.push(...formatIssues(file, PROJECT, parsed.error.issues, allowedKeysAt, schemaAt));
  }
  if (!parsed.success || problems.length > 0) return { ok: false, problems };
  const data = parsed.data;
  const sections = Object.fromEntries(
    Object.keys(sectionSchemas).map((key) => [key, data[key as keyof typeof data]]),
  ) as Sections;
  const appSecrets = (data as Record<string, unknown>)[APP_SECRETS_KEY];
  const config: StackConfig = {
    ...sections,
    stack: opts.stack,
    ownsRepository: sections.github.repositoryStack === opts.stack,
    ...(appSecrets && typeof appSecrets === "object"
      ? { appSecretsGiven: Object.keys(appSecrets).sort() }
      : {}),
  };
  const set = (key: string) => (data as Record<string, unknown>)[key] !== undefined;
  const pairProblems = REGISTRY_PAIR.some(set)
    ? REGISTRY_PAIR.filter((key) => !set(key)).map((key) => ({
        path: [key],
        message: `is not set, but ${REGISTRY_PAIR.find((k) => k !== key)} is; set both or neither`,
      }))
    : [];
  const crossProblems = [...pairProblems, ...crossSectionProblems(config)].map(
    ({ path, message }) => `${file}: ${formatKeyPath(PROJECT, path)}: ${message}`,
  );
  if (crossProblems.length > 0) return { ok: false, problems: crossProblems };
  return {
    ok: true,
    config,
    secretKeysSet: secretKeySpecs
      .map((s) => s.key)
      .filter((k) => (data as Record<string, unknown>)[k] !== undefined),
  };
}

/** The registry's credentials: a private image's pull needs both, a public one neither. */
const REGISTRY_PAIR = ["registryUsername", "registryToken"] as const;

/** Rules that span sections, checked once every section is valid on its own. */
export function crossSectionProblems(
  config: StackConfig,
): { path: readonly PropertyKey[]; message: string }[] {
  const problems: { path: readonly PropertyKey[]; message: string }[] = [];
  const { users, teams } = config.environment.approval.reviewers;
  if (config.stack === PRODUCTION_STACK && users.length + teams.length === 0) {
    problems.push({
      path: ["environment", "approval", "reviewers"],
      message: `list at least one user or team: the ${PRODUCTION_STACK} environment's required reviewers are the approval gate of every ${PRODUCTION_STACK} deploy (whatever preventSelfReview says)`,
    });
  }
  if (config.environment.name === DRIFT_ENVIRONMENT) {
    problems.push({
      path: ["environment", "name"],
      message: `"${DRIFT_ENVIRONMENT}" is the drift workflow's environment (default branch only, no reviewers); name this stack's environment otherwise`,
    });
  }
  const declared = config.deploy.app.secrets;
  const given = config.appSecretsGiven;
  for (const name of given ?? []) {
    if (!declared.includes(name)) {
      problems.push({
        path: [APP_SECRETS_KEY, name],
        message: `is set, but deploy.app.secrets does not list ${name}; list it there or remove it (pulumi config rm --path '${APP_SECRETS_KEY}.${name}')`,
      });
    }
  }
  if (given !== undefined) {
    for (const name of declared.filter((n) => !given.includes(n))) {
      problems.push({
        path: [APP_SECRETS_KEY, name],
        message: `is not set, but deploy.app.secrets lists it; run \`pulumi config set --secret --path '${APP_SECRETS_KEY}.${name}' --stack ${config.stack}\``,
      });
    }
  }
  if (config.deployments.driftAutoRemediate && users.length + teams.length > 0) {
    problems.push({
      path: ["deployments", "driftAutoRemediate"],
      message: `must be false: environment "${config.environment.name}" requires approval, and auto-remediation would deploy without it`,
    });
  }
  return problems;
}

/** The keys allowed at a path of the schema, for "unknown key" hints. */
export function allowedKeysAt(path: readonly PropertyKey[]): readonly string[] | undefined {
  const schema = schemaAt(path);
  const inner = schema === undefined ? undefined : unwrap(schema);
  return inner instanceof z.ZodObject ? Object.keys(inner.shape) : undefined;
}

/**
 * The schema of the value at a config path, as declared (with its default or optional), e.g.
 * `["deploy", "hosts", 0, "hostKey"]`; `undefined` when the path leads nowhere.
 */
export function schemaAt(path: readonly PropertyKey[]): z.core.$ZodType | undefined {
  let schema: z.core.$ZodType = stackConfigSchema;
  for (const part of path) {
    const inner = unwrap(schema);
    if (inner instanceof z.ZodObject) {
      const child: z.core.$ZodType | undefined = inner.shape[String(part)];
      if (!child) return undefined;
      schema = child;
    } else if (inner instanceof z.ZodArray) {
      schema = inner.element;
    } else if (inner instanceof z.ZodRecord) {
      schema = inner.valueType as z.core.$ZodType;
    } else {
      return undefined;
    }
  }
  return schema;
}

/** The secret keys this stack must have before `pulumi up` may register anything. */
export function requiredSecretKeys(config: StackConfig): readonly SecretKeySpec[] {
  const ctx = requirementContext(config);
  return secretKeySpecs.filter((spec) => spec.requiredWhen(ctx));
}

/** What decides which secrets a stack needs. */
export function requirementContext(config: StackConfig): SecretRequirementContext {
  return {
    stack: config.stack,
    ownsRepository: config.ownsRepository,
    approvalGated: isApprovalGated(config.environment),
    tokenAuth: config.deployments.auth === "tokens",
    mobileSubmit: config.workflows.mobile.submit,
    notify: config.workflows.notify,
    appSecretNames: config.deploy.app.secrets,
    externalDatabase: config.deploy.accessories?.external === true,
  };
}
