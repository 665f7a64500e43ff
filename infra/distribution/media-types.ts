/**
 * Manifest media types: which kind of thing a registry manifest is, by the
 * rules of the OCI image spec 1.1 (manifest.md, image-index.md and the
 * artifacts guidance) and Docker's image manifest v2 schema 2. Pure: the
 * lab tests use it to prove what the deployed registry stores and serves,
 * and docs/distribution.md explains which client and which Harbor feature
 * needs which kind.
 *
 * Artifact rules (OCI 1.1): a manifest is an artifact when it carries an
 * `artifactType`, or when its `config.mediaType` is not the image config
 * type (the pre-1.1 way, e.g. Helm charts: `application/vnd.cncf.helm.config.v1+json`).
 * Its artifact type is `artifactType`, else `config.mediaType`. An index
 * with an `artifactType` is an artifact index. A `subject` makes the
 * manifest a referrer of another one, which clients find only through the
 * referrers API (`GET /v2/<name>/referrers/<digest>`) or the tag fallback
 * (`sha256-<hex>`).
 */

export const MEDIA_TYPES = {
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  dockerManifestList: "application/vnd.docker.distribution.manifest.list.v2+json",
  dockerSchema1: "application/vnd.docker.distribution.manifest.v1+json",
  dockerSchema1Signed: "application/vnd.docker.distribution.manifest.v1+prettyjws",
  dockerConfig: "application/vnd.docker.container.image.v1+json",
  dockerLayer: "application/vnd.docker.image.rootfs.diff.tar.gzip",
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  ociIndex: "application/vnd.oci.image.index.v1+json",
  ociConfig: "application/vnd.oci.image.config.v1+json",
  ociEmpty: "application/vnd.oci.empty.v1+json",
  ociLayer: "application/vnd.oci.image.layer.v1.tar",
  ociLayerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  helmConfig: "application/vnd.cncf.helm.config.v1+json",
} as const;

export type ManifestKind =
  | "docker-v2-image"
  | "docker-manifest-list"
  | "docker-schema1"
  | "oci-image"
  | "oci-index"
  | "oci-artifact"
  | "oci-artifact-index"
  | "invalid";

export interface Classification {
  kind: ManifestKind;
  /** The manifest's own media type (`mediaType`, or inferred from its shape when absent). */
  mediaType: string;
  /** The artifact type, for the two artifact kinds. */
  artifactType?: string;
  /** The manifest names a `subject`: it is a referrer (signature, SBOM, attestation) of that digest. */
  referrer: boolean;
  /** Why the manifest is `invalid`, or a note on a legacy kind. */
  reason?: string;
}

type Json = Record<string, unknown>;

const isObj = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === "string" && v !== "" ? v : undefined);

/** RFC 6838 media type (type/subtype with optional +suffix), no parameters. */
const MEDIA_TYPE_RE =
  /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/;

export function isMediaType(s: string): boolean {
  return MEDIA_TYPE_RE.test(s);
}

/** Classifies a parsed manifest (the JSON a registry returns for `GET /v2/<name>/manifests/<ref>`). */
export function classifyManifest(manifest: unknown): Classification {
  if (!isObj(manifest))
    return {
      kind: "invalid",
      mediaType: "",
      referrer: false,
      reason: "the manifest is not a JSON object",
    };
  const declared = str(manifest.mediaType);
  const artifactType = str(manifest.artifactType);
  const referrer = isObj(manifest.subject);
  const config = isObj(manifest.config) ? manifest.config : undefined;
  const configType = config ? str(config.mediaType) : undefined;

  if (artifactType !== undefined && !isMediaType(artifactType)) {
    return {
      kind: "invalid",
      mediaType: declared ?? "",
      referrer,
      reason: `artifactType ${JSON.stringify(artifactType)} is not a media type`,
    };
  }
  if (
    declared === MEDIA_TYPES.dockerSchema1 ||
    declared === MEDIA_TYPES.dockerSchema1Signed ||
    (declared === undefined && manifest.schemaVersion === 1)
  ) {
    return {
      kind: "docker-schema1",
      mediaType: declared ?? MEDIA_TYPES.dockerSchema1,
      referrer: false,
      reason:
        "Docker image manifest schema 1 is deprecated and refused by current Docker Engine and containerd releases; push images as schema 2 or OCI",
    };
  }
  if (manifest.schemaVersion !== 2) {
    return {
      kind: "invalid",
      mediaType: declared ?? "",
      referrer,
      reason: `schemaVersion is ${JSON.stringify(manifest.schemaVersion)}, not 2`,
    };
  }
  if (declared === MEDIA_TYPES.dockerManifest) {
    if (configType !== MEDIA_TYPES.dockerConfig) {
      return {
        kind: "invalid",
        mediaType: declared,
        referrer,
        reason: `a Docker v2 manifest needs config.mediaType ${MEDIA_TYPES.dockerConfig}, got ${JSON.stringify(configType)}`,
      };
    }
    return { kind: "docker-v2-image", mediaType: declared, referrer: false };
  }
  if (declared === MEDIA_TYPES.dockerManifestList)
    return { kind: "docker-manifest-list", mediaType: declared, referrer: false };

  const hasManifests = Array.isArray(manifest.manifests);
  const looksIndex =
    declared === MEDIA_TYPES.ociIndex ||
    (declared === undefined && hasManifests && config === undefined);
  if (looksIndex) {
    if (!hasManifests)
      return {
        kind: "invalid",
        mediaType: MEDIA_TYPES.ociIndex,
        referrer,
        reason: "an image index needs a manifests list",
      };
    if (artifactType !== undefined)
      return {
        kind: "oci-artifact-index",
        mediaType: MEDIA_TYPES.ociIndex,
        artifactType,
        referrer,
      };
    return { kind: "oci-index", mediaType: MEDIA_TYPES.ociIndex, referrer };
  }
  const looksManifest =
    declared === MEDIA_TYPES.ociManifest || (declared === undefined && config !== undefined);
  if (!looksManifest) {
    return {
      kind: "invalid",
      mediaType: declared ?? "",
      referrer,
      reason: `unknown manifest media type ${JSON.stringify(declared)}`,
    };
  }
  if (config === undefined || configType === undefined) {
    return {
      kind: "invalid",
      mediaType: MEDIA_TYPES.ociManifest,
      referrer,
      reason: "an image manifest needs a config descriptor with a mediaType",
    };
  }
  if (!Array.isArray(manifest.layers)) {
    return {
      kind: "invalid",
      mediaType: MEDIA_TYPES.ociManifest,
      referrer,
      reason: "an image manifest needs a layers list (it may be empty for artifacts)",
    };
  }
  if (configType === MEDIA_TYPES.ociEmpty && artifactType === undefined) {
    return {
      kind: "invalid",
      mediaType: MEDIA_TYPES.ociManifest,
      referrer,
      reason: `artifactType must be set when config.mediaType is ${MEDIA_TYPES.ociEmpty}`,
    };
  }
  if (artifactType !== undefined)
    return { kind: "oci-artifact", mediaType: MEDIA_TYPES.ociManifest, artifactType, referrer };
  if (configType !== MEDIA_TYPES.ociConfig)
    return {
      kind: "oci-artifact",
      mediaType: MEDIA_TYPES.ociManifest,
      artifactType: configType,
      referrer,
    };
  return { kind: "oci-image", mediaType: MEDIA_TYPES.ociManifest, referrer };
}

/** Parses the JSON text first; text that is not JSON is `invalid`. */
export function classifyManifestText(text: string): Classification {
  try {
    return classifyManifest(JSON.parse(text));
  } catch {
    return { kind: "invalid", mediaType: "", referrer: false, reason: "the manifest is not JSON" };
  }
}

/**
 * The `Accept` header a client sends to fetch any of these kinds: a
 * registry answers a GET without a matching Accept by converting or
 * refusing (Distribution 2.8 answers 404 for an OCI manifest asked for
 * with Docker types only; the lab test shows it).
 */
export const ACCEPT_ALL_MANIFESTS = [
  MEDIA_TYPES.ociManifest,
  MEDIA_TYPES.ociIndex,
  MEDIA_TYPES.dockerManifest,
  MEDIA_TYPES.dockerManifestList,
].join(", ");
