/**
 * The task engine of prov-taskserv: runs taskserv scripts (install.sh, check.sh, ...) on servers
 * over SSH, in levels of the dependency order, with bounded parallelism across hosts, per-host
 * stop-on-failure, remote timeouts and per-run log files.
 *
 * One SSH exec per (host, taskserv, action): the remote command is `sh -s` and stdin carries a
 * generated prelude (the environment, secret values included: they travel on the SSH channel
 * only, never in argv or on disk; the taskserv folder as base64 here-documents) followed by the
 * remote logic (assets/remote.sh), which ends with one result line that the engine parses.
 */
export { type BundleFile, type TaskservBundle, taskservBundle } from './bundle'
export { ENV_NAME_PATTERN, envValue, SETTING_KEY_PATTERN, settingEnvName, settingKeyProblem, taskEnvironment } from './environment'
export { blocksDependents, runTaskLevels } from './levels'
export { buildRemoteProgram, type ParsedRemoteResult, parseRemoteResult, RESULT_MARK, remoteScriptPath } from './program'
export { runTaskItem } from './run-item'
export { SETTING_TYPE_RULES, SETTING_TYPES, type SettingType, settingTypeProblem } from './setting-types'
export * from './types'
