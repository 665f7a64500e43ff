/**
 * The one SSH connection builder of the stack. Every connection pins the
 * host's public key: @pulumi/command skips host key checks entirely when
 * `hostKey` is absent, so a missing key is an error here, never a default.
 */
import * as pulumi from "@pulumi/pulumi";
import type * as command from "@pulumi/command";
import type { StackConfig } from "../config";

export interface SshTarget {
  /** Address of the host. */
  address: pulumi.Input<string>;
  /** SSH port (default 22). */
  port?: pulumi.Input<number>;
  /** Login user (default root). */
  user?: pulumi.Input<string>;
  /** Pinned public host key line, `<type> <base64>`; required. */
  hostKey: pulumi.Input<string>;
}

export interface ConnectionArgs extends SshTarget {
  /** Private key (secret). */
  privateKey: pulumi.Input<string>;
  /** Optional jump host with its own pinned key; uses `bastionPrivateKey` or else `privateKey`. */
  bastion?: SshTarget;
  bastionPrivateKey?: pulumi.Input<string>;
  /** Failed dials tolerated before giving up (default 10). */
  dialErrorLimit?: pulumi.Input<number>;
  /** Seconds per dial (default 15). */
  perDialTimeout?: pulumi.Input<number>;
}

export type Connection = command.types.input.remote.ConnectionArgs;

/** Builds a connection for `command.remote.*`; the private keys are marked secret. */
export function sshConnection(args: ConnectionArgs): Connection {
  if (args.hostKey === undefined || args.hostKey === "") {
    throw new Error(
      `sshConnection: hostKey is required for ${String(args.address)} (an unpinned connection accepts any host)`,
    );
  }
  const conn: Connection = {
    host: args.address,
    port: args.port ?? 22,
    user: args.user ?? "root",
    hostKey: args.hostKey,
    privateKey: pulumi.secret(args.privateKey),
    dialErrorLimit: args.dialErrorLimit ?? 10,
    perDialTimeout: args.perDialTimeout ?? 15,
  };
  if (args.bastion) {
    if (args.bastion.hostKey === undefined || args.bastion.hostKey === "") {
      throw new Error(
        `sshConnection: the bastion of ${String(args.address)} needs its own hostKey`,
      );
    }
    conn.proxy = {
      host: args.bastion.address,
      port: args.bastion.port ?? 22,
      user: args.bastion.user ?? "root",
      hostKey: args.bastion.hostKey,
      privateKey: pulumi.secret(args.bastionPrivateKey ?? args.privateKey),
      dialErrorLimit: args.dialErrorLimit ?? 10,
      perDialTimeout: args.perDialTimeout ?? 15,
    };
  }
  return conn;
}

/** The registry host's connection fields from the stack config (its key and the bastion's). */
export function registryHostConnectionArgs(cfg: StackConfig): ConnectionArgs {
  const h = cfg.registryHost;
  return {
    address: h.address,
    port: h.port,
    user: h.user,
    hostKey: h.hostKey,
    privateKey: cfg.sshPrivateKey,
    bastion: h.bastion,
    bastionPrivateKey: cfg.bastionPrivateKey,
    dialErrorLimit: h.dialErrorLimit,
    perDialTimeout: h.perDialTimeout,
  };
}
