/**
 * Manifest classification by the OCI image spec 1.1 rules and Docker's
 * schema 2: one row per kind and per rule, exact results.
 */
import {
  ACCEPT_ALL_MANIFESTS,
  classifyManifest,
  classifyManifestText,
  isMediaType,
  MEDIA_TYPES as M,
} from "../../infra/distribution/media-types";

const D = (n: string) => ({ mediaType: M.ociLayerGzip, digest: `sha256:${n.repeat(64)}`, size: 1 });
const cfg = (mediaType: string) => ({ mediaType, digest: `sha256:${"c".repeat(64)}`, size: 2 });
const subject = { mediaType: M.ociManifest, digest: `sha256:${"e".repeat(64)}`, size: 3 };

const CASES: Array<[string, unknown, ReturnType<typeof classifyManifest>]> = [
  [
    "Docker v2 schema 2 image",
    {
      schemaVersion: 2,
      mediaType: M.dockerManifest,
      config: cfg(M.dockerConfig),
      layers: [D("1")],
    },
    { kind: "docker-v2-image", mediaType: M.dockerManifest, referrer: false },
  ],
  [
    "Docker manifest list",
    { schemaVersion: 2, mediaType: M.dockerManifestList, manifests: [] },
    { kind: "docker-manifest-list", mediaType: M.dockerManifestList, referrer: false },
  ],
  [
    "OCI image manifest",
    { schemaVersion: 2, mediaType: M.ociManifest, config: cfg(M.ociConfig), layers: [D("1")] },
    { kind: "oci-image", mediaType: M.ociManifest, referrer: false },
  ],
  [
    "OCI image manifest without mediaType (allowed by 1.0)",
    { schemaVersion: 2, config: cfg(M.ociConfig), layers: [] },
    { kind: "oci-image", mediaType: M.ociManifest, referrer: false },
  ],
  [
    "OCI image index",
    { schemaVersion: 2, mediaType: M.ociIndex, manifests: [] },
    { kind: "oci-index", mediaType: M.ociIndex, referrer: false },
  ],
  [
    "OCI image index without mediaType",
    { schemaVersion: 2, manifests: [{ mediaType: M.ociManifest }] },
    { kind: "oci-index", mediaType: M.ociIndex, referrer: false },
  ],
  [
    "OCI artifact by artifactType (1.1), empty config",
    {
      schemaVersion: 2,
      mediaType: M.ociManifest,
      artifactType: "application/vnd.example.sbom.v1+json",
      config: cfg(M.ociEmpty),
      layers: [D("2")],
    },
    {
      kind: "oci-artifact",
      mediaType: M.ociManifest,
      artifactType: "application/vnd.example.sbom.v1+json",
      referrer: false,
    },
  ],
  [
    "OCI artifact by custom config media type (Helm chart)",
    {
      schemaVersion: 2,
      mediaType: M.ociManifest,
      config: cfg(M.helmConfig),
      layers: [{ ...D("3"), mediaType: "application/vnd.cncf.helm.chart.content.v1.tar+gzip" }],
    },
    { kind: "oci-artifact", mediaType: M.ociManifest, artifactType: M.helmConfig, referrer: false },
  ],
  [
    "artifactType wins over the config media type",
    {
      schemaVersion: 2,
      mediaType: M.ociManifest,
      artifactType: "application/vnd.casd.a",
      config: cfg("application/vnd.casd.c"),
      layers: [],
    },
    {
      kind: "oci-artifact",
      mediaType: M.ociManifest,
      artifactType: "application/vnd.casd.a",
      referrer: false,
    },
  ],
  [
    "signature as a referrer (subject set)",
    {
      schemaVersion: 2,
      mediaType: M.ociManifest,
      artifactType: "application/vnd.dev.cosign.artifact.sig.v1+json",
      config: cfg(M.ociEmpty),
      layers: [D("4")],
      subject,
    },
    {
      kind: "oci-artifact",
      mediaType: M.ociManifest,
      artifactType: "application/vnd.dev.cosign.artifact.sig.v1+json",
      referrer: true,
    },
  ],
  [
    "image manifest with a subject is a referrer image",
    { schemaVersion: 2, mediaType: M.ociManifest, config: cfg(M.ociConfig), layers: [], subject },
    { kind: "oci-image", mediaType: M.ociManifest, referrer: true },
  ],
  [
    "OCI artifact index",
    {
      schemaVersion: 2,
      mediaType: M.ociIndex,
      artifactType: "application/vnd.casd.bundle",
      manifests: [],
    },
    {
      kind: "oci-artifact-index",
      mediaType: M.ociIndex,
      artifactType: "application/vnd.casd.bundle",
      referrer: false,
    },
  ],
  [
    "Docker schema 1 (signed)",
    { schemaVersion: 1, mediaType: M.dockerSchema1Signed, fsLayers: [] },
    {
      kind: "docker-schema1",
      mediaType: M.dockerSchema1Signed,
      referrer: false,
      reason:
        "Docker image manifest schema 1 is deprecated and refused by current Docker Engine and containerd releases; push images as schema 2 or OCI",
    },
  ],
  [
    "Docker schema 1 without mediaType",
    { schemaVersion: 1, fsLayers: [] },
    {
      kind: "docker-schema1",
      mediaType: M.dockerSchema1,
      referrer: false,
      reason:
        "Docker image manifest schema 1 is deprecated and refused by current Docker Engine and containerd releases; push images as schema 2 or OCI",
    },
  ],
  [
    "invalid: empty config without artifactType",
    { schemaVersion: 2, mediaType: M.ociManifest, config: cfg(M.ociEmpty), layers: [] },
    {
      kind: "invalid",
      mediaType: M.ociManifest,
      referrer: false,
      reason: `artifactType must be set when config.mediaType is ${M.ociEmpty}`,
    },
  ],
  [
    "invalid: Docker v2 with an OCI config",
    { schemaVersion: 2, mediaType: M.dockerManifest, config: cfg(M.ociConfig), layers: [] },
    {
      kind: "invalid",
      mediaType: M.dockerManifest,
      referrer: false,
      reason: `a Docker v2 manifest needs config.mediaType ${M.dockerConfig}, got "${M.ociConfig}"`,
    },
  ],
  [
    "invalid: artifactType not a media type",
    {
      schemaVersion: 2,
      mediaType: M.ociManifest,
      artifactType: "sbom",
      config: cfg(M.ociConfig),
      layers: [],
    },
    {
      kind: "invalid",
      mediaType: M.ociManifest,
      referrer: false,
      reason: 'artifactType "sbom" is not a media type',
    },
  ],
  [
    "invalid: schemaVersion 3",
    { schemaVersion: 3, mediaType: M.ociManifest },
    {
      kind: "invalid",
      mediaType: M.ociManifest,
      referrer: false,
      reason: "schemaVersion is 3, not 2",
    },
  ],
  [
    "invalid: manifest without layers",
    { schemaVersion: 2, mediaType: M.ociManifest, config: cfg(M.ociConfig) },
    {
      kind: "invalid",
      mediaType: M.ociManifest,
      referrer: false,
      reason: "an image manifest needs a layers list (it may be empty for artifacts)",
    },
  ],
  [
    "invalid: index without manifests",
    { schemaVersion: 2, mediaType: M.ociIndex },
    {
      kind: "invalid",
      mediaType: M.ociIndex,
      referrer: false,
      reason: "an image index needs a manifests list",
    },
  ],
  [
    "invalid: unknown media type",
    { schemaVersion: 2, mediaType: "application/json" },
    {
      kind: "invalid",
      mediaType: "application/json",
      referrer: false,
      reason: 'unknown manifest media type "application/json"',
    },
  ],
  [
    "invalid: not an object",
    [1, 2],
    {
      kind: "invalid",
      mediaType: "",
      referrer: false,
      reason: "the manifest is not a JSON object",
    },
  ],
];

describe("classifyManifest", () => {
  test.each(CASES)("%s", (_label, manifest, want) => {
    expect(classifyManifest(manifest)).toEqual(want);
  });

  test("text that is not JSON", () => {
    expect(classifyManifestText("{nope")).toEqual({
      kind: "invalid",
      mediaType: "",
      referrer: false,
      reason: "the manifest is not JSON",
    });
    expect(classifyManifestText(JSON.stringify(CASES[2][1]))).toEqual(CASES[2][2]);
  });
});

describe("media type helpers", () => {
  test.each([
    ["application/vnd.oci.image.manifest.v1+json", true],
    ["application/vnd.cncf.helm.config.v1+json", true],
    ["text/plain; charset=utf-8", false],
    ["sbom", false],
    ["", false],
  ])("isMediaType(%j) = %s", (t, want) => {
    expect(isMediaType(t)).toBe(want);
  });

  test("the Accept header lists the four manifest kinds, OCI first", () => {
    expect(ACCEPT_ALL_MANIFESTS).toBe(
      "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json",
    );
  });
});
