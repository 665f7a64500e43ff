import { ResourceValidationPolicy } from "@pulumi/policy";
import { schemaFor, settings } from "./config";
import { at, chartValues, isHarborChart, strings, TYPES, UNKNOWN } from "./props";

/** Chart values whose omission leaves Harbor's shipped default secret in place. */
const CHART_DEFAULTS: {
  key: string[];
  dflt: string;
  unlessSet: string[][];
  when?: (v: unknown) => boolean;
}[] = [
  {
    key: ["harborAdminPassword"],
    dflt: "Harbor12345",
    unlessSet: [["existingSecretAdminPassword"]],
  },
  { key: ["secretKey"], dflt: "not-a-secure-key", unlessSet: [["existingSecretSecretKey"]] },
  {
    key: ["database", "internal", "password"],
    dflt: "changeit",
    unlessSet: [],
    when: (values) => at(values, "database", "type") !== "external",
  },
  {
    key: ["registry", "credentials", "password"],
    dflt: "harbor_registry_password",
    unlessSet: [
      ["registry", "credentials", "existingSecret"],
      ["registry", "credentials", "htpasswdString"],
    ],
  },
];

const isSet = (v: unknown): boolean => v === UNKNOWN || (v !== undefined && v !== null && v !== "");

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * None of Harbor's shipped default secrets (Harbor12345, root123,
 * not-a-secure-key, changeit, harbor_registry_password) appears in any string
 * the stack ships: harbor.yml in a command's stdin or a copied file, scripts,
 * chart values. For the Harbor chart, leaving a secret value out counts too:
 * the chart's default then applies.
 */
export const harborNoDefaultSecrets: ResourceValidationPolicy = {
  name: "harbor-no-default-secrets",
  description:
    "Harbor's shipped default secrets (Harbor12345, root123, not-a-secure-key, changeit, harbor_registry_password) must not appear in harbor.yml, chart values or scripts, nor be left in place by omitting a chart value.",
  enforcementLevel: "mandatory",
  severity: "critical",
  configSchema: schemaFor("forbiddenSecrets"),
  validateResource: async (args, report) => {
    const { forbiddenSecrets } = settings(args);
    const patterns = forbiddenSecrets.map((s) => ({
      s,
      re: new RegExp(`(^|[^A-Za-z0-9_])${escape(s)}($|[^A-Za-z0-9_])`),
    }));
    for (const f of await strings(args.props, ["connection"])) {
      for (const { s, re } of patterns) {
        if (re.test(f.text)) {
          report(`${f.path} contains Harbor's default secret "${s}"; use a generated secret.`);
        }
      }
    }
    if (
      (args.type !== TYPES.helmRelease && args.type !== TYPES.helmChartV4) ||
      !isHarborChart(args.props)
    ) {
      return;
    }
    const values = await chartValues(args.props);
    if (values === UNKNOWN) {
      return;
    }
    for (const rule of CHART_DEFAULTS) {
      if (rule.when && !rule.when(values)) {
        continue;
      }
      if (isSet(at(values, ...rule.key)) || rule.unlessSet.some((k) => isSet(at(values, ...k)))) {
        continue;
      }
      const alt = rule.unlessSet.map((k) => k.join(".")).join(" or ");
      report(
        `values.${rule.key.join(".")} is not set, so the chart's default "${rule.dflt}" applies; set it${alt ? ` or ${alt}` : ""}.`,
      );
    }
  },
};
