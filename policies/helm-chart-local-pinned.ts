import { ResourceValidationPolicy } from "@pulumi/policy";
import { at, forTypes, TYPES, UNKNOWN } from "./props";

const EXACT_VERSION = /^v?\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/;
const LOCAL_PATH = /^(\/|\.\/|\.\.\/)/;
/** `harbor-1.19.1.tgz` -> `1.19.1` */
const PACKAGED_VERSION = /-(v?\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?)\.tgz$/;

/**
 * Helm charts come from the offline bundle: `chart` is a local path (a
 * packaged .tgz or a chart directory), no `repositoryOpts.repo` (nothing is
 * fetched), and `version` is an exact version that matches the packaged
 * file's name.
 */
export const helmChartLocalPinned: ResourceValidationPolicy = {
  name: "helm-chart-local-pinned",
  description:
    "A Helm chart must come from a local path with an exact pinned version, never from a chart repository.",
  enforcementLevel: "mandatory",
  severity: "high",
  validateResource: forTypes([TYPES.helmRelease, TYPES.helmChartV4], (props, _args, report) => {
    const repo = at(props, "repositoryOpts", "repo");
    if (repo !== UNKNOWN && typeof repo === "string" && repo !== "") {
      report(
        `repositoryOpts.repo is ${repo}; charts come from the offline bundle: give chart a local path.`,
      );
    }
    const chart = at(props, "chart");
    if (chart !== UNKNOWN && !(typeof chart === "string" && LOCAL_PATH.test(chart))) {
      report(
        `chart is ${JSON.stringify(chart)}; it must be a local path (./, ../ or /) to a chart of the offline bundle.`,
      );
    }
    const version = at(props, "version");
    if (version === UNKNOWN) {
      return;
    }
    if (version === undefined || version === "") {
      report("version is not set; pin the chart's exact version.");
      return;
    }
    if (typeof version !== "string" || !EXACT_VERSION.test(version)) {
      report(`version is ${JSON.stringify(version)}; pin an exact version (x.y.z).`);
      return;
    }
    const packaged = typeof chart === "string" ? PACKAGED_VERSION.exec(chart) : null;
    if (packaged && packaged[1].replace(/^v/, "") !== version.replace(/^v/, "")) {
      report(
        `chart ${chart} is version ${packaged[1]} but version is ${version}; they must match.`,
      );
    }
  }),
};
