export { startDevServer } from "./dev-server.js";
export type { DevServer, DevServerShutdownResult, DevServerStats, EmitEventInit } from "./dev-server.js";
export { validateDevServerOptions, validateDevServerShutdownOptions } from "./dev-server-options.js";
export type { DevServerOptions, DevServerShutdownOptions, DevServerTlsOptions, ResolvedDevServerOptions } from "./dev-server-options.js";
export { ProjectStore } from "./project-store.js";
export type { SyncOutcome } from "./project-store.js";
export type { StreamClosedInfo, StreamOpenedInfo } from "./event-hub.js";
export type { SyncCallInfo, LastClientIds } from "./call-log.js";
export type { TokensSeen } from "./bearer-auth.js";
