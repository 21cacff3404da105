import { connectionView } from "./connection-view";
import type { RecordedOptions, RecordedResource } from "./engine";
import { RESOURCE_TYPES } from "./resource-types";
import { isSecret, redact, reveal, SECRET_MASK } from "./wire";

/** The resource types whose inputs synth turns into files. */
export const FILE_TYPE = RESOURCE_TYPES.repositoryFile;
export const COMMAND_TYPE = RESOURCE_TYPES.remoteCommand;
export const COPY_TYPE = RESOURCE_TYPES.copyToRemote;
export const LOCAL_COMMAND_TYPE = RESOURCE_TYPES.localCommand;

/** An entry of `resources.json`. */
export interface ResourceEntry {
  readonly type: string;
  readonly name: string;
  readonly parent?: string;
  readonly inputs: unknown;
  /** The options that change what `pulumi up` does with it; `{}` when none is set. */
  readonly options: LifecycleOptions;
}

/** The resource options of `resources.json`: only those set, so `{}` means "engine defaults". */
export interface LifecycleOptions {
  readonly retainOnDelete?: true;
  readonly protect?: true;
  /** Names of the resources it waits for (its `dependsOn` and the resources its inputs come from). */
  readonly dependsOn?: readonly string[];
  readonly deleteBeforeReplace?: true;
  readonly replaceOnChanges?: readonly string[];
  readonly ignoreChanges?: readonly string[];
  readonly additionalSecretOutputs?: readonly string[];
  /** Name of its explicit provider. */
  readonly provider?: string;
  readonly deletedWith?: string;
  /** Its `replacementTrigger`, secrets masked: the resource is replaced when this changes. */
  readonly replacementTrigger?: unknown;
}

/**
 * The lifecycle options of a registration as `resources.json` shows them: each option only
 * when it differs from the engine's default, in a fixed order.
 */
export function lifecycleOptions(options: RecordedOptions): LifecycleOptions {
  const list = (values: readonly string[]) => (values.length > 0 ? [...values] : undefined);
  const entries: [keyof LifecycleOptions, unknown][] = [
    ["retainOnDelete", options.retainOnDelete || undefined],
    ["protect", options.protect || undefined],
    ["dependsOn", list([...new Set(options.dependsOn)])],
    ["deleteBeforeReplace", options.deleteBeforeReplace || undefined],
    ["replaceOnChanges", list(options.replaceOnChanges)],
    ["ignoreChanges", list(options.ignoreChanges)],
    ["additionalSecretOutputs", list(options.additionalSecretOutputs)],
    ["provider", options.provider],
    ["deletedWith", options.deletedWith],
    [
      "replacementTrigger",
      options.replacementTrigger === undefined ? undefined : redact(options.replacementTrigger),
    ],
  ];
  return Object.fromEntries(entries.filter(([, v]) => v !== undefined)) as LifecycleOptions;
}

/** Everything synth writes, as relative path -> content, computed before anything is written. */
export interface SynthOutputs {
  readonly files: ReadonlyMap<string, string>;
  readonly resources: readonly ResourceEntry[];
}

/**
 * Maps the recorded registrations to the contract's outputs: `resources.json`, the committed
 * files, each remote command's script and the names of its stdin keys, and each copied file.
 * Throws when a secret sits where it must never be (a command string, a committed file).
 */
export function buildOutputs(resources: readonly RecordedResource[]): SynthOutputs {
  const files = new Map<string, string>();
  const entries: ResourceEntry[] = resources.map((r) => ({
    type: r.type,
    name: r.name,
    ...(r.parent ? { parent: r.parent } : {}),
    inputs: entryInputs(r),
    options: lifecycleOptions(r.options),
  }));
  files.set("resources.json", `${JSON.stringify(entries, null, 2)}\n`);

  for (const r of resources) {
    if (r.type === FILE_TYPE) {
      const path = plainString(r, "file");
      const content = plainString(r, "content");
      files.set(safeJoin("files", path), content);
    } else if (r.type === COMMAND_TYPE) {
      const create = r.inputs.create;
      if (create !== undefined) files.set(`commands/${r.name}.sh`, plainString(r, "create"));
      const stdin = reveal(r.inputs.stdin);
      if (typeof stdin === "string") {
        const keys = dotenvKeys(stdin);
        files.set(`commands/${r.name}.stdin-keys`, keys.length ? `${keys.join("\n")}\n` : "");
      }
    } else if (r.type === LOCAL_COMMAND_TYPE) {
      // A fleet's rollout (src/deploy/fleet/component.ts): its line, its plan, and the names of
      // what its stdin carries (the key, and each role's dotenv keys), never their values.
      files.set(`commands/${r.name}.sh`, plainString(r, "create"));
      const environment = reveal(r.inputs.environment) as Record<string, string> | undefined;
      for (const [name, value] of Object.entries(environment ?? {})) {
        if (name.endsWith("_PLAN")) {
          files.set(
            `commands/${r.name}.plan.json`,
            `${JSON.stringify(JSON.parse(value), null, 2)}\n`,
          );
        }
      }
      const stdin = reveal(r.inputs.stdin);
      if (typeof stdin === "string") {
        const parsed = JSON.parse(stdin) as { stdin?: Record<string, string> };
        const lines = Object.keys(parsed).filter((k) => k !== "stdin");
        for (const [role, text] of Object.entries(parsed.stdin ?? {})) {
          lines.push(`stdin.${role}: ${dotenvKeys(text).join(" ")}`);
        }
        files.set(`commands/${r.name}.stdin-keys`, `${lines.join("\n")}\n`);
      }
    } else if (r.type === COPY_TYPE) {
      const remotePath = plainString(r, "remotePath");
      for (const [rel, text] of assetFiles(r.inputs.source, r.name)) {
        files.set(
          safeJoin(`remote/${r.name}`, rel === "" ? remotePath : `${remotePath}/${rel}`),
          text,
        );
      }
    }
  }
  return { files, resources: entries };
}

/**
 * A resource's inputs as `resources.json` shows them. The command provider marks a remote
 * connection secret as a whole (it holds the private key); synth shows where a command goes
 * (host, port, user, host key) and masks only the secret fields.
 */
function entryInputs(r: RecordedResource): unknown {
  const inputs = redact(r.inputs) as Record<string, unknown>;
  if ((r.type === COMMAND_TYPE || r.type === COPY_TYPE) && r.inputs.connection !== undefined) {
    return { ...inputs, connection: connectionView(reveal(r.inputs.connection), SECRET_MASK) };
  }
  return inputs;
}

/** The keys of dotenv lines (`KEY=value`), in order; values are never returned. */
export function dotenvKeys(text: string): string[] {
  const keys: string[] = [];
  for (const line of text.split("\n")) {
    const match = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=/.exec(line);
    if (match?.[1]) keys.push(match[1]);
  }
  return keys;
}

function plainString(r: RecordedResource, key: string): string {
  const value = r.inputs[key];
  if (isSecret(value)) {
    throw new Error(
      `${r.name} (${r.type}): input "${key}" is secret; secrets must never be part of it`,
    );
  }
  if (typeof value !== "string") {
    throw new Error(`${r.name} (${r.type}): input "${key}" is not known at synth time`);
  }
  return value;
}

function assetFiles(source: unknown, name: string): [string, string][] {
  const value = redact(source) as Record<string, unknown> | undefined;
  if (value && value.asset === "string") return [["", String(value.text)]];
  if (value?.archive && typeof value.archive === "object") {
    return Object.entries(value.archive as Record<string, Record<string, unknown>>).map(
      ([rel, a]) => {
        if (a.asset !== "string")
          throw new Error(`${name}: archive member ${rel} is not a string asset`);
        return [rel, String(a.text)];
      },
    );
  }
  if (isSecret(source)) throw new Error(`${name}: a copied file must not be secret`);
  throw new Error(`${name}: synth supports string assets and archives of them as copy sources`);
}

/** Joins a relative output path, refusing anything that would escape the output folder. */
export function safeJoin(prefix: string, path: string): string {
  const parts = `${prefix}/${path}`.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.includes("..")) throw new Error(`refusing to write outside the output folder: ${path}`);
  return parts.join("/");
}
