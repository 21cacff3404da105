import * as pulumi from "@pulumi/pulumi";

/** One `registerResource` call as the engine would have received it. */
export interface RecordedResource {
  readonly type: string;
  readonly name: string;
  /** Name of the parent resource, when it has one. */
  readonly parent?: string;
  readonly custom: boolean;
  /** Inputs in wire form: secrets, assets and unknowns keep their signature wrappers. */
  readonly inputs: Record<string, unknown>;
  /** Resource options that tests assert on (not part of synth's `resources.json`). */
  readonly options: RecordedOptions;
}

export interface RecordedOptions {
  /** Names of the resources this one depends on explicitly or through its inputs. */
  readonly dependsOn: readonly string[];
  readonly ignoreChanges: readonly string[];
  readonly replaceOnChanges: readonly string[];
  readonly additionalSecretOutputs: readonly string[];
  readonly protect: boolean;
  readonly retainOnDelete: boolean;
  readonly deleteBeforeReplace: boolean;
  /** Name of the explicit provider, when one was given. */
  readonly provider?: string;
  /** Name of the resource whose delete makes this one's delete unnecessary (`deletedWith`). */
  readonly deletedWith?: string;
  /** The `replacementTrigger` option in wire form, when one was given. */
  readonly replacementTrigger?: unknown;
}

/** One provider function call (`getUser`, `getTeam`, ...). */
export interface RecordedCall {
  readonly token: string;
  readonly args: Record<string, unknown>;
}

export interface MockRun<T> {
  readonly resources: readonly RecordedResource[];
  readonly calls: readonly RecordedCall[];
  /** What the program returned (its stack outputs), when it did not throw. */
  readonly result?: T;
  /** What the program threw, if it did; `resources` then shows what it had registered. */
  readonly error?: unknown;
}

export interface MockRunOptions<T> {
  readonly project: string;
  readonly stack: string;
  /** Pulumi organization (`organization` is what a self-managed backend reports). */
  readonly organization?: string;
  /** Flat engine config: `namespace:key` -> string (objects as JSON). */
  readonly config: Readonly<Record<string, string>>;
  /** Full keys (`namespace:key`) whose values are secret. */
  readonly secretKeys?: readonly string[];
  readonly program: () => Promise<T> | T;
  /**
   * Outputs of other stacks (or of this one) that StackReferences read, by fully qualified
   * stack name; a stack not listed reads as one with no outputs (never deployed).
   */
  readonly stackOutputs?: Readonly<Record<string, Record<string, unknown>>>;
  /** Answers to provider function calls that tests set up; `undefined` falls back to markers. */
  readonly callResult?: (
    token: string,
    args: Record<string, unknown>,
  ) => Record<string, unknown> | undefined;
  /**
   * What the "provider" answers to a registration, given what was recorded of it: its id and
   * state, or a thrown error (the SDK then rejects the resource's outputs, as it does when the
   * engine reports a failed step). Default: id `<name>-id`, state = inputs.
   */
  readonly newResource?: (resource: RecordedResource) => {
    readonly id: string;
    readonly state: Record<string, unknown>;
  };
}

/**
 * What a lookup returns under mocks: never an invented id, but a marker that says which lookup
 * `pulumi up` would make, e.g. `lookup:user/alice`.
 */
export function mockCallResult(
  token: string,
  args: Record<string, unknown>,
): Record<string, unknown> {
  switch (token) {
    case "github:index/getUser:getUser":
      return {
        id: `lookup:user/${String(args.username)}`,
        login: args.username,
        nodeId: `lookup:user/${String(args.username)}`,
      };
    case "github:index/getTeam:getTeam":
      return {
        id: `lookup:team/${String(args.slug)}`,
        slug: args.slug,
        nodeId: `lookup:team/${String(args.slug)}`,
      };
    case "docker:index/getRegistryImage:getRegistryImage":
      return {
        id: `lookup:image/${String(args.name)}`,
        name: args.name,
        sha256Digest: `lookup:digest/${String(args.name)}`,
      };
    default:
      return { id: `lookup:${token}` };
  }
}

/**
 * Runs a Pulumi program under the SDK's mock runtime (no CLI, no engine, no network) and
 * records every resource registration in order, with its parent and its wire-form inputs.
 *
 * The parent is read from the registration request itself: the mock monitor's public
 * `newResource` hook does not receive it.
 */
export async function runUnderMocks<T>(opts: MockRunOptions<T>): Promise<MockRun<T>> {
  const resources: RecordedResource[] = [];
  const calls: RecordedCall[] = [];
  const nameByUrn = new Map<string, string>();
  /** Registrations on their way to `newResource`, by `type::name`. */
  const pending = new Map<string, RecordedResource>();

  await pulumi.runtime.setMocks(
    {
      newResource: (args) => {
        if (args.type === "pulumi:pulumi:StackReference") {
          const name = String(args.inputs.name);
          return {
            id: name,
            state: { name, outputs: opts.stackOutputs?.[name] ?? {}, secretOutputNames: [] },
          };
        }
        const recorded = pending.get(`${args.type}::${args.name}`);
        if (opts.newResource && recorded) return opts.newResource(recorded);
        return { id: `${args.name}-id`, state: args.inputs };
      },
      call: (args) => {
        calls.push({ token: args.token, args: args.inputs as Record<string, unknown> });
        const inputs = args.inputs as Record<string, unknown>;
        try {
          return opts.callResult?.(args.token, inputs) ?? mockCallResult(args.token, inputs);
        } catch (err) {
          // The SDK reports a failed invoke with the gRPC error's `details`, as the engine
          // sends the provider's message there.
          throw Object.assign(err instanceof Error ? err : new Error(String(err)), {
            details: err instanceof Error ? err.message : String(err),
          });
        }
      },
    },
    opts.project,
    opts.stack,
    true,
    opts.organization ?? "organization",
  );
  pulumi.runtime.setAllConfig({ ...opts.config }, [...(opts.secretKeys ?? [])]);

  const monitor = pulumi.runtime.getMonitor() as unknown as MonitorWithRegister;
  const register = monitor.registerResource.bind(monitor);
  const parentName = (urn: string) => (urn ? { parent: nameByUrn.get(urn) ?? urnName(urn) } : {});
  const wireObject = (struct: { toJavaScript(): unknown } | undefined) =>
    (struct?.toJavaScript() ?? {}) as Record<string, unknown>;

  monitor.registerResource = (req, callback) => {
    const trigger = req.getReplacementTrigger()?.toJavaScript();
    const recorded: RecordedResource = {
      type: req.getType(),
      name: req.getName(),
      ...parentName(req.getParent()),
      custom: req.getCustom(),
      inputs: wireObject(req.getObject()),
      options: {
        dependsOn: req.getDependenciesList().map((urn) => nameByUrn.get(urn) ?? urnName(urn)),
        ignoreChanges: req.getIgnorechangesList(),
        replaceOnChanges: req.getReplaceonchangesList(),
        additionalSecretOutputs: req.getAdditionalsecretoutputsList(),
        protect: req.getProtect() ?? false,
        retainOnDelete: req.getRetainondelete() ?? false,
        deleteBeforeReplace: req.getDeletebeforereplace(),
        ...(req.getProvider() ? { provider: providerName(req.getProvider()) } : {}),
        ...(req.getDeletedwith() ? { deletedWith: urnName(req.getDeletedwith()) } : {}),
        ...(trigger !== undefined && trigger !== null ? { replacementTrigger: trigger } : {}),
      },
    };
    resources.push(recorded);
    pending.set(`${recorded.type}::${recorded.name}`, recorded);
    return register(req, (err, response) => {
      const urn = response?.getUrn();
      if (urn) nameByUrn.set(urn, req.getName());
      callback(err, response);
    });
  };

  // Reads (a StackReference, a resource's `get`) are registrations too, with no options.
  const read = monitor.readResource.bind(monitor);
  monitor.readResource = (req, callback) => {
    resources.push({
      type: req.getType(),
      name: req.getName(),
      ...parentName(req.getParent()),
      custom: true,
      inputs: wireObject(req.getProperties()),
      options: NO_OPTIONS,
    });
    return read(req, callback);
  };

  let outcome: { result: T } | { error: unknown };
  try {
    outcome = { result: await opts.program() };
  } catch (error) {
    outcome = { error };
  }
  await pulumi.runtime.disconnect();
  return { resources, calls, ...outcome };
}

/** The name part of a URN: `urn:pulumi:stack::project::type::name`. */
export function urnName(urn: string): string {
  return urn.slice(urn.lastIndexOf("::") + 2);
}

const NO_OPTIONS: RecordedOptions = {
  dependsOn: [],
  ignoreChanges: [],
  replaceOnChanges: [],
  additionalSecretOutputs: [],
  protect: false,
  retainOnDelete: false,
  deleteBeforeReplace: false,
};

/** A provider reference is `<urn>::<id>`; its name is the URN's last part. */
function providerName(ref: string): string {
  const urn = ref.slice(0, ref.lastIndexOf("::"));
  return urnName(urn);
}

interface RegisterRequest {
  getDependenciesList(): string[];
  getIgnorechangesList(): string[];
  getReplaceonchangesList(): string[];
  getAdditionalsecretoutputsList(): string[];
  getProtect(): boolean | undefined;
  getRetainondelete(): boolean | undefined;
  getDeletebeforereplace(): boolean;
  getProvider(): string;
  getDeletedwith(): string;
  getReplacementTrigger(): { toJavaScript(): unknown } | undefined;
  getType(): string;
  getName(): string;
  getParent(): string;
  getCustom(): boolean;
  getObject(): { toJavaScript(): unknown } | undefined;
}
interface RegisterResponse {
  getUrn(): string;
}
interface ReadRequest {
  getType(): string;
  getName(): string;
  getParent(): string;
  getProperties(): { toJavaScript(): unknown } | undefined;
}
interface MonitorWithRegister {
  readResource(
    req: ReadRequest,
    callback: (err: Error | null, response?: unknown) => void,
  ): unknown;
  registerResource(
    req: RegisterRequest,
    callback: (err: Error | null, response?: RegisterResponse) => void,
  ): unknown;
}
