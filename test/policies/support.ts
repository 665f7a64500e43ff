/**
 * Runs single policies against fake resources, the way the CrossGuard server
 * hands them over (props behind the unknown-checking proxy, secrets
 * unwrapped), without constructing a PolicyPack (that starts a server).
 */
import * as pulumi from "@pulumi/pulumi";
import {
  PolicyResource,
  PolicyResourceOptions,
  ResourceValidationArgs,
  ResourceValidationPolicy,
  StackValidationArgs,
  StackValidationPolicy,
  unknownCheckingProxy,
} from "@pulumi/policy";
import * as proxy from "@pulumi/policy/proxy";

/** The sentinels the engine sends for values unknown during preview. */
const sentinels = proxy as unknown as Record<string, string>;
export const UNKNOWN_STRING = sentinels.unknownStringValue;
export const UNKNOWN_NUMBER = sentinels.unknownNumberValue;
export const UNKNOWN_BOOL = sentinels.unknownBooleanValue;
export const UNKNOWN_ARRAY = sentinels.unknownArrayValue;
export const UNKNOWN_OBJECT = sentinels.unknownObjectValue;

export const STACK_URN = "urn:pulumi:dev::casd-registry";

export function urnOf(type: string, name: string): string {
  return `${STACK_URN}::${type}::${name}`;
}

export function options(opts: Partial<PolicyResourceOptions> = {}): PolicyResourceOptions {
  return {
    protect: false,
    ignoreChanges: [],
    aliases: [],
    customTimeouts: { createSeconds: 0, updateSeconds: 0, deleteSeconds: 0 },
    additionalSecretOutputs: [],
    ...opts,
  };
}

const notApplicable = (reason?: string): never => {
  throw new Error(`notApplicable: ${reason ?? ""}`);
};

export interface ResourceCase {
  type: string;
  props: Record<string, unknown>;
  name?: string;
  opts?: Partial<PolicyResourceOptions>;
  config?: Record<string, unknown>;
}

export function resourceArgs(c: ResourceCase): ResourceValidationArgs {
  const name = c.name ?? "subject";
  const props = unknownCheckingProxy(c.props);
  return {
    type: c.type,
    props,
    urn: urnOf(c.type, name),
    name,
    opts: options(c.opts),
    stackTags: new Map(),
    isType: () => false,
    asType: () => undefined,
    getConfig: <T extends object>() => (c.config ?? {}) as T,
    notApplicable,
  };
}

/** The messages a resource policy reports for one resource, in order. */
export async function runResource(
  policy: ResourceValidationPolicy,
  c: ResourceCase,
): Promise<string[]> {
  const messages: string[] = [];
  const args = resourceArgs(c);
  const validations = Array.isArray(policy.validateResource)
    ? policy.validateResource
    : policy.validateResource
      ? [policy.validateResource]
      : [];
  for (const v of validations) {
    await v(args, (message) => messages.push(message));
  }
  return messages;
}

/** A resource of a fake stack; dependencies are given by the names of other resources. */
export interface StackEntry {
  type: string;
  name: string;
  props: Record<string, unknown>;
  opts?: Partial<PolicyResourceOptions>;
  /** property -> names of the resources it depends on */
  propertyDependencies?: Record<string, string[]>;
  /** names of the resources it depends on */
  dependencies?: string[];
  parent?: string;
}

export function stackArgs(
  entries: StackEntry[],
  config: Record<string, unknown> = {},
): StackValidationArgs {
  const byName = new Map<string, PolicyResource>();
  const resources: PolicyResource[] = entries.map((e) => {
    const r: PolicyResource = {
      type: e.type,
      name: e.name,
      urn: urnOf(e.type, e.name),
      props: unknownCheckingProxy(e.props),
      opts: options(e.opts),
      dependencies: [],
      propertyDependencies: {},
      isType: () => false,
      asType: () => undefined,
    };
    byName.set(e.name, r);
    return r;
  });
  const lookup = (n: string): PolicyResource => {
    const r = byName.get(n);
    if (!r) {
      throw new Error(`fixture: no resource named ${n}`);
    }
    return r;
  };
  entries.forEach((e, i) => {
    const r = resources[i];
    r.dependencies = (e.dependencies ?? []).map(lookup);
    for (const [k, names] of Object.entries(e.propertyDependencies ?? {})) {
      r.propertyDependencies[k] = names.map(lookup);
    }
    if (e.parent) {
      r.parent = lookup(e.parent);
    }
  });
  return {
    resources,
    stackTags: new Map(),
    getConfig: <T extends object>() => config as T,
    notApplicable,
  };
}

export interface Reported {
  message: string;
  urn?: string;
}

/** The violations a stack policy reports, in order. */
export async function runStack(
  policy: StackValidationPolicy,
  args: StackValidationArgs,
): Promise<Reported[]> {
  const out: Reported[] = [];
  await policy.validateStack(args, (message, urn) => out.push({ message, urn }));
  return out;
}

/** Copies plain objects and arrays; shares anything else (assets). */
function clone(v: unknown): unknown {
  if (Array.isArray(v)) {
    return v.map(clone);
  }
  if (v !== null && typeof v === "object" && Object.getPrototypeOf(v) === Object.prototype) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, clone(x)]));
  }
  return v;
}

/** A deep copy of `base` with `path` set to `value` (`undefined` deletes it). */
export function withField<T extends object>(base: T, path: (string | number)[], value: unknown): T {
  const copy = clone(base) as Record<string | number, unknown>;
  let cur = copy;
  for (const k of path.slice(0, -1)) {
    cur[k] ??= {};
    cur = cur[k] as Record<string | number, unknown>;
  }
  const last = path[path.length - 1];
  if (value === undefined) {
    delete cur[last];
  } else {
    cur[last] = value;
  }
  return copy as T;
}

/** A StringAsset as CrossGuard deserializes one. */
export function stringAsset(text: string): pulumi.asset.StringAsset {
  return new pulumi.asset.StringAsset(text);
}

/** A resource as registered by a program: what CrossGuard's analyze and analyzeStack receive. */
export interface CapturedResource {
  type: string;
  name: string;
  urn: string;
  custom: boolean;
  /** Inputs, deserialized as CrossGuard does (secrets unwrapped, assets as asset objects). */
  inputs: Record<string, unknown>;
  /** Outputs, deserialized the same way. */
  outputs: Record<string, unknown>;
  opts: PolicyResourceOptions;
  parent?: string;
  dependencies: string[];
  propertyDependencies: Record<string, string[]>;
}

export interface Violation {
  policy: string;
  level: string;
  urn: string;
  message: string;
}

/**
 * Runs a whole pack over a program's resources as the engine would: every
 * resource policy on every resource's inputs, every stack policy once on
 * the outputs with dependencies resolved to resources.
 */
export async function runPack(
  pack: (ResourceValidationPolicy | StackValidationPolicy)[],
  captured: CapturedResource[],
  config: Record<string, Record<string, unknown>> = {},
): Promise<Violation[]> {
  const out: Violation[] = [];
  for (const p of pack) {
    const level = p.enforcementLevel ?? "advisory";
    if ("validateStack" in p) {
      const byUrn = new Map<string, PolicyResource>();
      const resources = captured.map((c) => {
        const r: PolicyResource = {
          type: c.type,
          name: c.name,
          urn: c.urn,
          props: unknownCheckingProxy(c.outputs),
          opts: c.opts,
          dependencies: [],
          propertyDependencies: {},
          isType: () => false,
          asType: () => undefined,
        };
        byUrn.set(c.urn, r);
        return r;
      });
      captured.forEach((c, i) => {
        const known = (urns: string[]) =>
          urns.map((u) => byUrn.get(u)).filter((r): r is PolicyResource => !!r);
        resources[i].dependencies = known(c.dependencies);
        for (const [k, urns] of Object.entries(c.propertyDependencies)) {
          resources[i].propertyDependencies[k] = known(urns);
        }
        if (c.parent && byUrn.has(c.parent)) {
          resources[i].parent = byUrn.get(c.parent);
        }
      });
      await p.validateStack(
        {
          resources,
          stackTags: new Map(),
          getConfig: <T extends object>() => (config[p.name] ?? {}) as T,
          notApplicable,
        },
        (message, urn) => out.push({ policy: p.name, level, urn: urn ?? "", message }),
      );
      continue;
    }
    for (const c of captured) {
      const args = resourceArgs({
        type: c.type,
        name: c.name,
        props: c.inputs,
        opts: c.opts,
        config: config[p.name],
      });
      args.urn = c.urn;
      const validations = Array.isArray(p.validateResource)
        ? p.validateResource
        : p.validateResource
          ? [p.validateResource]
          : [];
      for (const v of validations) {
        await v(args, (message) => out.push({ policy: p.name, level, urn: c.urn, message }));
      }
    }
  }
  return out;
}
