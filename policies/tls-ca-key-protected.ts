import { StackValidationPolicy } from "@pulumi/policy";
import { at, feeding, TYPES } from "./props";

/**
 * The CA key is protected: the PrivateKey whose PEM signs the self-signed CA
 * certificate carries `protect: true`, so no `destroy` or replacement can
 * silently re-key the trust every client node holds. Found by structure (the
 * key feeding the CA's `privateKeyPem`), not by name. A CA brought from
 * config has no key resource and nothing to protect.
 */
export const tlsCaKeyProtected: StackValidationPolicy = {
  name: "tls-ca-key-protected",
  description: "The private key of the CA certificate must be a protected resource.",
  enforcementLevel: "mandatory",
  severity: "critical",
  validateStack: (args, report) => {
    for (const ca of args.resources) {
      if (ca.type !== TYPES.selfSignedCert || at(ca.props, "isCaCertificate") !== true) {
        continue;
      }
      for (const key of feeding(ca, "privateKeyPem", TYPES.privateKey)) {
        if (key.opts?.protect !== true) {
          report(
            `CA key ${key.name} is not protected; set protect: true on it (it signs the certificate every client trusts).`,
            key.urn,
          );
        }
      }
    }
  },
};
