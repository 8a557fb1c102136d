// The lab's public API: what the CLI, the scenarios and the tests use.
export { ensureEngine, type EngineInfo } from './engine.ts';
export {
  labUp,
  labDown,
  labStatus,
  endpointLines,
  waitReady,
  portFree,
  type UpOptions,
  type UpResult,
  type LabStatus,
  type DownResult,
} from './lab.ts';
export { labPlan, labGraph, sshEndpoint, type LabPlan, type LabNode, type LabPorts } from './plan.ts';
export { readState, stateDir, sshNames, type LabState, type DemoUser } from './state.ts';
export { ensureImages, baseTag, variantTag, BASE_PACKAGES, VARIANTS } from './images.ts';
export {
  LabNodeHandle,
  labNode,
  labNodes,
  type ExecResult,
  type ExecOptions,
  type NodeInspect,
} from './node.ts';
export { diffLab, describeAction, type LabAction, type ObservedLab, type DesiredLab } from './diff.ts';
export { DockerTimeoutError, DockerApiError, dockerCall, engineClient } from './docker.ts';
export { LAB_PRESEED, LAB_CONTAINER_SETTINGS } from './files.ts';
