import {
  DRIFT_ENVIRONMENT,
  describeSource,
  type GithubValueScope,
  githubValues,
  specSecretFates,
} from "../config/catalog";
import { type HostReader, hostValueCatalog } from "../config/host-values";
import { secretKeySpecs } from "../config/schema";

/**
 * Tables of the docs pages generated from the same data the resources come from, so the docs
 * cannot drift from the program: `npm run docs` rewrites them, and a test fails when they
 * differ. Keyed by page (relative to the repository root), then by the table's marker name.
 */
export const GENERATED_TABLES: Readonly<Record<string, Readonly<Record<string, () => string>>>> = {
  "docs/secrets.md": {
    "secrets-table": renderSecretsTable,
    "spec-secrets-table": renderSpecSecretsTable,
  },
  "docs/configuration.md": {
    "secret-keys-table": renderSecretKeysTable,
  },
  "docs/deploy.md": {
    "host-values-table": renderHostValuesTable,
  },
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

const READER_TEXT: Readonly<Record<HostReader, string>> = {
  app: "the app (its containers' environment, and the migration's)",
  database: "PostgreSQL (its first start; the backup's `pg_dump`)",
  registry: "the pull's `docker login --password-stdin`, into a throwaway config dir",
};

/** Every value that reaches a host, from its one declaration (`src/config/host-values.ts`). */
export function renderHostValuesTable(): string {
  return table(
    ["stdin key", "From config", "Read by", "Needed", "Masked in output", "What it is"],
    hostValueCatalog.map((v) => [
      `\`${v.name}\``,
      `\`${v.from}\` (secret)`,
      v.readers.map((r) => READER_TEXT[r]).join("; "),
      v.required ? "always" : "only when set",
      v.masked ? "yes" : "no",
      v.purpose,
    ]),
  );
}

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]) =>
    `| ${cells.map((c) => c.replaceAll("|", "\\|")).join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}

/**
 * Replaces the text between `<!-- name:start -->` and `<!-- name:end -->` for each table that
 * `page` holds, e.g. `updateTables("docs/secrets.md", text)`; the rest of the text is kept.
 */
export function updateTables(page: string, text: string): string {
  const tables = GENERATED_TABLES[page];
  if (!tables) {
    const pages = Object.keys(GENERATED_TABLES).join(", ");
    throw new Error(`"${page}" holds no generated tables (pages that do: ${pages})`);
  }
  let out = text;
  for (const [name, render] of Object.entries(tables)) {
    const start = `<!-- ${name}:start -->`;
    const end = `<!-- ${name}:end -->`;
    const from = out.indexOf(start);
    const to = out.indexOf(end);
    if (from === -1 || to === -1 || to < from) {
      throw new Error(`${page} has no ${start} ... ${end} block`);
    }
    out = `${out.slice(0, from + start.length)}\n${render()}\n${out.slice(to)}`;
  }
  return out;
}
