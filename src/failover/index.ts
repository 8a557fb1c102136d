// Failover and failback building blocks: HAProxy runtime API, fencing, failback plans, RPO.
export * from './haproxy.ts';
export * from './fence.ts';
export * from './plan.ts';
export * from './remote.ts';
export * from './probe.ts';
export * from './pair.ts';
