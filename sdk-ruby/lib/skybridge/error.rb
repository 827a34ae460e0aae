# frozen_string_literal: true

module Skybridge
  # Every error the client raises. `status` is the HTTP status when the server
  # answered; `code` is the API's stable code (`function_not_found`, ...) or the
  # client's own for failures without an answer (`connect_failed`, `timeout`).
  class Error < StandardError
    attr_reader :status, :code, :field, :request_id, :deployment_id, :execution_id

    def initialize(message, status: nil, code: "error", field: nil, request_id: nil, deployment_id: nil, execution_id: nil)
      super(message)
      @status = status
      @code = code
      @field = field
      @request_id = request_id
      @deployment_id = deployment_id
      @execution_id = execution_id
    end

    # The error for a failure as the native layer reports it.
    def self.from_payload(payload)
      fields = {
        status: payload["status"], code: payload["code"] || "error", field: payload["field"],
        request_id: payload["request_id"], deployment_id: payload["deployment_id"],
        execution_id: payload["execution_id"]
      }
      message = payload["message"] || "error"
      if payload["code"] == "deployment_failed" && payload["deployment"]
        return DeploymentFailedError.new(message, Deployment.from_h(payload["deployment"]), **fields)
      end
      if payload["code"] == "wait_timeout" && payload["execution"]
        return WaitTimeoutError.new(message, Execution.from_h(payload["execution"]), **fields)
      end

      klass = BY_STATUS[payload["status"]] || BY_CODE[payload["code"]] || Error
      klass.new(message, **fields)
    end
  end

  # 400: the request is malformed.
  class BadRequestError < Error; end
  # 401: no credentials.
  class AuthenticationError < Error; end
  # 403: the credentials do not allow it.
  class PermissionDeniedError < Error; end
  # 404: no such function, execution or route.
  class NotFoundError < Error; end
  # 405: the route does not take this method.
  class MethodNotAllowedError < Error; end
  # 409: a conflict (the name is taken, the function is not deployed).
  class ConflictError < Error; end
  # 413: the body or the input is too large.
  class PayloadTooLargeError < Error; end
  # 415: the body is not JSON.
  class UnsupportedMediaTypeError < Error; end
  # 422: well formed but refused (see `code`).
  class ValidationError < Error; end
  # 429: too many requests.
  class RateLimitError < Error; end
  # 500: a server bug.
  class InternalServerError < Error; end
  # 503: a backend (or the server) cannot serve now.
  class UnavailableError < Error; end
  # 504: the function ran past its time limit while the caller waited.
  class GatewayTimeoutError < Error; end
  # No connection could be made.
  class ConnectionError < Error; end
  # The call timed out.
  class TimeoutError < Error; end

  # `deploy_and_wait`: the build failed; `deployment` holds the whole build log.
  class DeploymentFailedError < ValidationError
    attr_reader :deployment

    def initialize(message, deployment, **fields)
      super(message, **fields)
      @deployment = deployment
    end
  end

  # `wait_for`: the execution did not finish in time; `execution` as last seen.
  class WaitTimeoutError < Error
    attr_reader :execution

    def initialize(message, execution, **fields)
      super(message, **fields)
      @execution = execution
    end
  end

  class Error
    BY_STATUS = {
      400 => BadRequestError, 401 => AuthenticationError, 403 => PermissionDeniedError,
      404 => NotFoundError, 405 => MethodNotAllowedError, 409 => ConflictError,
      413 => PayloadTooLargeError, 415 => UnsupportedMediaTypeError, 422 => ValidationError,
      429 => RateLimitError, 500 => InternalServerError, 503 => UnavailableError,
      504 => GatewayTimeoutError
    }.freeze
    BY_CODE = { "connect_failed" => ConnectionError, "timeout" => TimeoutError }.freeze
  end
end
