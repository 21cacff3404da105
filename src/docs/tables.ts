import {
  DRIFT_ENVIRONMENT,
  describeSource,
  type GithubValueScope,
  githubValues,
  specSecretFates,
} from "../config/catalog";
import { secretKeySpecs } from "../config/schema";

/**
 * README tables generated from the same data the resources come from, so the docs cannot
 * drift from the program: `npm run docs` rewrites them, and a test fails when they differ.
 */
export const README_TABLES: Readonly<Record<string, () => string>> = {
  "secrets-table": renderSecretsTable,
  "spec-secrets-table": renderSpecSecretsTable,
  "secret-keys-table": renderSecretKeysTable,
};

const SCOPE_TEXT: Readonly<Record<GithubValueScope, string>> = {
  repository: "repository (set by the `github.repositoryStack` stack)",
  environment: "environment (each stack, its own)",
  "gated-environment": "the approval-gated stack's environment (production)",
  "drift-environment": `environment \`${DRIFT_ENVIRONMENT}\` (set by the approval-gated stack)`,
};

/** Every GitHub secret and variable the program manages. */
export function renderSecretsTable(): string {
  const rows = githubValues.map((v) => [
    `\`${v.name}\``,
    v.kind,
    SCOPE_TEXT[v.scope],
    `\`${describeSource(v.source)}\``,
    v.purpose,
  ]);
  return table(["Name", "Kind", "Scope", "Config key that feeds it", "Purpose"], rows);
}

/** Where each secret of the spec's "Required Secrets" table went. */
export function renderSpecSecretsTable(): string {
  return table(
    ["Spec secret", "Now"],
    specSecretFates.map((f) => [`\`${f.spec}\``, f.now]),
  );
}

/** Every secret config key, with what it is. */
export function renderSecretKeysTable(): string {
  return table(
    ["Secret config key", "What it is"],
    secretKeySpecs.map((s) => [`\`${s.key}\``, s.description]),
  );
}

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]) =>
    `| ${cells.map((c) => c.replaceAll("|", "\\|")).join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}

/** Replaces the text between `<!-- name:start -->` and `<!-- name:end -->` for each table. */
export function updateReadme(readme: string): string {
  let out = readme;
  for (const [name, render] of Object.entries(README_TABLES)) {
    const start = `<!-- ${name}:start -->`;
    const end = `<!-- ${name}:end -->`;
    const from = out.indexOf(start);
    const to = out.indexOf(end);
    if (from === -1 || to === -1 || to < from) {
      throw new Error(`README.md has no ${start} ... ${end} block`);
    }
    out = `${out.slice(0, from + start.length)}\n${render()}\n${out.slice(to)}`;
  }
  return out;
}
