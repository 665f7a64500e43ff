/** Container image references found in resource properties (shared by the image policies). */
import { at, isRecord, keysOf, listAt, TYPES, UNKNOWN } from "./props";

export interface ImageRef {
  /** Where it was found, e.g. `spec.template.spec.containers[0].image`, `values.core.image`. */
  path: string;
  /** The reference as written (for chart values: registry/repository:tag). */
  ref: string;
  /** From chart values: the tag may be left to the chart (its appVersion). */
  fromChart: boolean;
}

export interface ParsedRef {
  registry: string;
  repository: string;
  tag?: string;
  digest?: string;
  /** A local image ID (`sha256:<hex>`, e.g. a RemoteImage's imageId): no registry, content-addressed. */
  imageId: boolean;
}

/** Splits an image reference the way docker does (no registry part: docker.io). */
export function parseRef(ref: string): ParsedRef {
  if (/^sha256:[a-f0-9]{64}$/.test(ref)) {
    return { registry: "", repository: "", digest: ref, imageId: true };
  }
  const [name, digest] = ref.split("@", 2);
  const slash = name.lastIndexOf("/");
  const colon = name.lastIndexOf(":");
  const tag = colon > slash ? name.slice(colon + 1) : undefined;
  const path = colon > slash ? name.slice(0, colon) : name;
  const first = path.split("/")[0];
  const hasRegistry =
    path.includes("/") && (first.includes(".") || first.includes(":") || first === "localhost");
  return {
    registry: hasRegistry ? first : "docker.io",
    repository: hasRegistry ? path.slice(first.length + 1) : path,
    tag,
    digest,
    imageId: false,
  };
}

/** True if `registry` (host[:port]) is one of `allowed` (a port-less entry allows any port). */
export function registryAllowed(registry: string, allowed: string[]): boolean {
  const r = registry.toLowerCase();
  return allowed.some((a) => {
    const x = a.toLowerCase();
    return x === r || (!x.includes(":") && r.split(":")[0] === x);
  });
}

const POD_SPECS = [
  ["spec"],
  ["spec", "template", "spec"],
  ["spec", "jobTemplate", "spec", "template", "spec"],
];
const CONTAINER_LISTS = ["initContainers", "containers", "ephemeralContainers"];

function podImages(props: unknown): ImageRef[] {
  const out: ImageRef[] = [];
  for (const specPath of POD_SPECS) {
    const spec = at(props, ...specPath);
    if (!isRecord(spec)) {
      continue;
    }
    for (const list of CONTAINER_LISTS) {
      const containers = listAt(spec, list);
      if (containers === UNKNOWN) {
        continue;
      }
      containers.forEach((c, i) => {
        const image = at(c, "image");
        if (typeof image === "string") {
          out.push({
            path: [...specPath, `${list}[${i}]`, "image"].join("."),
            ref: image,
            fromChart: false,
          });
        }
      });
    }
  }
  return out;
}

/** `image: {registry?, repository, tag?}` or `image: "ref"` anywhere in chart values. */
function chartImages(values: unknown, path: string, out: ImageRef[]): void {
  if (Array.isArray(values)) {
    for (let i = 0; i < values.length; i++) {
      chartImages(at(values, i), `${path}[${i}]`, out);
    }
    return;
  }
  if (!isRecord(values)) {
    return;
  }
  for (const k of keysOf(values)) {
    const v = at(values, k);
    const p = `${path}.${k}`;
    if (k === "image" && typeof v === "string" && v !== "") {
      out.push({ path: p, ref: v, fromChart: true });
    } else if (k === "image" && isRecord(v) && typeof at(v, "repository") === "string") {
      const registry = at(v, "registry");
      const tag = at(v, "tag");
      if (registry === UNKNOWN || tag === UNKNOWN) {
        continue;
      }
      const repo = String(at(v, "repository"));
      const ref = `${typeof registry === "string" && registry !== "" ? `${registry}/` : ""}${repo}${
        typeof tag === "string" && tag !== "" ? `:${tag}` : ""
      }`;
      out.push({ path: p, ref, fromChart: true });
    } else {
      chartImages(v, p, out);
    }
  }
}

/** Every known image reference of a resource. */
export function imagesOf(type: string, props: unknown): ImageRef[] {
  switch (type) {
    case TYPES.dockerContainer: {
      const image = at(props, "image");
      return typeof image === "string" ? [{ path: "image", ref: image, fromChart: false }] : [];
    }
    case TYPES.dockerRemoteImage: {
      const name = at(props, "name");
      return typeof name === "string" ? [{ path: "name", ref: name, fromChart: false }] : [];
    }
    case TYPES.helmRelease:
    case TYPES.helmChartV4: {
      const out: ImageRef[] = [];
      chartImages(at(props, "values"), "values", out);
      return out;
    }
    default:
      return type.startsWith("kubernetes:") ? podImages(props) : [];
  }
}
