"use strict";

// The errors the client throws: one class per HTTP status (and per transport
// failure), each carrying status, code, field, requestId.

class SkybridgeError extends Error {
  constructor(message, { status = null, code = "error", field = null, requestId = null, deploymentId = null, executionId = null } = {}) {
    super(message);
    this.name = new.target.name;
    this.status = status;
    this.code = code;
    this.field = field;
    this.requestId = requestId;
    this.deploymentId = deploymentId;
    this.executionId = executionId;
  }
}

class BadRequestError extends SkybridgeError {}
class AuthenticationError extends SkybridgeError {}
class PermissionDeniedError extends SkybridgeError {}
class NotFoundError extends SkybridgeError {}
class MethodNotAllowedError extends SkybridgeError {}
class ConflictError extends SkybridgeError {}
class PayloadTooLargeError extends SkybridgeError {}
class UnsupportedMediaTypeError extends SkybridgeError {}
class ValidationError extends SkybridgeError {}
class RateLimitError extends SkybridgeError {}
class InternalServerError extends SkybridgeError {}
class UnavailableError extends SkybridgeError {}
class GatewayTimeoutError extends SkybridgeError {}
class ConnectionError extends SkybridgeError {}
class TimeoutError extends SkybridgeError {}
class AbortError extends SkybridgeError {}

class DeploymentFailedError extends ValidationError {
  constructor(message, fields, deployment) {
    super(message, fields);
    this.deployment = deployment;
  }
}

class WaitTimeoutError extends SkybridgeError {
  constructor(message, fields, execution) {
    super(message, fields);
    this.execution = execution;
  }
}

const BY_STATUS = {
  400: BadRequestError,
  401: AuthenticationError,
  403: PermissionDeniedError,
  404: NotFoundError,
  405: MethodNotAllowedError,
  409: ConflictError,
  413: PayloadTooLargeError,
  415: UnsupportedMediaTypeError,
  422: ValidationError,
  429: RateLimitError,
  500: InternalServerError,
  503: UnavailableError,
  504: GatewayTimeoutError,
};

const BY_CODE = {
  connect_failed: ConnectionError,
  timeout: TimeoutError,
  aborted: AbortError,
};

/** The error for a failure the native layer reports as plain data. */
function fromNative(e) {
  const fields = {
    status: e.status ?? null,
    code: e.code,
    field: e.field ?? null,
    requestId: e.requestId ?? null,
    deploymentId: e.deploymentId ?? null,
    executionId: e.executionId ?? null,
  };
  const Class = (e.status != null && BY_STATUS[e.status]) || BY_CODE[e.code] || SkybridgeError;
  return new Class(e.message, fields);
}

module.exports = {
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
  fromNative,
};
