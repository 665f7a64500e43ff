/** Every policy of the pack, in report order. `index.ts` hands this list to the PolicyPack. */
import { Policies } from "@pulumi/policy";
import { commandSecretHygiene } from "./command-secret-hygiene";
import { containerImageAllowedRegistry } from "./container-image-allowed-registry";
import { containerImageDigestPinned } from "./container-image-digest-pinned";
import { harborHttpsOffline } from "./harbor-https-offline";
import { harborNoDefaultSecrets } from "./harbor-no-default-secrets";
import { helmChartLocalPinned } from "./helm-chart-local-pinned";
import { noTlsVerificationBypass } from "./no-tls-verification-bypass";
import { sshHostKeyPinned } from "./ssh-host-key-pinned";
import { tlsCaKeyProtected } from "./tls-ca-key-protected";
import { tlsCaProfile } from "./tls-ca-profile";
import { tlsKeyStrength } from "./tls-key-strength";
import { tlsServerCertHostname } from "./tls-server-cert-hostname";
import { tlsServerCertProfile } from "./tls-server-cert-profile";
import { tlsServerCertValidity } from "./tls-server-cert-validity";

export const policies: Policies = [
  tlsKeyStrength,
  tlsCaProfile,
  tlsServerCertProfile,
  tlsServerCertValidity,
  tlsServerCertHostname,
  tlsCaKeyProtected,
  sshHostKeyPinned,
  commandSecretHygiene,
  harborNoDefaultSecrets,
  harborHttpsOffline,
  helmChartLocalPinned,
  containerImageAllowedRegistry,
  containerImageDigestPinned,
  noTlsVerificationBypass,
];
