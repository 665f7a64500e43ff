/**
 * Reading resource properties the way CrossGuard hands them over.
 *
 * - Properties come wrapped in a proxy that throws `UnknownValueError` when a
 *   value is unknown (during preview, anything computed from another
 *   resource's outputs). Policies read through `at()`, which answers
 *   `UNKNOWN` instead, and never report a violation on an unknown value.
 * - Secrets arrive unwrapped (plain values): a policy cannot see whether an
 *   input is secret, only what it contains.
 * - Assets arrive as asset objects whose `text` is a Promise.
 */
import {
  PolicyResource,
  ReportViolation,
  ResourceValidation,
  ResourceValidationArgs,
  UnknownValueError,
} from "@pulumi/policy";
import { parseAllDocuments } from "yaml";

/** Type tokens the pack inspects (the pack does not import provider SDKs). */
export const TYPES = Object.freeze({
  privateKey: "tls:index/privateKey:PrivateKey",
  selfSignedCert: "tls:index/selfSignedCert:SelfSignedCert",
  certRequest: "tls:index/certRequest:CertRequest",
  locallySignedCert: "tls:index/locallySignedCert:LocallySignedCert",
  remoteCommand: "command:remote:Command",
  copyToRemote: "command:remote:CopyToRemote",
  dockerProvider: "pulumi:providers:docker",
  dockerContainer: "docker:index/container:Container",
  dockerRemoteImage: "docker:index/remoteImage:RemoteImage",
  helmRelease: "kubernetes:helm.sh/v3:Release",
  helmChartV4: "kubernetes:helm.sh/v4:Chart",
});

/** Marks a value that cannot be known yet (preview). */
export const UNKNOWN: unique symbol = Symbol("unknown during preview");
export type Unknown = typeof UNKNOWN;

/** True for the error the property proxy throws on an unknown value. */
export function isUnknownValueError(e: unknown): boolean {
  if (e instanceof UnknownValueError) {
    return true;
  }
  // Duck-typed too: a second copy of @pulumi/policy has its own class.
  const o = e as { unknownTypeSentinel?: unknown; props?: unknown } | null;
  return (
    typeof o === "object" &&
    o !== null &&
    o.unknownTypeSentinel !== undefined &&
    Array.isArray(o.props)
  );
}

/** `obj[path[0]][path[1]]...`: `undefined` when absent, `UNKNOWN` when not known yet. */
export function at(obj: unknown, ...path: (string | number)[]): unknown {
  let cur: unknown = obj;
  for (const key of path) {
    if (cur === null || typeof cur !== "object") {
      return undefined;
    }
    try {
      cur = (cur as Record<string | number, unknown>)[key];
    } catch (e) {
      if (isUnknownValueError(e)) {
        return UNKNOWN;
      }
      throw e;
    }
  }
  return cur;
}

/** Like `at`, for an array: its elements (unknown ones as `UNKNOWN`), `[]` when absent. */
export function listAt(obj: unknown, ...path: (string | number)[]): unknown[] | Unknown {
  const v = at(obj, ...path);
  if (v === UNKNOWN) {
    return UNKNOWN;
  }
  if (!Array.isArray(v)) {
    return [];
  }
  const out: unknown[] = [];
  for (let i = 0; i < v.length; i++) {
    out.push(at(v, i));
  }
  return out;
}

/** The keys of an object read through the proxy (`[]` for anything else). */
export function keysOf(obj: unknown): string[] {
  return obj !== null && typeof obj === "object" && !Array.isArray(obj) ? Object.keys(obj) : [];
}

/** A plain (non-array) object, possibly proxied. */
export function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function isAsset(v: unknown): boolean {
  try {
    return isRecord(v) && v["__pulumiAsset"] === true;
  } catch {
    return false;
  }
}

/** The object behind the unknown-checking proxy (a Promise cannot be awaited through it). */
function unproxied(v: unknown): unknown {
  try {
    const target = (v as Record<string, unknown>)["__getSpecialProxyTarget"];
    return target ?? v;
  } catch {
    return v;
  }
}

/** A string found in a resource's properties, with where it was found. */
export interface Found {
  /** Dotted path, e.g. `values.harborAdminPassword`, `source.text`, `containers[0].image`. */
  path: string;
  text: string;
}

const join = (base: string, key: string | number): string =>
  typeof key === "number" ? `${base}[${key}]` : base ? `${base}.${key}` : key;

/**
 * Every known string under `value`, asset texts included (as `<path>.text`).
 * Unknown values and the keys in `skip` (top level only) are left out.
 */
export async function strings(value: unknown, skip: string[] = [], path = ""): Promise<Found[]> {
  const out: Found[] = [];
  const visit = async (v: unknown, p: string, top: boolean): Promise<void> => {
    if (v === UNKNOWN || v === undefined || v === null) {
      return;
    }
    if (typeof v === "string") {
      out.push({ path: p, text: v });
      return;
    }
    if (typeof v !== "object") {
      return;
    }
    if (isAsset(v)) {
      const raw = unproxied(v) as { text?: unknown };
      const text = await Promise.resolve(raw.text).catch(() => undefined);
      if (typeof text === "string") {
        out.push({ path: join(p, "text"), text });
      }
      return;
    }
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        await visit(at(v, i), join(p, i), false);
      }
      return;
    }
    for (const k of Object.keys(v)) {
      if (top && skip.includes(k)) {
        continue;
      }
      await visit(at(v, k), join(p, k), false);
    }
  };
  await visit(value, path, true);
  return out;
}

/** The YAML mappings in `text` (every document of a stream that parses cleanly). */
export function yamlMappings(text: string): Record<string, unknown>[] {
  if (!text.includes(":")) {
    return [];
  }
  const out: Record<string, unknown>[] = [];
  try {
    for (const doc of parseAllDocuments(text, { uniqueKeys: false })) {
      if (doc.errors.length > 0) {
        continue;
      }
      const js: unknown = doc.toJS({ maxAliasCount: 100 });
      if (isRecord(js)) {
        out.push(js);
      }
    }
  } catch {
    return [];
  }
  return out;
}

/** Keys only Harbor's `harbor.yml` has together with `hostname`. */
const HARBOR_YML_KEYS = [
  "harbor_admin_password",
  "data_volume",
  "database",
  "jobservice",
  "trivy",
  "https",
];

/** A mapping that is a Harbor `harbor.yml` (the offline installer's configuration). */
export function isHarborYml(doc: Record<string, unknown>): boolean {
  return "hostname" in doc && HARBOR_YML_KEYS.filter((k) => k in doc).length >= 2;
}

/** Every `harbor.yml` found in a resource's strings (command stdin/scripts, copied assets). */
export async function harborYmls(
  props: unknown,
): Promise<{ path: string; doc: Record<string, unknown> }[]> {
  const out: { path: string; doc: Record<string, unknown> }[] = [];
  for (const f of await strings(props, ["connection"])) {
    for (const doc of yamlMappings(f.text)) {
      if (isHarborYml(doc)) {
        out.push({ path: f.path, doc });
      }
    }
  }
  return out;
}

/** A Helm release or chart whose chart is Harbor's. */
export function isHarborChart(props: unknown): boolean {
  const chart = at(props, "chart");
  return typeof chart === "string" && /(^|[/:])harbor([-/@.]|$)/.test(chart);
}

/** Runs `check` only for resources of the given types (one type: fast filtering by the server). */
export function forTypes(
  types: string[],
  check: (
    props: unknown,
    args: ResourceValidationArgs,
    report: ReportViolation,
  ) => Promise<void> | void,
): ResourceValidation {
  const fn: ResourceValidation = (args, report) => {
    if (!types.includes(args.type)) {
      return;
    }
    return check(args.props, args, report);
  };
  if (types.length === 1) {
    (fn as unknown as { __pulumiType: string }).__pulumiType = types[0];
  }
  return fn;
}

/**
 * The resources of type `type` whose outputs flow into `resource`'s property
 * `prop`. Uses the property's own dependencies when the engine recorded them,
 * otherwise the resource's dependencies (older state).
 */
export function feeding(resource: PolicyResource, prop: string, type: string): PolicyResource[] {
  const byProp = resource.propertyDependencies ?? {};
  const deps = prop in byProp ? byProp[prop] : (resource.dependencies ?? []);
  const out: PolicyResource[] = [];
  for (const d of deps) {
    if (d.type === type && !out.some((o) => o.urn === d.urn)) {
      out.push(d);
    }
  }
  return out;
}

function mergeInto(
  base: Record<string, unknown>,
  over: Record<string, unknown>,
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const k of keysOf(over)) {
    const v = at(over, k);
    const b = out[k];
    out[k] = isRecord(b) && isRecord(v) ? mergeInto(b, v) : v;
  }
  return out;
}

/**
 * The values a Helm release or chart passes to its chart: `valueYamlFiles`
 * (in order) under `values`, as Helm merges them. `UNKNOWN` while `values`
 * itself is unknown; unknown leaves stay `UNKNOWN`.
 */
export async function chartValues(props: unknown): Promise<Record<string, unknown> | Unknown> {
  const values = at(props, "values");
  if (values === UNKNOWN) {
    return UNKNOWN;
  }
  let merged: Record<string, unknown> = {};
  for (const f of await strings(at(props, "valueYamlFiles"), [], "valueYamlFiles")) {
    for (const doc of yamlMappings(f.text)) {
      merged = mergeInto(merged, doc);
    }
  }
  return isRecord(values) ? mergeInto(merged, values) : merged;
}

/** Every known scalar under `value` with its path and own key (assets are not opened; see `strings`). */
export function leaves(
  value: unknown,
  skip: string[] = [],
  path = "",
): { path: string; key: string | number | undefined; value: string | number | boolean }[] {
  const out: {
    path: string;
    key: string | number | undefined;
    value: string | number | boolean;
  }[] = [];
  const visit = (v: unknown, p: string, key: string | number | undefined, top: boolean): void => {
    if (v === UNKNOWN || v === undefined || v === null) {
      return;
    }
    if (typeof v === "string" || typeof v === "number" || typeof v === "boolean") {
      out.push({ path: p, key, value: v });
      return;
    }
    if (typeof v !== "object" || isAsset(v)) {
      return;
    }
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        visit(at(v, i), join(p, i), i, false);
      }
      return;
    }
    for (const k of Object.keys(v)) {
      if (!(top && skip.includes(k))) {
        visit(at(v, k), join(p, k), k, false);
      }
    }
  };
  visit(value, path, undefined, true);
  return out;
}
