import { ResourceValidationPolicy } from "@pulumi/policy";
import { at, chartValues, harborYmls, isHarborChart, TYPES, UNKNOWN } from "./props";

const show = (v: unknown): string => (v === undefined ? "not set" : `${JSON.stringify(v)}`);

/** `harbor.yml` (the offline installer's configuration). */
function checkHarborYml(
  doc: Record<string, unknown>,
  where: string,
  report: (m: string) => void,
): void {
  const https = at(doc, "https");
  if (https === undefined || https === null) {
    report(
      `harbor.yml in ${where} has no https section; Harbor must serve TLS with the stack's certificate.`,
    );
  } else {
    for (const k of ["certificate", "private_key"]) {
      const v = at(https, k);
      if (typeof v !== "string" || v === "") {
        report(`harbor.yml in ${where}: https.${k} is not set.`);
      }
    }
  }
  const external = at(doc, "external_url");
  if (
    external !== undefined &&
    external !== null &&
    !(typeof external === "string" && external.startsWith("https://"))
  ) {
    report(
      `harbor.yml in ${where}: external_url is ${show(external)}; it must be an https:// URL.`,
    );
  }
  for (const k of ["skip_update", "offline_scan"]) {
    const v = at(doc, "trivy", k);
    if (v !== true) {
      report(
        `harbor.yml in ${where}: trivy.${k} is ${show(v)}; it must be true (no internet access).`,
      );
    }
  }
}

/** Values of the Harbor Helm chart. */
function checkChartValues(values: Record<string, unknown>, report: (m: string) => void): void {
  const url = at(values, "externalURL");
  if (url !== UNKNOWN) {
    if (url === undefined) {
      report(
        "values.externalURL is not set (the chart default is https://core.harbor.domain); set it to the registry's https:// URL.",
      );
    } else if (!(typeof url === "string" && url.startsWith("https://"))) {
      report(`values.externalURL is ${show(url)}; it must be an https:// URL.`);
    }
  }
  if (at(values, "expose", "tls", "enabled") === false) {
    report("values.expose.tls.enabled is false; Harbor must serve TLS.");
  }
  const source = at(values, "expose", "tls", "certSource");
  if (source !== UNKNOWN && source !== "secret") {
    const is = source === undefined ? "not set (the chart default is auto)" : show(source);
    report(`values.expose.tls.certSource is ${is}; it must be "secret" (the stack's certificate).`);
  }
  if (source === "secret") {
    const name = at(values, "expose", "tls", "secret", "secretName");
    if (name !== UNKNOWN && (typeof name !== "string" || name === "")) {
      report(
        "values.expose.tls.secret.secretName is not set; name the TLS secret holding the stack's certificate.",
      );
    }
  }
  if (at(values, "trivy", "enabled") === false) {
    return;
  }
  for (const k of ["skipUpdate", "offlineScan"]) {
    const v = at(values, "trivy", k);
    if (v !== UNKNOWN && v !== true) {
      report(`values.trivy.${k} is ${show(v)}; it must be true (no internet access).`);
    }
  }
}

/**
 * Harbor is served over https with the stack's certificate and never reaches
 * out: in harbor.yml an https section (certificate, private_key), an https
 * external_url if any, trivy.skip_update and trivy.offline_scan; in the
 * chart's values an https externalURL, expose.tls.certSource "secret", and
 * trivy.skipUpdate and trivy.offlineScan (unless trivy is disabled).
 */
export const harborHttpsOffline: ResourceValidationPolicy = {
  name: "harbor-https-offline",
  description:
    "Harbor must be served over https with the stack's certificate (https externalURL, certSource secret) and its scanner must run offline (trivy skipUpdate and offlineScan).",
  enforcementLevel: "mandatory",
  severity: "high",
  validateResource: async (args, report) => {
    if (args.type === TYPES.helmRelease || args.type === TYPES.helmChartV4) {
      if (!isHarborChart(args.props)) {
        return;
      }
      const values = await chartValues(args.props);
      if (values !== UNKNOWN) {
        checkChartValues(values, report);
      }
      return;
    }
    for (const { path, doc } of await harborYmls(args.props)) {
      checkHarborYml(doc, path, report);
    }
  },
};
