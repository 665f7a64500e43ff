import { containerImageAllowedRegistry } from "../../policies/container-image-allowed-registry";
import { containerImageDigestPinned } from "../../policies/container-image-digest-pinned";
import { parseRef } from "../../policies/images";
import { RELEASE } from "./harbor-fixture";
import { runResource, UNKNOWN_ARRAY, UNKNOWN_STRING, withField } from "./support";

const DIGEST = "sha256:" + "a".repeat(64);
const CONTAINER = "docker:index/container:Container";
const REMOTE_IMAGE = "docker:index/remoteImage:RemoteImage";
const DAEMONSET = "kubernetes:apps/v1:DaemonSet";
const POD = "kubernetes:core/v1:Pod";
const CRONJOB = "kubernetes:batch/v1:CronJob";
const RELEASE_TYPE = "kubernetes:helm.sh/v3:Release";

const TRUST_DS = {
  metadata: { name: "registry-trust", namespace: "kube-system" },
  spec: {
    selector: { matchLabels: { app: "registry-trust" } },
    template: {
      metadata: { labels: { app: "registry-trust" } },
      spec: {
        initContainers: [
          { name: "install", image: `reg.casd.local/casd/node-trust:1.0.0@${DIGEST}` },
        ],
        containers: [{ name: "pause", image: `reg.casd.local/casd/pause:3.10@${DIGEST}` }],
      },
    },
  },
};

const allowed = (type: string, props: Record<string, unknown>, config?: Record<string, unknown>) =>
  runResource(containerImageAllowedRegistry, { type, props, config });
const digest = (type: string, props: Record<string, unknown>) =>
  runResource(containerImageDigestPinned, { type, props });

describe("parseRef", () => {
  it.each([
    [
      "busybox",
      {
        registry: "docker.io",
        repository: "busybox",
        tag: undefined,
        digest: undefined,
        imageId: false,
      },
    ],
    [
      "reg.casd.local:443/lib/app:1.2",
      {
        registry: "reg.casd.local:443",
        repository: "lib/app",
        tag: "1.2",
        digest: undefined,
        imageId: false,
      },
    ],
    [
      "localhost/x@" + DIGEST,
      { registry: "localhost", repository: "x", tag: undefined, digest: DIGEST, imageId: false },
    ],
    [
      "goharbor/harbor-core:v2.15.1",
      {
        registry: "docker.io",
        repository: "goharbor/harbor-core",
        tag: "v2.15.1",
        digest: undefined,
        imageId: false,
      },
    ],
    [DIGEST, { registry: "", repository: "", digest: DIGEST, imageId: true }],
  ])("%s", (ref, parsed) => {
    expect(parseRef(ref)).toEqual(parsed);
  });
});

describe("container-image-allowed-registry", () => {
  it("is mandatory and configurable", () => {
    expect(containerImageAllowedRegistry.enforcementLevel).toBe("mandatory");
    expect(
      containerImageAllowedRegistry.configSchema?.properties.allowedRegistries.default,
    ).toEqual(["reg.casd.local"]);
  });

  it.each([
    ["a pinned DaemonSet", DAEMONSET, TRUST_DS],
    ["a tagged container", CONTAINER, { name: "x", image: "reg.casd.local/casd/tool:2.1" }],
    ["a container by local image ID", CONTAINER, { name: "x", image: DIGEST }],
    ["a port on an allowed host", REMOTE_IMAGE, { name: "reg.casd.local:443/casd/tool:2.1" }],
    ["the Harbor chart's images", RELEASE_TYPE, RELEASE],
    [
      "a chart image without a tag (the chart's own)",
      RELEASE_TYPE,
      withField(RELEASE, ["values", "core", "image", "tag"], undefined),
    ],
  ])("accepts %s", async (_label, type, props) => {
    expect(await allowed(type, props)).toEqual([]);
  });

  it.each([
    [
      "an init container from Docker Hub",
      DAEMONSET,
      withField(
        TRUST_DS,
        ["spec", "template", "spec", "initContainers", 0, "image"],
        "busybox:1.36",
      ),
      "spec.template.spec.initContainers[0].image is busybox:1.36: registry docker.io is not allowed (allowed: reg.casd.local).",
    ],
    [
      "a container with :latest",
      DAEMONSET,
      withField(
        TRUST_DS,
        ["spec", "template", "spec", "containers", 0, "image"],
        "reg.casd.local/casd/pause:latest",
      ),
      "spec.template.spec.containers[0].image is reg.casd.local/casd/pause:latest: the latest tag is not allowed; pin a version tag or a digest.",
    ],
    [
      "a Docker container without a tag",
      CONTAINER,
      { name: "x", image: "reg.casd.local/casd/tool" },
      "image is reg.casd.local/casd/tool: without a tag latest is pulled; pin a version tag or a digest.",
    ],
    [
      "a remote image from another registry",
      REMOTE_IMAGE,
      { name: "ghcr.io/x/y:1.0" },
      "name is ghcr.io/x/y:1.0: registry ghcr.io is not allowed (allowed: reg.casd.local).",
    ],
    [
      "a Pod container",
      POD,
      { spec: { containers: [{ name: "c", image: "quay.io/x/y:1" }] } },
      "spec.containers[0].image is quay.io/x/y:1: registry quay.io is not allowed (allowed: reg.casd.local).",
    ],
    [
      "a CronJob container",
      CRONJOB,
      {
        spec: {
          jobTemplate: {
            spec: {
              template: { spec: { containers: [{ name: "c", image: "reg.casd.local/x:latest" }] } },
            },
          },
        },
      },
      "spec.jobTemplate.spec.template.spec.containers[0].image is reg.casd.local/x:latest: the latest tag is not allowed; pin a version tag or a digest.",
    ],
    [
      "a chart image from Docker Hub",
      RELEASE_TYPE,
      withField(
        RELEASE,
        ["values", "core", "image", "repository"],
        "docker.io/goharbor/harbor-core",
      ),
      "values.core.image is docker.io/goharbor/harbor-core:v2.15.1: registry docker.io is not allowed (allowed: reg.casd.local).",
    ],
    [
      "a chart image with registry and latest",
      RELEASE_TYPE,
      withField(RELEASE, ["values", "core", "image"], {
        registry: "reg.casd.local",
        repository: "goharbor/harbor-core",
        tag: "latest",
      }),
      "values.core.image is reg.casd.local/goharbor/harbor-core:latest: the latest tag is not allowed; pin a version tag or a digest.",
    ],
  ])("refuses %s", async (_label, type, props, message) => {
    expect(await allowed(type, props)).toEqual([message]);
  });

  it("reads the allowed registries from config", async () => {
    expect(
      await allowed(
        CONTAINER,
        { name: "x", image: "mirror.casd.local:5000/x:1" },
        { allowedRegistries: ["mirror.casd.local:5000"] },
      ),
    ).toEqual([]);
    expect(
      await allowed(
        CONTAINER,
        { name: "x", image: "mirror.casd.local:5001/x:1" },
        { allowedRegistries: ["mirror.casd.local:5000"] },
      ),
    ).toEqual([
      "image is mirror.casd.local:5001/x:1: registry mirror.casd.local:5001 is not allowed (allowed: mirror.casd.local:5000).",
    ]);
  });

  it("reports nothing on values unknown during preview", async () => {
    expect(await allowed(CONTAINER, { name: "x", image: UNKNOWN_STRING })).toEqual([]);
    expect(
      await allowed(
        DAEMONSET,
        withField(TRUST_DS, ["spec", "template", "spec", "containers"], UNKNOWN_ARRAY),
      ),
    ).toEqual([]);
    expect(
      await allowed(
        RELEASE_TYPE,
        withField(RELEASE, ["values", "core", "image", "tag"], UNKNOWN_STRING),
      ),
    ).toEqual([]);
  });
});

describe("container-image-digest-pinned", () => {
  it("is advisory", () => {
    expect(containerImageDigestPinned.enforcementLevel).toBe("advisory");
  });

  it("accepts digests and local image IDs, and leaves chart values alone", async () => {
    expect(await digest(DAEMONSET, TRUST_DS)).toEqual([]);
    expect(await digest(CONTAINER, { name: "x", image: DIGEST })).toEqual([]);
    expect(await digest(RELEASE_TYPE, RELEASE)).toEqual([]);
  });

  it("advises a digest for a tag-only image", async () => {
    const props = withField(
      TRUST_DS,
      ["spec", "template", "spec", "containers", 0, "image"],
      "reg.casd.local/casd/pause:3.10",
    );
    expect(await digest(DAEMONSET, props)).toEqual([
      "spec.template.spec.containers[0].image is reg.casd.local/casd/pause:3.10: pin it by digest (@sha256:...).",
    ]);
  });
});
