import { ResourceValidationPolicy } from "@pulumi/policy";
import { schemaFor, settings } from "./config";
import { at, forTypes, TYPES, UNKNOWN } from "./props";

/** The tls provider's defaults when a field is left out. */
const PROVIDER_DEFAULT = { rsaBits: 2048, ecdsaCurve: "P224" };

/**
 * TLS keys: RSA of at least `minRsaBits` (3072) or ECDSA on an allowed curve
 * (P256, P384). Leaving `rsaBits` or `ecdsaCurve` out takes the provider's
 * weak defaults (2048 bits, P224) and is refused as well.
 */
export const tlsKeyStrength: ResourceValidationPolicy = {
  name: "tls-key-strength",
  description:
    "TLS private keys must be RSA of at least 3072 bits or ECDSA on P256 or P384; the provider's defaults (RSA 2048, P224) are refused.",
  enforcementLevel: "mandatory",
  severity: "high",
  configSchema: schemaFor("minRsaBits", "allowedEcdsaCurves"),
  validateResource: forTypes([TYPES.privateKey], (props, args, report) => {
    const { minRsaBits, allowedEcdsaCurves } = settings(args);
    const curves = allowedEcdsaCurves.join(", ");
    const algorithm = at(props, "algorithm");
    if (algorithm === UNKNOWN) {
      return;
    }
    if (algorithm === "RSA") {
      const bits = at(props, "rsaBits");
      if (bits === undefined) {
        report(
          `rsaBits is not set, so the provider default of ${PROVIDER_DEFAULT.rsaBits} bits applies; set rsaBits to at least ${minRsaBits}.`,
        );
      } else if (typeof bits === "number" && bits < minRsaBits) {
        report(`rsaBits is ${bits}; an RSA key needs at least ${minRsaBits} bits.`);
      }
    } else if (algorithm === "ECDSA") {
      const curve = at(props, "ecdsaCurve");
      if (curve === undefined) {
        report(
          `ecdsaCurve is not set, so the provider default ${PROVIDER_DEFAULT.ecdsaCurve} applies; set ecdsaCurve to one of ${curves}.`,
        );
      } else if (typeof curve === "string" && !allowedEcdsaCurves.includes(curve)) {
        report(`ecdsaCurve is ${curve}; use one of ${curves}.`);
      }
    } else {
      report(
        `algorithm is ${String(algorithm)}; use RSA (at least ${minRsaBits} bits) or ECDSA (${curves}).`,
      );
    }
  }),
};
