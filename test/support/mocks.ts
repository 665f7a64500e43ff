/**
 * Mocks for running the real program (or one component) under
 * `pulumi.runtime.setMocks`: records every resource with its inputs and
 * resource options, materializes `tls:*` as real X.509, and refuses any
 * unmocked provider function call.
 */
import * as path from "node:path";
import type * as pulumiType from "@pulumi/pulumi";
import { isTlsToken, materializeTls } from "./x509";

export const PROJECT = "casd-registry";
export const REPO_ROOT = path.resolve(__dirname, "../..");

export const SECRET_SIG = "4dabf18193072939515e22adb298388d";

/** Unwraps the SDK's serialized secret form recursively. */
export function unwrap(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(unwrap);
  if (v && typeof v === "object") {
    const o = v as Record<string, unknown>;
    if (o[SECRET_SIG] === "1b47061264138c4ac30d75fd1eb44270") return unwrap(o.value);
    return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, unwrap(x)]));
  }
  return v;
}

/** True when the serialized value (or any part of it) is a wrapped secret. */
export function containsSecret(v: unknown): boolean {
  if (Array.isArray(v)) return v.some(containsSecret);
  if (v && typeof v === "object") {
    const o = v as Record<string, unknown>;
    if (o[SECRET_SIG] === "1b47061264138c4ac30d75fd1eb44270") return true;
    return Object.values(o).some(containsSecret);
  }
  return false;
}

export interface Registered {
  type: string;
  name: string;
  /** Inputs as the mock saw them (secrets still wrapped). */
  rawInputs: Record<string, unknown>;
  /** Inputs with secrets unwrapped. */
  inputs: Record<string, any>;
  outputs: Record<string, any>;
}

export interface RecordedOptions {
  type: string;
  name: string;
  protect?: boolean;
  retainOnDelete?: boolean;
  replacementTrigger?: unknown;
  additionalSecretOutputs?: string[];
  dependsOn?: unknown;
  parent?: string;
}

export type OutputsFor = (
  args: pulumiType.runtime.MockResourceArgs,
  inputs: Record<string, any>,
) => Promise<Record<string, unknown> | undefined> | Record<string, unknown> | undefined;

/**
 * Outputs a provider computes that the program reads, for resources whose
 * outputs are otherwise their inputs.
 */
export function providerComputed(
  type: string,
  inputs: Record<string, any>,
): Record<string, unknown> {
  switch (type) {
    case "kubernetes:helm.sh/v3:Release":
      return {
        status: {
          name: inputs.name,
          namespace: inputs.namespace,
          status: "deployed",
          version: inputs.version,
          revision: 1,
        },
      };
    default:
      return {};
  }
}

/** Records resources; tls via real X.509; other resources echo inputs unless `outputsFor` says otherwise. */
export class RecordingMocks implements pulumiType.runtime.Mocks {
  readonly resources: Registered[] = [];

  constructor(private readonly outputsFor?: OutputsFor) {}

  async newResource(
    args: pulumiType.runtime.MockResourceArgs,
  ): Promise<{ id: string; state: Record<string, any> }> {
    const inputs = unwrap(args.inputs) as Record<string, any>;
    let found: Record<string, any> | undefined = await this.outputsFor?.(args, inputs);
    if (!found && isTlsToken(args.type)) found = await materializeTls(args.type, args.inputs);
    const outputs: Record<string, any> = found ?? {
      ...args.inputs,
      ...providerComputed(args.type, inputs),
    };
    this.resources.push({
      type: args.type,
      name: args.name,
      rawInputs: args.inputs,
      inputs,
      outputs: unwrap(outputs) as Record<string, any>,
    });
    return { id: `${args.name}-id`, state: outputs };
  }

  call(args: pulumiType.runtime.MockCallArgs): Record<string, any> {
    throw new Error(`unmocked provider function ${args.token}`);
  }

  ofType(type: string): Registered[] {
    return this.resources.filter((r) => r.type === type);
  }

  byName(name: string): Registered {
    const r = this.resources.find((x) => x.name === name);
    if (!r)
      throw new Error(
        `no resource named ${name}; have: ${this.resources.map((x) => x.name).join(", ")}`,
      );
    return r;
  }
}

export interface ProgramRun {
  /** Exports resolved to plain values. */
  exports: Record<string, unknown>;
  /** Exports as the program returned them (Outputs kept, e.g. for pulumi.isSecret). */
  outputs: Record<string, unknown>;
  mocks: RecordingMocks;
  options: RecordedOptions[];
  pulumi: typeof pulumiType;
}

/** Resolves an Output (or plain value) the way a test wants it. */
export function valueOf<T>(pulumi: typeof pulumiType, o: pulumiType.Input<T>): Promise<T> {
  return new Promise((resolve) => pulumi.output(o).apply((v) => resolve(v as T)));
}

/**
 * Runs the real program (`infra/index.ts`, or `entry`) under mocks with the
 * given config (keys without the project prefix; objects as JSON text or
 * values). Modules are reset first, so each call is a fresh `pulumi up` of
 * a new stack.
 */
export async function runProgram(
  config: Record<string, unknown>,
  opts: {
    secrets?: Record<string, string>;
    mocks?: RecordingMocks;
    stack?: string;
    entry?: string;
  } = {},
): Promise<ProgramRun> {
  jest.resetModules();
  const pulumi: typeof pulumiType = await import("@pulumi/pulumi");
  const mocks = opts.mocks ?? new RecordingMocks();
  const all: Record<string, string> = {};
  for (const [k, v] of Object.entries(config))
    all[`${PROJECT}:${k}`] = typeof v === "string" ? v : JSON.stringify(v);
  const secretKeys: string[] = [];
  for (const [k, v] of Object.entries(opts.secrets ?? {})) {
    all[`${PROJECT}:${k}`] = v;
    secretKeys.push(`${PROJECT}:${k}`);
  }
  pulumi.runtime.setAllConfig(all, secretKeys);
  await pulumi.runtime.setMocks(mocks, PROJECT, opts.stack ?? "test", false);
  const options: RecordedOptions[] = [];
  const entry = opts.entry ?? path.join(REPO_ROOT, "infra");
  let program: Record<string, unknown> = {};
  // As the engine does: the program runs inside the root stack resource.
  await pulumi.runtime.runInPulumiStack(async () => {
    pulumi.runtime.registerStackTransformation((a) => {
      options.push({
        type: a.type,
        name: a.name,
        protect: a.opts.protect,
        retainOnDelete: a.opts.retainOnDelete,
        replacementTrigger: (a.opts as { replacementTrigger?: unknown }).replacementTrigger,
        additionalSecretOutputs: (a.opts as { additionalSecretOutputs?: string[] })
          .additionalSecretOutputs,
        dependsOn: a.opts.dependsOn,
        parent: a.opts.parent
          ? (a.opts.parent as unknown as { __name?: string }).__name
          : undefined,
      });
      return undefined;
    });
    program = (await import(entry)) as Record<string, unknown>;
    return program;
  });
  // Wait for every registration still in flight (resources no export depends on), then the exports.
  await (pulumi.runtime as unknown as { waitForRPCs(): Promise<void> }).waitForRPCs();
  const resolved: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(program)) {
    resolved[k] = pulumi.Output.isInstance(v) ? await valueOf(pulumi, v) : v;
  }
  return { exports: resolved, outputs: program, mocks, options, pulumi };
}

export { sshKeyPair } from "./ssh-keys";
