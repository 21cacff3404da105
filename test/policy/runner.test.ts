import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { createRequire } from "node:module";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type * as GrpcModule from "@grpc/grpc-js";
import { AnalyzerClient } from "@pulumi/pulumi/proto/analyzer_grpc_pb";
import * as analyzer from "@pulumi/pulumi/proto/analyzer_pb";
import type * as EmptyModule from "google-protobuf/google/protobuf/empty_pb";
import type * as StructModule from "google-protobuf/google/protobuf/struct_pb";
import { DEFAULT_PACK_CONFIG } from "../../policy/config";
import { policies } from "../../policy/policies";
import { TYPES } from "../../policy/resources";
import { PROJECT } from "../../src/config/schema";
import type { MockRun } from "../../src/synth/engine";
import { UP_SECRETS } from "../support/policy";
import { committedDeploy, REPO_ROOT, runProgram } from "../support/program";

/**
 * The pack as the Pulumi CLI runs it, without the CLI (which these machines cannot install):
 * the CLI's `pulumi-analyzer-policy` script resolves `@pulumi/pulumi/cmd/run-policy-pack` from
 * the pack's folder and runs it there with `<engine address> .` (pulumi/pulumi
 * sdk/nodejs/dist/pulumi-analyzer-policy; sdk/go/common/resource/plugin/analyzer_plugin.go
 * `NewPolicyAnalyzer`: pwd is the policy pack path); the runner compiles the TypeScript with
 * ts-node and prints the port of the pack's gRPC server, which the engine then calls. This test
 * does exactly that and plays the engine's part of the Analyzer protocol.
 */
const PACK_DIR = join(REPO_ROOT, "policy");

/**
 * gRPC and protobuf exactly as the SDK's generated Analyzer code loads them (the messages are
 * checked with `instanceof` when they are serialized), rather than whatever copy is hoisted.
 */
const fromSdk = createRequire(require.resolve("@pulumi/pulumi/proto/analyzer_grpc_pb"));
const grpc = fromSdk("@grpc/grpc-js") as typeof GrpcModule;
const { Empty } = fromSdk("google-protobuf/google/protobuf/empty_pb") as typeof EmptyModule;
const { Struct } = fromSdk("google-protobuf/google/protobuf/struct_pb") as typeof StructModule;
type Empty = EmptyModule.Empty;
type Struct = StructModule.Struct;

function startPack(): Promise<{ child: ChildProcess; port: number; stderr: () => string }> {
  const runner = require.resolve("@pulumi/pulumi/cmd/run-policy-pack", { paths: [PACK_DIR] });
  const child = spawn(process.execPath, [runner, "127.0.0.1:1", "."], {
    cwd: PACK_DIR,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stderr?.on("data", (d: Buffer) => {
    err += d.toString();
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no port after 90 s; stderr:\n${err}`)),
      90_000,
    );
    child.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
      const port = /^(\d+)\s*$/m.exec(out)?.[1];
      if (port) {
        clearTimeout(timer);
        resolve({ child, port: Number(port), stderr: () => err });
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`the pack exited (${code}) before serving; stderr:\n${err}`));
    });
  });
}

function call<Req, Res>(
  method: (req: Req, cb: (err: GrpcModule.ServiceError | null, res: Res) => void) => unknown,
  req: Req,
): Promise<Res> {
  return new Promise((resolve, reject) =>
    method(req, (err, res) => (err ? reject(err) : resolve(res))),
  );
}

/** JSON-shaped data as a protobuf Struct, the engine's encoding of properties and config. */
function toStruct(value: object): Struct {
  return Struct.fromJavaScript(value as Parameters<typeof Struct.fromJavaScript>[0]);
}

function options(): analyzer.AnalyzerResourceOptions {
  return new analyzer.AnalyzerResourceOptions().setProtect(false).setIgnorechangesList([]);
}

/** A registration as the engine sends it: wire-form inputs, secrets still wrapped. */
function wireResources(run: MockRun<unknown>, stack: string) {
  if (run.error !== undefined) throw new Error(`the program failed: ${String(run.error)}`);
  return run.resources.map((r) => ({
    type: r.type,
    name: r.name,
    urn: `urn:pulumi:${stack}::${PROJECT}::${r.type}::${r.name}`,
    inputs: r.inputs,
  }));
}

type Wire = ReturnType<typeof wireResources>[number];

function analyzeRequest(r: Wire): analyzer.AnalyzeRequest {
  return new analyzer.AnalyzeRequest()
    .setType(r.type)
    .setName(r.name)
    .setUrn(r.urn)
    .setProperties(toStruct(r.inputs))
    .setOptions(options());
}

function stackRequest(resources: readonly Wire[]): analyzer.AnalyzeStackRequest {
  return new analyzer.AnalyzeStackRequest().setResourcesList(
    resources.map((r) =>
      new analyzer.AnalyzerResource()
        .setType(r.type)
        .setName(r.name)
        .setUrn(r.urn)
        .setProperties(toStruct(r.inputs))
        .setOptions(options()),
    ),
  );
}

describe("the pack run as the Pulumi CLI runs it", { timeout: 180_000 }, () => {
  let pack: Awaited<ReturnType<typeof startPack>>;
  let client: AnalyzerClient;
  let production: Wire[];

  before(async () => {
    pack = await startPack();
    client = new AnalyzerClient(`127.0.0.1:${pack.port}`, grpc.credentials.createInsecure());
    production = wireResources(
      await runProgram({
        stack: "production",
        mode: "up",
        secrets: UP_SECRETS,
        overrides: committedDeploy("production"),
      }),
      "production",
    );
  });

  after(() => {
    client?.close();
    pack?.child.kill();
  });

  test("serves every policy, mandatory, with the pack config's defaults in its schema", async () => {
    const info = await call<Empty, analyzer.AnalyzerInfo>(
      client.getAnalyzerInfo.bind(client),
      new Empty(),
    );
    assert.equal(info.getName(), "clicky-delivery-production-access");
    assert.equal(info.getSupportsconfig(), true);
    const served = info.getPoliciesList();
    assert.deepEqual(
      served.map((p) => p.getName()),
      policies.map((p) => p.name),
    );
    for (const p of served) {
      assert.equal(p.getEnforcementlevel(), analyzer.EnforcementLevel.MANDATORY, p.getName());
      const schema = p.getConfigschema()?.getProperties()?.toJavaScript() as Record<
        string,
        { default: unknown }
      >;
      for (const [key, value] of Object.entries(DEFAULT_PACK_CONFIG)) {
        assert.deepEqual(schema[key]?.default, value, `${p.getName()}: ${key}`);
      }
    }
  });

  test("takes the config the engine sends (defaults filled in)", async () => {
    const request = new analyzer.ConfigureAnalyzerRequest();
    for (const p of policies) {
      request
        .getPolicyconfigMap()
        .set(
          p.name,
          new analyzer.PolicyConfig()
            .setEnforcementlevel(analyzer.EnforcementLevel.MANDATORY)
            .setProperties(toStruct(DEFAULT_PACK_CONFIG)),
        );
    }
    await call(client.configure.bind(client), request);
  });

  test("the committed production stack: no diagnostics, resource by resource and as a stack", async () => {
    for (const r of production) {
      const res = await call<analyzer.AnalyzeRequest, analyzer.AnalyzeResponse>(
        client.analyze.bind(client),
        analyzeRequest(r),
      );
      assert.deepEqual(
        res.getDiagnosticsList().map((d) => d.getMessage()),
        [],
        `${r.type} ${r.name}`,
      );
    }
    const res = await call<analyzer.AnalyzeStackRequest, analyzer.AnalyzeResponse>(
      client.analyzeStack.bind(client),
      stackRequest(production),
    );
    assert.deepEqual(
      res.getDiagnosticsList().map((d) => d.getMessage()),
      [],
    );
  });

  test("a gated environment without reviewers: a mandatory diagnostic naming policy and resource", async () => {
    const env = production.find((r) => r.type === TYPES.environment && r.name === "production");
    assert.ok(env);
    const res = await call<analyzer.AnalyzeRequest, analyzer.AnalyzeResponse>(
      client.analyze.bind(client),
      analyzeRequest({ ...env, inputs: { ...env.inputs, reviewers: [] } }),
    );
    const [d, ...rest] = res.getDiagnosticsList();
    assert.equal(rest.length, 0);
    assert.equal(d?.getPolicyname(), "gated-environment-approval");
    assert.equal(d?.getPolicypackname(), "clicky-delivery-production-access");
    assert.equal(d?.getEnforcementlevel(), analyzer.EnforcementLevel.MANDATORY);
    assert.match(
      d?.getMessage() ?? "",
      /\ngithub:index\/repositoryEnvironment:RepositoryEnvironment "production": the approval-gated environment "production" requires no reviewer/,
    );
  });

  test("the drift environment allowing release/*: a stack diagnostic on that policy's URN", async () => {
    const main = production.find((r) => r.name === "drift-branch-main");
    assert.ok(main);
    const release = {
      ...main,
      name: "drift-branch-release",
      urn: main.urn.replace(/drift-branch-main$/, "drift-branch-release"),
      inputs: { ...main.inputs, branchPattern: "release/*" },
    };
    const res = await call<analyzer.AnalyzeStackRequest, analyzer.AnalyzeResponse>(
      client.analyzeStack.bind(client),
      stackRequest([...production, release]),
    );
    const [d, ...rest] = res.getDiagnosticsList();
    assert.equal(rest.length, 0);
    assert.equal(d?.getPolicyname(), "production-secret-placement");
    assert.equal(d?.getUrn(), release.urn);
    assert.match(
      d?.getMessage() ?? "",
      /lets branch "release\/\*" deploy to the drift environment/,
    );
  });

  test("printed nothing on stderr", () => {
    assert.equal(pack.stderr(), "");
  });
});
