// ESM entry of the Skybridge Node SDK: the CommonJS module's exports, by name.
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const sdk = require("./index.js");

export const {
  Client,
  SkybridgeError,
  BadRequestError,
  AuthenticationError,
  PermissionDeniedError,
  NotFoundError,
  MethodNotAllowedError,
  ConflictError,
  PayloadTooLargeError,
  UnsupportedMediaTypeError,
  ValidationError,
  RateLimitError,
  InternalServerError,
  UnavailableError,
  GatewayTimeoutError,
  ConnectionError,
  TimeoutError,
  AbortError,
  DeploymentFailedError,
  WaitTimeoutError,
} = sdk;
export default sdk;
