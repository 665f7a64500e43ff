/**
 * Node trust on Kubernetes: a DaemonSet that writes containerd's
 * `certs.d/<registry>/hosts.toml` and the CA on every node (and the OS store
 * when configured) through hostPath mounts. Its script is rendered by the
 * trust room's renderers (the very body the SSH path runs), installed under
 * the root prefix `/host`, and reads the CA on stdin from its ConfigMap.
 *
 * An init container runs the script once per pod; the main container only
 * waits. The pod template carries the CA fingerprint and the hash of what
 * the script is fed, so a CA rotation (or a script change) rolls the
 * DaemonSet and re-runs the script on every node.
 *
 * Pure: plain objects in the shape of the Kubernetes API; the component
 * passes them to `k8s.core.v1.ConfigMap` and `k8s.apps.v1.DaemonSet`.
 */
import type * as pulumi from "@pulumi/pulumi";
import { renderStepScript, sha256Hex } from "../../remote/script";
import {
  CONTAINERD_HOSTS_DIR,
  renderTrustInstallBody,
  TRUST_STATE_DIR,
  trustStdin,
  validateTrustSpec,
  type TrustSpec,
} from "../../trust/render";

/** Where the node's filesystem appears inside the container. */
export const NODE_ROOT = "/host";
/** Where the ConfigMap (script and CA input) is mounted. */
export const SCRIPT_DIR = "/casd";
export const SCRIPT_KEY = "node-trust.sh";
export const CA_INPUT_KEY = "ca-input.pem";
export const STEP = "node-trust";

export const ANNOTATIONS = {
  caFingerprint: "casd.io/ca-sha256",
  input: "casd.io/ca-input-sha256",
  script: "casd.io/script-sha256",
} as const;

export interface NodeTrustSpecInput {
  /** The registry's DNS name. */
  hostname: string;
  /** The port clients use (443, or the https node port). */
  port: number;
  /** Also write the CA into the node's OS store (mounts the node's root). */
  osStore: boolean;
}

/** The trust spec of the DaemonSet: containerd (+ os), pull only, no restart, no /etc/hosts pin. */
export function nodeTrustSpec(i: NodeTrustSpecInput): TrustSpec {
  return {
    hostname: i.hostname,
    port: i.port,
    runtimes: i.osStore ? ["containerd", "os"] : ["containerd"],
    push: false,
    restartContainerd: false,
  };
}

/** The full bash script of the init container (prelude, trust body, result line). Pure. */
export function renderNodeTrustScript(spec: TrustSpec, namespace: string): string {
  const problems = validateTrustSpec(spec);
  if (problems.length > 0) throw new Error(`node trust: ${problems.join("; ")}`);
  const generation = sha256Hex(
    "casd:harbor:HarborHelm/node-trust",
    namespace,
    JSON.stringify(spec),
  ).slice(0, 24);
  return renderStepScript({
    step: STEP,
    body: renderTrustInstallBody(spec, { root: NODE_ROOT, node: "k8s-daemonset", generation }),
  });
}

export interface NodeTrustManifestArgs {
  spec: TrustSpec;
  namespace: string;
  /** Object names (ConfigMap and DaemonSet). */
  name: string;
  /** Full image reference (mirror/repository:tag). */
  image: string;
  imagePullSecrets: string[];
  /** Its SHA-256 fingerprint: the pod-template annotation that re-runs the script. */
  caFingerprintSha256: pulumi.Input<string>;
  /** sha256 of the CA input (`ca-input.pem`), also an annotation. */
  caInputSha256: pulumi.Input<string>;
  /** The CA input: current CA, then the previous one during a rotation's overlap. */
  caInput: pulumi.Input<string>;
}

export interface HostPathMount {
  name: string;
  hostPath: string;
  mountPath: string;
}

/** hostPath mounts: the containerd hosts dir and the trust record, or the whole root for the OS store. */
export function hostPathMounts(spec: TrustSpec): HostPathMount[] {
  if (spec.runtimes.includes("os"))
    return [{ name: "node-root", hostPath: "/", mountPath: NODE_ROOT }];
  return [
    {
      name: "containerd-certs",
      hostPath: CONTAINERD_HOSTS_DIR,
      mountPath: `${NODE_ROOT}${CONTAINERD_HOSTS_DIR}`,
    },
    { name: "trust-state", hostPath: TRUST_STATE_DIR, mountPath: `${NODE_ROOT}${TRUST_STATE_DIR}` },
  ];
}

/** The init container's command: the script with the CA input on stdin. */
export function initCommand(): string[] {
  return [
    "/bin/bash",
    "-c",
    `exec /bin/bash ${SCRIPT_DIR}/${SCRIPT_KEY} < ${SCRIPT_DIR}/${CA_INPUT_KEY}`,
  ];
}

/** The main container's command: wait, and leave promptly on SIGTERM. */
export const WAIT_COMMAND = [
  "/bin/sh",
  "-c",
  "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done",
];

/** The ConfigMap and DaemonSet (metadata and spec), as plain API objects. Pure. */
export function renderNodeTrustManifests(a: NodeTrustManifestArgs, script: string) {
  const labels = {
    "app.kubernetes.io/name": "casd-node-trust",
    "app.kubernetes.io/part-of": "casd-registry",
  };
  const mounts = hostPathMounts(a.spec);
  const osStore = a.spec.runtimes.includes("os");
  const securityContext = {
    runAsUser: 0,
    runAsGroup: 0,
    privileged: false,
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    capabilities: {
      drop: ["ALL"],
      add: osStore
        ? ["CHOWN", "DAC_OVERRIDE", "FOWNER", "SYS_CHROOT"]
        : ["CHOWN", "DAC_OVERRIDE", "FOWNER"],
    },
    seccompProfile: { type: "RuntimeDefault" },
  };
  const resources = { requests: { cpu: "10m", memory: "16Mi" }, limits: { memory: "64Mi" } };
  const configMap = {
    metadata: { name: a.name, namespace: a.namespace, labels },
    data: { [SCRIPT_KEY]: script, [CA_INPUT_KEY]: a.caInput },
  };
  const daemonSet = {
    metadata: { name: a.name, namespace: a.namespace, labels },
    spec: {
      selector: { matchLabels: labels },
      updateStrategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: "25%" } },
      template: {
        metadata: {
          labels,
          annotations: {
            [ANNOTATIONS.caFingerprint]: a.caFingerprintSha256,
            [ANNOTATIONS.input]: a.caInputSha256,
            [ANNOTATIONS.script]: sha256Hex(script),
          },
        },
        spec: {
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          tolerations: [{ operator: "Exists" }],
          ...(a.imagePullSecrets.length > 0
            ? { imagePullSecrets: a.imagePullSecrets.map((name) => ({ name })) }
            : {}),
          initContainers: [
            {
              name: "install",
              image: a.image,
              imagePullPolicy: "IfNotPresent",
              command: initCommand(),
              securityContext,
              resources,
              volumeMounts: [
                { name: "script", mountPath: SCRIPT_DIR, readOnly: true },
                { name: "tmp", mountPath: "/tmp" },
                ...mounts.map((m) => ({ name: m.name, mountPath: m.mountPath })),
              ],
            },
          ],
          containers: [
            {
              name: "wait",
              image: a.image,
              imagePullPolicy: "IfNotPresent",
              command: WAIT_COMMAND,
              securityContext: {
                ...securityContext,
                runAsUser: 65534,
                runAsGroup: 65534,
                runAsNonRoot: true,
                capabilities: { drop: ["ALL"] },
              },
              resources,
            },
          ],
          volumes: [
            { name: "script", configMap: { name: a.name, defaultMode: 0o444 } },
            { name: "tmp", emptyDir: { medium: "Memory", sizeLimit: "16Mi" } },
            ...mounts.map((m) => ({
              name: m.name,
              hostPath: { path: m.hostPath, type: "DirectoryOrCreate" },
            })),
          ],
        },
      },
    },
  };
  return { configMap, daemonSet };
}

/** The CA input fed to the script and its hash. Pure. */
export function caInputOf(
  caCertPem: string,
  previousCaCertPem?: string,
): { text: string; sha256: string } {
  const text = trustStdin(caCertPem, previousCaCertPem);
  return { text, sha256: sha256Hex(text) };
}
