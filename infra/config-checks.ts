/**
 * A small, typed toolkit for validating stack config. Every check records a
 * problem (key, bad value, what is wrong, how to fix it) instead of throwing,
 * so that one `pulumi up` reports every bad key at once, before any resource
 * exists.
 */
import * as net from "node:net";

export const PROJECT = "casd-registry";

export interface ConfigProblem {
  /** Full config path, e.g. `registryHost.address` (shown as `casd-registry:registryHost.address`). */
  key: string;
  /** The offending value, rendered for humans (secrets are never rendered). */
  value: string;
  problem: string;
  fix: string;
}

/** Renders a value for an error message; long values are shortened. */
export function show(value: unknown): string {
  if (value === undefined) return "(unset)";
  const text =
    typeof value === "string" ? JSON.stringify(value) : (JSON.stringify(value) ?? String(value));
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

export function formatProblem(p: ConfigProblem): string {
  return `${PROJECT}:${p.key} = ${p.value}: ${p.problem}. Fix: ${p.fix}.`;
}

/** Collects problems while a config section is read. */
export class Problems {
  readonly list: ConfigProblem[] = [];

  add(key: string, value: unknown, problem: string, fix: string, secret = false): void {
    this.list.push({ key, value: secret ? "[secret]" : show(value), problem, fix });
  }

  get empty(): boolean {
    return this.list.length === 0;
  }
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * A view on one config object (or the top level) that reads typed fields,
 * applies defaults and records problems under the field's full path.
 */
export class Section {
  private readonly seen = new Set<string>();

  constructor(
    readonly path: string,
    private readonly data: Obj,
    readonly problems: Problems,
  ) {}

  /** Reads a nested object; a non-object is recorded as a problem and treated as empty. */
  static of(path: string, value: unknown, problems: Problems, hint: string): Section {
    if (value === undefined || value === null) return new Section(path, {}, problems);
    if (!isObj(value)) {
      problems.add(path, value, "must be an object", hint);
      return new Section(path, {}, problems);
    }
    return new Section(path, value, problems);
  }

  key(field: string): string {
    return this.path ? `${this.path}.${field}` : field;
  }

  raw(field: string): unknown {
    this.seen.add(field);
    return this.data[field];
  }

  has(field: string): boolean {
    return this.data[field] !== undefined && this.data[field] !== null;
  }

  section(field: string): Section {
    return Section.of(
      this.key(field),
      this.raw(field),
      this.problems,
      `set ${this.key(field)} to an object (pulumi config set --path ${this.key(field)}.<field> <value>)`,
    );
  }

  string(field: string, def?: string): string | undefined {
    const v = this.raw(field);
    if (v === undefined || v === null || v === "") return def;
    if (typeof v !== "string") {
      this.problems.add(
        this.key(field),
        v,
        "must be a string",
        `quote the value of ${this.key(field)}`,
      );
      return def;
    }
    return v;
  }

  requireString(field: string, fix: string): string {
    const v = this.string(field);
    if (v === undefined) {
      this.problems.add(this.key(field), undefined, "is required", fix);
      return "";
    }
    return v;
  }

  bool(field: string, def: boolean): boolean {
    const v = this.raw(field);
    if (v === undefined || v === null) return def;
    if (typeof v === "boolean") return v;
    if (v === "true" || v === "false") return v === "true";
    this.problems.add(
      this.key(field),
      v,
      "must be true or false",
      `set ${this.key(field)} to true or false`,
    );
    return def;
  }

  /** An integer within [min, max]; out-of-range values are recorded and the default is returned. */
  int(field: string, def: number, min: number, max: number, unit = ""): number {
    const v = this.raw(field);
    if (v === undefined || v === null) return def;
    const n = typeof v === "string" && /^-?\d+$/.test(v.trim()) ? Number(v) : v;
    const u = unit ? ` ${unit}` : "";
    if (typeof n !== "number" || !Number.isInteger(n)) {
      this.problems.add(
        this.key(field),
        v,
        "must be a whole number",
        `set ${this.key(field)} to a whole number between ${min} and ${max}${u}`,
      );
      return def;
    }
    if (n < min || n > max) {
      this.problems.add(
        this.key(field),
        v,
        `is out of range (${min} to ${max}${u})`,
        `set ${this.key(field)} to a value between ${min} and ${max}${u}`,
      );
      return def;
    }
    return n;
  }

  oneOf<T extends string>(field: string, allowed: readonly T[], def: T): T {
    const v = this.raw(field);
    if (v === undefined || v === null || v === "") return def;
    if (typeof v === "string" && (allowed as readonly string[]).includes(v)) return v as T;
    this.problems.add(
      this.key(field),
      v,
      `is not one of ${allowed.join(", ")}`,
      `set ${this.key(field)} to one of ${allowed.join(", ")}`,
    );
    return def;
  }

  stringList(field: string): string[] {
    const v = this.raw(field);
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) {
      this.problems.add(
        this.key(field),
        v,
        "must be a list of strings",
        `set ${this.key(field)} to a YAML list of strings`,
      );
      return [];
    }
    return v as string[];
  }

  list(field: string): unknown[] {
    const v = this.raw(field);
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) {
      this.problems.add(
        this.key(field),
        v,
        "must be a list",
        `set ${this.key(field)} to a YAML list`,
      );
      return [];
    }
    return v;
  }

  /** Records every field that was present but never read: almost always a typo. */
  rejectUnknown(): void {
    for (const field of Object.keys(this.data)) {
      if (this.seen.has(field)) continue;
      const known = [...this.seen];
      const near = known.find((k) => editDistance(k.toLowerCase(), field.toLowerCase()) <= 2);
      this.problems.add(
        this.key(field),
        this.data[field],
        "is not a known setting",
        near
          ? `did you mean ${this.key(near)}? Rename it`
          : `remove it (known: ${known.sort().join(", ")})`,
      );
    }
  }
}

export function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i][j] = Math.min(
        d[i - 1][j] + 1,
        d[i][j - 1] + 1,
        d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
  }
  return d[a.length][b.length];
}

/** RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens, at most 253 characters. */
export function isDnsName(name: string): boolean {
  if (name.length === 0 || name.length > 253 || name.endsWith(".")) return false;
  return name.split(".").every((label) => /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i.test(label));
}

export function isIp(address: string): boolean {
  return net.isIP(address) !== 0;
}

/** An OpenSSH public host key line: `<type> <base64> [comment]`. */
export function isSshPublicKey(line: string): boolean {
  const m =
    /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(?:256|384|521)) ([A-Za-z0-9+/]+={0,2})(?: .*)?$/.exec(
      line.trim(),
    );
  if (!m) return false;
  // The blob starts with the length-prefixed key type: check it agrees with the first field.
  const blob = Buffer.from(m[2], "base64");
  if (blob.length < 4) return false;
  const len = blob.readUInt32BE(0);
  return blob.subarray(4, 4 + len).toString("latin1") === m[1];
}

export function isSha256Hex(s: string): boolean {
  return /^[0-9a-f]{64}$/.test(s);
}
