/**
 * Host and Origin checks of the inspector server: the shared listener Host
 * rule (src/listener/host-rule.ts), which the health server applies too.
 */
export { isAllowedHostHeader, isAllowedOrigin } from "../src/listener/host-rule.js";
