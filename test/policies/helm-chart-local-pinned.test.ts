import { helmChartLocalPinned } from "../../policies/helm-chart-local-pinned";
import { RELEASE } from "./harbor-fixture";
import { runResource, UNKNOWN_STRING, withField } from "./support";

const TYPE = "kubernetes:helm.sh/v3:Release";
const run = (props: Record<string, unknown>, type = TYPE) =>
  runResource(helmChartLocalPinned, { type, props });

describe("helm-chart-local-pinned", () => {
  it("is mandatory", () => {
    expect(helmChartLocalPinned.enforcementLevel).toBe("mandatory");
  });

  it.each([
    ["a packaged chart of the bundle", RELEASE],
    [
      "an absolute path",
      withField(RELEASE, ["chart"], "/opt/casd/bundle/charts/harbor-1.19.1.tgz"),
    ],
    ["a chart directory", withField(RELEASE, ["chart"], "../bundle/charts/harbor")],
  ])("accepts %s", async (_label, props) => {
    expect(await run(props)).toEqual([]);
  });

  it.each([
    [
      "a repository URL",
      ["repositoryOpts"],
      { repo: "https://helm.goharbor.io" },
      "repositoryOpts.repo is https://helm.goharbor.io; charts come from the offline bundle: give chart a local path.",
    ],
    [
      "a chart from a repository alias",
      ["chart"],
      "harbor/harbor",
      'chart is "harbor/harbor"; it must be a local path (./, ../ or /) to a chart of the offline bundle.',
    ],
    [
      "an OCI chart",
      ["chart"],
      "oci://reg.casd.local/charts/harbor",
      'chart is "oci://reg.casd.local/charts/harbor"; it must be a local path (./, ../ or /) to a chart of the offline bundle.',
    ],
    ["no version", ["version"], undefined, "version is not set; pin the chart's exact version."],
    [
      "a version range",
      ["version"],
      "^1.19.0",
      'version is "^1.19.0"; pin an exact version (x.y.z).',
    ],
    [
      "a version that is not the packaged one",
      ["version"],
      "1.18.2",
      "chart ./offline/bundle/charts/harbor-1.19.1.tgz is version 1.19.1 but version is 1.18.2; they must match.",
    ],
  ])("refuses %s", async (_label, path, value, message) => {
    expect(await run(withField(RELEASE, path, value))).toEqual([message]);
  });

  it("checks Helm v4 charts too", async () => {
    expect(
      await run({ chart: "harbor", version: "1.19.1" }, "kubernetes:helm.sh/v4:Chart"),
    ).toEqual([
      'chart is "harbor"; it must be a local path (./, ../ or /) to a chart of the offline bundle.',
    ]);
  });

  it("reports nothing on values unknown during preview", async () => {
    expect(await run(withField(RELEASE, ["chart"], UNKNOWN_STRING))).toEqual([]);
    expect(await run(withField(RELEASE, ["version"], UNKNOWN_STRING))).toEqual([]);
    expect(await run(withField(RELEASE, ["repositoryOpts"], { repo: UNKNOWN_STRING }))).toEqual([]);
  });
});
