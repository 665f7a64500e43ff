/**
 * Harbor on Kubernetes from the chart in the offline bundle (deploy: helm).
 *
 * Children, in order: a Kubernetes provider (kubeconfig secret or context),
 * the namespace (kept on destroy: it holds the PVCs), the Secrets (TLS of the
 * registry, its CA, the admin password, every internal secret derived from
 * the stack's seed, core's token-signing certificate, and the external
 * database/Redis/S3 credentials when configured), the Helm release of the
 * verified local chart archive, and the node-trust DaemonSet.
 *
 * Everything is validated before the first child exists: config pieces, the
 * scale-out rules, the chart archive (sha256, name, version) and every value
 * key against the archive's own values.yaml.
 */
import * as path from "node:path";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as tls from "@pulumi/tls";
import type { HarborConfig, HelmConfig } from "../../config";
import { verifyChartArchive, type VerifiedChart } from "./chart";
import { checkValuesKeys, documentedKeys } from "./chart-keys";
import {
  caInputOf,
  nodeTrustSpec,
  renderNodeTrustManifests,
  renderNodeTrustScript,
} from "./node-trust";
import { deriveInternalSecrets, type InternalSecrets } from "./secrets";
import {
  buildHarborValues,
  externalUrl,
  PLACEHOLDER_SECRETS,
  RELEASE_NAME,
  scaleOutProblems,
  SECRET_NAMES,
  type HelmValuesInput,
} from "./values";

export { buildHarborValues, externalUrl, SECRET_NAMES, RELEASE_NAME } from "./values";

/** Object name of the node-trust ConfigMap and DaemonSet. */
export const NODE_TRUST_NAME = `${RELEASE_NAME}-casd-node-trust`;

export interface HarborHelmArgs {
  /** The registry's DNS name (plain config value): externalURL, ingress host, trust directory. */
  hostname: string;
  /** The `helm` section of the stack config (chart, cluster access, namespace, expose, images, replicas, node trust). */
  helm: HelmConfig;
  /** The `harbor` section of the stack config (secrets, trivy, logging, external database/Redis, S3). */
  harbor: HarborConfig;
  /** The CA clients trust (PEM): caSecretName, caBundleSecretName and node trust. */
  caCertPem: pulumi.Input<string>;
  /** Server certificate then chain (PEM): the ingress/nginx TLS secret. */
  fullChainPem: pulumi.Input<string>;
  /** The server's private key (PEM, secret). */
  serverKeyPem: pulumi.Input<string>;
  /** SHA-256 of the CA (hex): a change re-runs node trust on every node. */
  caFingerprintSha256: pulumi.Input<string>;
  /** The previous CA (PEM) kept trusted on the nodes during a rotation's overlap (default none). */
  previousCaCertPem?: pulumi.Input<string>;
}

interface Problem {
  propertyPath: string;
  reason: string;
}

/** Checks everything that can be checked before a resource exists; returns the verified chart. */
function validate(
  name: string,
  args: HarborHelmArgs,
): { chart: VerifiedChart; input: HelmValuesInput } {
  const { helm, harbor } = args;
  const problems: Problem[] = [];
  const need = (ok: unknown, propertyPath: string, reason: string) => {
    if (!ok) problems.push({ propertyPath, reason });
  };
  need(args.hostname, "hostname", "is required (the registry's DNS name)");
  need(helm.chartPath, "helm.chartPath", "is required: the chart archive in the offline bundle");
  need(helm.chartSha256, "helm.chartSha256", "is required: the archive's pinned sha256");
  need(
    helm.mirrorRegistry,
    "helm.mirrorRegistry",
    "is required: the registry that holds Harbor's images",
  );
  need(
    helm.internalSeed,
    "harborInternalSeed",
    "is required: Harbor's internal secrets are derived from it",
  );
  need(harbor.adminPassword, "harborAdminPassword", "is required");
  need(harbor.databasePassword, "harborDatabasePassword", "is required");
  need(
    helm.kubeconfig || helm.kubeContext,
    "helm.kubeContext",
    "is required when no kubeconfig secret is set",
  );
  if (harbor.s3?.accessKey)
    need(harbor.s3SecretKey, "harborS3SecretKey", "is required when harbor.s3.accessKey is set");

  const input: HelmValuesInput = {
    hostname: args.hostname,
    helm: { ...helm, mirrorRegistry: helm.mirrorRegistry ?? "" },
    harbor: { ...harbor, redisPassword: harbor.redisPassword !== undefined },
  };
  problems.push(...scaleOutProblems(input));

  let chart: VerifiedChart | undefined;
  if (helm.chartPath && helm.chartSha256) {
    try {
      chart = verifyChartArchive(path.resolve(helm.chartPath), helm.chartSha256, helm.chartVersion);
    } catch (e) {
      problems.push({
        propertyPath: "helm.chartPath",
        reason: (e as Error).message.replace(/^helm\.chartPath: /, ""),
      });
    }
  }
  if (chart) {
    const keys = documentedKeys(chart.valuesYaml);
    for (const p of checkValuesKeys(
      buildHarborValues(input, PLACEHOLDER_SECRETS) as unknown as Record<string, unknown>,
      keys,
      `chart harbor ${chart.version}`,
    )) {
      const i = p.indexOf(": ");
      problems.push({ propertyPath: `values.${p.slice(0, i)}`, reason: p.slice(i + 2) });
    }
  }
  if (problems.length > 0 || !chart) {
    throw new pulumi.InputPropertiesError({
      message: `HarborHelm ${name}: nothing was created:\n${problems.map((p) => `  - ${p.propertyPath}: ${p.reason}`).join("\n")}`,
      errors: problems,
    });
  }
  return { chart, input };
}

export class HarborHelm extends pulumi.ComponentResource {
  /** https://<hostname>[:<node port>]: what clients and Harbor's UI use. */
  public readonly externalUrl: pulumi.Output<string>;
  /** The namespace Harbor runs in. */
  public readonly namespace: pulumi.Output<string>;
  /** Helm's status of the release (`deployed` when healthy). */
  public readonly releaseStatus: pulumi.Output<string>;

  constructor(name: string, args: HarborHelmArgs, opts?: pulumi.ComponentResourceOptions) {
    // Validated before the component itself is registered: a bad input creates nothing at all.
    const { input } = validate(name, args);
    super("casd:harbor:HarborHelm", name, {}, opts);
    const { helm, harbor } = args;

    const provider = new k8s.Provider(
      `${name}-k8s`,
      {
        ...(helm.kubeconfig ? { kubeconfig: pulumi.secret(helm.kubeconfig) } : {}),
        ...(helm.kubeContext ? { context: helm.kubeContext } : {}),
      },
      { parent: this },
    );
    const k = { parent: this, provider };

    const ns = helm.namespace;
    const namespaceDeps: pulumi.Resource[] = [];
    if (helm.createNamespace) {
      // Kept on destroy: deleting a namespace deletes its PVCs, which Helm's keep policy protects.
      namespaceDeps.push(
        new k8s.core.v1.Namespace(
          `${name}-ns`,
          { metadata: { name: ns, labels: { "app.kubernetes.io/part-of": "casd-registry" } } },
          { ...k, retainOnDelete: true },
        ),
      );
    }
    const inNs = { ...k, dependsOn: namespaceDeps };
    const meta = (objName: string) => ({
      name: objName,
      namespace: ns,
      labels: { "app.kubernetes.io/part-of": "casd-registry" },
    });
    const secretData = (data: Record<string, pulumi.Input<string>>) =>
      pulumi.secret(pulumi.output(data));

    const derived: pulumi.Output<InternalSecrets> = pulumi.secret(
      pulumi.output(helm.internalSeed!).apply(deriveInternalSecrets),
    );

    const secrets: pulumi.Resource[] = [
      new k8s.core.v1.Secret(
        `${name}-tls`,
        {
          metadata: meta(SECRET_NAMES.tls),
          type: "kubernetes.io/tls",
          stringData: secretData({ "tls.crt": args.fullChainPem, "tls.key": args.serverKeyPem }),
        },
        inNs,
      ),
      new k8s.core.v1.Secret(
        `${name}-ca`,
        {
          metadata: meta(SECRET_NAMES.ca),
          type: "Opaque",
          stringData: { "ca.crt": args.caCertPem },
        },
        inNs,
      ),
      new k8s.core.v1.Secret(
        `${name}-admin`,
        {
          metadata: meta(SECRET_NAMES.admin),
          type: "Opaque",
          stringData: secretData({ HARBOR_ADMIN_PASSWORD: harbor.adminPassword! }),
        },
        inNs,
      ),
      new k8s.core.v1.Secret(
        `${name}-internal`,
        {
          metadata: meta(SECRET_NAMES.internal),
          type: "Opaque",
          stringData: pulumi.secret(
            derived.apply((d) => ({
              secretKey: d.secretKey,
              secret: d.coreSecret,
              CSRF_KEY: d.xsrfKey,
              JOBSERVICE_SECRET: d.jobserviceSecret,
              REGISTRY_HTTP_SECRET: d.registryHttpSecret,
              REGISTRY_PASSWD: d.registryPassword,
              REGISTRY_HTPASSWD: d.registryHtpasswd,
            })),
          ),
        },
        inNs,
      ),
    ];

    // Core's token-signing pair: RSA in PKCS#1 (what Harbor's token service reads), kept in state, so stable.
    const tokenKey = new tls.PrivateKey(
      `${name}-token-key`,
      { algorithm: "RSA", rsaBits: 3072 },
      { parent: this },
    );
    const tokenCert = new tls.SelfSignedCert(
      `${name}-token-cert`,
      {
        privateKeyPem: tokenKey.privateKeyPem,
        subject: { commonName: `${RELEASE_NAME}-token-issuer`, organization: "casd-registry" },
        validityPeriodHours: 10 * 8760,
        allowedUses: ["digital_signature"],
      },
      { parent: this },
    );
    secrets.push(
      new k8s.core.v1.Secret(
        `${name}-token`,
        {
          metadata: meta(SECRET_NAMES.token),
          type: "kubernetes.io/tls",
          stringData: secretData({
            "tls.crt": tokenCert.certPem,
            "tls.key": tokenKey.privateKeyPem,
          }),
        },
        inNs,
      ),
    );
    if (harbor.externalDatabase) {
      secrets.push(
        new k8s.core.v1.Secret(
          `${name}-database`,
          {
            metadata: meta(SECRET_NAMES.database),
            type: "Opaque",
            stringData: secretData({ password: harbor.databasePassword! }),
          },
          inNs,
        ),
      );
    }
    if (harbor.externalRedis && harbor.redisPassword) {
      secrets.push(
        new k8s.core.v1.Secret(
          `${name}-redis`,
          {
            metadata: meta(SECRET_NAMES.redis),
            type: "Opaque",
            stringData: secretData({ REDIS_PASSWORD: harbor.redisPassword }),
          },
          inNs,
        ),
      );
    }
    if (harbor.s3?.accessKey) {
      secrets.push(
        new k8s.core.v1.Secret(
          `${name}-s3`,
          {
            metadata: meta(SECRET_NAMES.s3),
            type: "Opaque",
            stringData: secretData({
              REGISTRY_STORAGE_S3_ACCESSKEY: harbor.s3.accessKey,
              REGISTRY_STORAGE_S3_SECRETKEY: harbor.s3SecretKey!,
            }),
          },
          inNs,
        ),
      );
    }
    if (harbor.s3?.caBundlePem) {
      secrets.push(
        new k8s.core.v1.Secret(
          `${name}-s3-ca`,
          {
            metadata: meta(SECRET_NAMES.s3Ca),
            type: "Opaque",
            stringData: { "ca.crt": `${harbor.s3.caBundlePem.trim()}\n` },
          },
          inNs,
        ),
      );
    }

    const values = pulumi.secret(
      pulumi
        .all([derived, harbor.adminPassword!, harbor.databasePassword!])
        .apply(([d, adminPassword, databasePassword]) =>
          buildHarborValues(input, { ...d, adminPassword, databasePassword }),
        ),
    );
    const release = new k8s.helm.v3.Release(
      `${name}-release`,
      {
        name: RELEASE_NAME,
        namespace: ns,
        // The path as configured (relative to the project): the verified archive, no repository.
        chart: helm.chartPath!,
        version: helm.chartVersion,
        values,
        createNamespace: false,
        atomic: true,
        cleanupOnFail: true,
        waitForJobs: true,
        timeout: helm.timeoutSeconds,
        maxHistory: 10,
        description: `casd-registry: Harbor ${harbor.version}, chart ${helm.chartVersion}`,
      },
      { ...k, dependsOn: [...namespaceDeps, ...secrets] },
    );

    if (helm.nodeTrust) {
      const spec = nodeTrustSpec({
        hostname: args.hostname,
        port: helm.expose === "nodePort" ? helm.httpsNodePort : 443,
        osStore: helm.nodeTrustOsStore,
      });
      const script = renderNodeTrustScript(spec, ns);
      const caInput = pulumi
        .all([args.caCertPem, args.previousCaCertPem])
        .apply(([ca, prev]) => caInputOf(ca, prev));
      const m = renderNodeTrustManifests(
        {
          spec,
          namespace: ns,
          name: NODE_TRUST_NAME,
          image: `${helm.mirrorRegistry}/${helm.nodeTrustImage}`,
          imagePullSecrets: helm.imagePullSecrets,
          caFingerprintSha256: args.caFingerprintSha256,
          caInput: caInput.apply((c) => c.text),
          caInputSha256: caInput.apply((c) => c.sha256),
        },
        script,
      );
      const cm = new k8s.core.v1.ConfigMap(`${name}-node-trust-script`, m.configMap, inNs);
      new k8s.apps.v1.DaemonSet(`${name}-node-trust`, m.daemonSet, {
        ...k,
        dependsOn: [...namespaceDeps, cm],
      });
    }

    this.externalUrl = pulumi.output(externalUrl(args.hostname, helm.expose, helm.httpsNodePort));
    this.namespace = release.namespace.apply((n) => n ?? ns);
    this.releaseStatus = release.status.apply((s) => s?.status ?? "unknown");
    this.registerOutputs({
      externalUrl: this.externalUrl,
      namespace: this.namespace,
      releaseStatus: this.releaseStatus,
    });
  }
}
