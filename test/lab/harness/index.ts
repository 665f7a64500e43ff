/**
 * The lab harness: cached rootfs, hosts in network namespaces with sshd,
 * teardown, and live mocks. See each module's doc; `harness.test.ts` shows
 * the whole flow.
 */
export * from "./rootfs";
export * from "./hosts";
export * from "./teardown";
export * from "./live-mocks";
export { isAlive, mustSucceed, run, runSync, shq, type RunOptions, type RunResult } from "./proc";
