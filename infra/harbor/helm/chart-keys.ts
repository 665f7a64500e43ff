/**
 * The documented keys of a Harbor chart version, read from its `values.yaml`,
 * and a check of built values against them: a misspelt key is an error
 * instead of a silently ignored value.
 *
 * Documented means: a key present in the YAML, or a key shown commented out
 * (`# caBundleSecretName:`, `#regionendpoint: ...`), which is how the chart
 * documents its optional keys. Below a map whose default is empty (`{}`) or
 * whose name marks it free-form (annotations, labels, ...), any key is allowed.
 */
import { parseDocument, isMap, isSeq, isScalar, type Node as YamlNode } from "yaml";
import { editDistance } from "../../config-checks";

export type DefaultKind = "map" | "list" | "scalar" | "null" | "commented";

export interface DocumentedKeys {
  /** Dotted path -> kind of the chart's default at that path. */
  readonly kinds: ReadonlyMap<string, DefaultKind>;
}

/** Maps whose keys belong to the user, not to the chart. */
export const FREE_FORM_KEYS: readonly string[] = [
  "annotations",
  "labels",
  "podAnnotations",
  "podLabels",
  "serviceAnnotations",
  "nodeSelector",
  "resources",
  "affinity",
];

function keyText(k: unknown): string {
  return isScalar(k) ? String(k.value) : String(k);
}

function walk(
  node: YamlNode | null | undefined,
  prefix: string,
  out: Map<string, DefaultKind>,
): void {
  if (!isMap(node)) return;
  for (const pair of node.items) {
    const path = prefix ? `${prefix}.${keyText(pair.key)}` : keyText(pair.key);
    const v = pair.value as YamlNode | null;
    if (isMap(v)) {
      out.set(path, "map");
      walk(v, path, out);
    } else if (isSeq(v)) {
      out.set(path, "list");
    } else if (v === null || v === undefined || (isScalar(v) && v.value === null)) {
      out.set(path, "null");
    } else {
      out.set(path, "scalar");
    }
  }
}

const REAL_KEY = /^( *)([A-Za-z_][A-Za-z0-9_.-]*|"[^"]+"):(?:\s|$)/;
const COMMENTED_KEY = /^( *)#( *)([a-z][A-Za-z0-9_]*):(?:\s|$)/;

/** The keys documented by a chart's values.yaml text (real and commented-out). Pure. */
export function documentedKeys(valuesYaml: string): DocumentedKeys {
  const doc = parseDocument(valuesYaml);
  if (doc.errors.length > 0)
    throw new Error(`values.yaml does not parse: ${doc.errors[0].message}`);
  const kinds = new Map<string, DefaultKind>();
  walk(doc.contents as YamlNode, "", kinds);

  // Commented-out keys: their depth comes from the indentation of the comment.
  const stack: { indent: number; key: string }[] = [];
  for (const line of valuesYaml.split("\n")) {
    let indent: number;
    let key: string;
    let commented = false;
    const real = REAL_KEY.exec(line);
    const com = real ? null : COMMENTED_KEY.exec(line);
    if (real) {
      indent = real[1].length;
      key = real[2].replace(/^"|"$/g, "");
    } else if (com) {
      indent = com[1].length + Math.max(0, com[2].length - 1);
      key = com[3];
      commented = true;
    } else {
      continue;
    }
    while (stack.length > 0 && stack[stack.length - 1].indent >= indent) stack.pop();
    const path = [...stack.map((s) => s.key), key].join(".");
    if (commented && !kinds.has(path)) kinds.set(path, "commented");
    stack.push({ indent, key });
  }
  return { kinds };
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** True when any key below `path` is the user's (free-form or empty-map default). */
function freeForm(path: string): boolean {
  const last = path.split(".").pop() ?? "";
  return FREE_FORM_KEYS.includes(last);
}

/**
 * Every problem of `values` against the documented keys, one line each:
 * `<path>: ...`. Empty when every key is documented and sections stay sections.
 */
export function checkValuesKeys(
  values: Record<string, unknown>,
  keys: DocumentedKeys,
  chart = "the chart",
): string[] {
  const problems: string[] = [];
  const visit = (obj: Record<string, unknown>, prefix: string): void => {
    for (const [k, v] of Object.entries(obj)) {
      const path = prefix ? `${prefix}.${k}` : k;
      const kind = keys.kinds.get(path);
      if (kind === undefined) {
        const siblings = [...keys.kinds.keys()].filter(
          (p) =>
            p.startsWith(prefix ? `${prefix}.` : "") &&
            !p.slice(prefix ? prefix.length + 1 : 0).includes("."),
        );
        const near = siblings
          .map((p) => p.split(".").pop() ?? "")
          .find((s) => editDistance(s.toLowerCase(), k.toLowerCase()) <= 2);
        problems.push(
          `${path}: is not a documented key of ${chart}'s values.yaml${near ? ` (did you mean ${prefix ? `${prefix}.` : ""}${near}?)` : ""}`,
        );
        continue;
      }
      if (kind === "map" && !isPlainObject(v)) {
        problems.push(
          `${path}: is a section in ${chart}'s values.yaml, but the value is ${JSON.stringify(v)}`,
        );
        continue;
      }
      if ((kind === "scalar" || kind === "list") && isPlainObject(v)) {
        problems.push(
          `${path}: is a ${kind === "list" ? "list" : "value"} in ${chart}'s values.yaml, but the value is a section`,
        );
        continue;
      }
      if (isPlainObject(v) && !freeForm(path)) {
        const hasChildren = [...keys.kinds.keys()].some((p) => p.startsWith(`${path}.`));
        // A documented map with no documented children (default `{}`) is open.
        if (hasChildren) visit(v, path);
      }
    }
  };
  visit(values, "");
  return problems;
}

/** Every dotted path of the chart whose last two segments are `image.repository`. */
export function imageRepositoryPaths(keys: DocumentedKeys): string[] {
  return [...keys.kinds.keys()].filter((p) => p.endsWith(".image.repository")).sort();
}
