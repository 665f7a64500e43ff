import { ResourceValidationPolicy } from "@pulumi/policy";
import { schemaFor, settings } from "./config";
import { at, forTypes, TYPES, UNKNOWN } from "./props";

/**
 * Server certificate lifetime: valid at most `maxServerValidityDays` (200),
 * and renewed early (`earlyRenewalHours`) between a quarter and a half of its
 * validity, so a routine `pulumi up` replaces it well before it expires but
 * not on every run.
 */
export const tlsServerCertValidity: ResourceValidationPolicy = {
  name: "tls-server-cert-validity",
  description:
    "A server certificate must be valid at most the configured number of days (200 by default) and set earlyRenewalHours between a quarter and a half of its validity.",
  enforcementLevel: "mandatory",
  severity: "medium",
  configSchema: schemaFor("maxServerValidityDays"),
  validateResource: forTypes([TYPES.locallySignedCert], (props, args, report) => {
    const isCa = at(props, "isCaCertificate");
    if (isCa === UNKNOWN || isCa === true) {
      return;
    }
    const { maxServerValidityDays } = settings(args);
    const maxHours = maxServerValidityDays * 24;
    const validity = at(props, "validityPeriodHours");
    if (typeof validity !== "number") {
      return; // unknown during preview (the provider requires it)
    }
    if (validity > maxHours) {
      report(
        `validityPeriodHours is ${validity}; a server certificate may be valid at most ${maxServerValidityDays} days (${maxHours} hours).`,
      );
    }
    const early = at(props, "earlyRenewalHours");
    if (early === UNKNOWN) {
      return;
    }
    const lo = Math.ceil(validity / 4);
    const hi = Math.floor(validity / 2);
    const range = `between ${lo} and ${hi} hours (a quarter to a half of validityPeriodHours ${validity})`;
    if (early === undefined || early === 0) {
      report(
        `earlyRenewalHours is not set, so the certificate is renewed only once expired; set it ${range}.`,
      );
    } else if (typeof early === "number" && (early * 4 < validity || early * 2 > validity)) {
      report(`earlyRenewalHours is ${early}; set it ${range}.`);
    }
  }),
};
