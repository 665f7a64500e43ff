/**
 * A program of N client nodes, each a ClientTrust (used by the unit test
 * and by the mocks benchmark). Call it after `pulumi.runtime.setMocks`.
 */
import * as pulumi from "@pulumi/pulumi";
import type { ClientConfig, Runtime } from "../../infra/config";
import { ClientTrust } from "../../infra/trust";

export const BENCH_HOST_KEY =
  "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";

/** Node i of a synthetic fleet: 10.60.x.y, all runtimes but k3s/rke2. */
export function benchClient(
  i: number,
  runtimes: Runtime[] = ["docker", "containerd", "podman", "os"],
): ClientConfig {
  return {
    name: `node-${i}`,
    address: `10.60.${Math.floor(i / 250)}.${(i % 250) + 1}`,
    port: 22,
    user: "root",
    hostKey: BENCH_HOST_KEY,
    runtimes,
    sudo: false,
    restartContainerd: false,
    push: false,
  };
}

export interface TrustFleetArgs {
  clients: ClientConfig[];
  caCertPem: pulumi.Input<string>;
  caFingerprintSha256: pulumi.Input<string>;
  previousCaCertPem?: pulumi.Input<string>;
  registryReady?: pulumi.Input<unknown>;
  verify?: boolean;
  port?: number;
}

/** One ClientTrust per client, as the composition root wires them. */
export function trustFleet(args: TrustFleetArgs): ClientTrust[] {
  return args.clients.map(
    (client) =>
      new ClientTrust(`trust-${client.name}`, {
        client,
        privateKey: pulumi.secret(
          "-----BEGIN OPENSSH PRIVATE KEY-----\nbench\n-----END OPENSSH PRIVATE KEY-----\n",
        ),
        hostname: "reg.casd.local",
        port: args.port ?? 443,
        caCertPem: args.caCertPem,
        caFingerprintSha256: args.caFingerprintSha256,
        previousCaCertPem: args.previousCaCertPem,
        registryReady: args.registryReady,
        verify: args.verify,
      }),
  );
}
