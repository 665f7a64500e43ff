import { ResourceValidationPolicy } from "@pulumi/policy";
import { at, forTypes, listAt, TYPES, UNKNOWN } from "./props";

export const SERVER_REQUIRED_USES = ["server_auth", "digital_signature"];
export const SERVER_FORBIDDEN_USES = ["cert_signing", "any_extended"];

/**
 * The server certificate profile: a certificate signed by the CA that is not
 * itself a CA allows server_auth and digital_signature and neither
 * cert_signing (it could issue certificates) nor any_extended (it could serve
 * any purpose).
 */
export const tlsServerCertProfile: ResourceValidationPolicy = {
  name: "tls-server-cert-profile",
  description:
    "A server certificate must allow server_auth and digital_signature and must not allow cert_signing or any_extended.",
  enforcementLevel: "mandatory",
  severity: "high",
  validateResource: forTypes([TYPES.locallySignedCert], (props, _args, report) => {
    const isCa = at(props, "isCaCertificate");
    if (isCa === UNKNOWN || isCa === true) {
      return; // a CA certificate: tls-ca-profile
    }
    const uses = listAt(props, "allowedUses");
    if (uses === UNKNOWN || uses.includes(UNKNOWN)) {
      return;
    }
    const missing = SERVER_REQUIRED_USES.filter((u) => !uses.includes(u));
    const forbidden = SERVER_FORBIDDEN_USES.filter((u) => uses.includes(u));
    if (missing.length > 0) {
      report(
        `allowedUses lacks ${missing.join(", ")}; a server certificate needs server_auth and digital_signature.`,
      );
    }
    if (forbidden.length > 0) {
      report(
        `allowedUses contains ${forbidden.join(", ")}; a server certificate must not allow cert_signing or any_extended.`,
      );
    }
  }),
};
