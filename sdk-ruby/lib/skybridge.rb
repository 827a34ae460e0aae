# frozen_string_literal: true

require "json"
require_relative "skybridge/version"
require_relative "skybridge/model"
require_relative "skybridge/error"
require_relative "skybridge/generated"
require_relative "skybridge/skybridge_native"

# The Skybridge Ruby SDK: `Skybridge::Client` has one method per API operation
# (generated from the OpenAPI document), keyword arguments, model objects with
# readers and `to_h`, and raises `Skybridge::Error` subclasses. Requests are
# made by the Rust client (skybridge-client) in the native extension, with the
# GVL released, so other Ruby threads run meanwhile; it works after `fork`.
module Skybridge
  # A client of one Skybridge server.
  class Client
    include Operations

    # The server's base URL.
    attr_reader :url

    # `url` defaults to SKYBRIDGE_URL, then http://127.0.0.1:3280; `token` to
    # SKYBRIDGE_TOKEN (sent as a bearer token). `timeout` is per attempt, in
    # seconds; `max_retries` applies where a retry is safe.
    def initialize(url: nil, token: nil, timeout: nil, max_retries: nil)
      url = ENV.fetch("SKYBRIDGE_URL", nil) if url.nil? || url.empty?
      url = "http://127.0.0.1:3280" if url.nil? || url.empty?
      token ||= ENV.fetch("SKYBRIDGE_TOKEN", nil)
      token = nil if token&.empty?
      @url = url.sub(%r{/+\z}, "")
      @native = Native::Client.new(@url, token, millis(timeout), max_retries)
    rescue ArgumentError => e
      raise Error.new(e.message, code: "invalid_request")
    end

    # Deploys and returns the ready deployment; a failed build raises
    # DeploymentFailedError, whose `deployment` has the whole build log.
    def deploy_and_wait(name, cache_bust: false, timeout: nil)
      Deployment.from_h(unwrap(@native.deploy_and_wait(name, cache_bust, millis(timeout)), :json))
    end

    # Invokes and waits for the finished execution (check its `status`). The
    # input is any JSON value: `invoke("add", input: [2, 40])`.
    def invoke(name, input: nil, timeout: nil)
      invoke_function(name, input: input, async: false, timeout: timeout)
    end

    # Queues an invocation and returns the `queued` execution at once.
    def invoke_async(name, input: nil, timeout: nil)
      invoke_function(name, input: input, async: true, timeout: timeout)
    end

    # Polls an execution until it has finished; raises WaitTimeoutError after
    # `timeout` seconds.
    def wait_for(id, timeout: 60)
      Execution.from_h(unwrap(@native.wait_for(id.to_s, millis(timeout)), :json))
    end

    def inspect
      "#<#{self.class.name} url=#{@url}>"
    end

    private

    # Calls an operation by its operationId with wire-format parameters.
    def call_operation(operation_id, params, kind, timeout)
      unwrap(@native.call(operation_id, JSON.generate(params), millis(timeout)), kind)
    end

    def unwrap(outcome, kind)
      ok, _status, _request_id, payload = outcome
      raise Error.from_payload(JSON.parse(payload)) unless ok

      case kind
      when :json then JSON.parse(payload)
      when :text then payload
      end
    end

    # A request body: fields left `nil` are left out; models become hashes.
    def wire(body)
      body.compact.transform_values { |v| Model.plain(v) }
    end

    def millis(seconds)
      seconds && (seconds * 1000).round
    end
  end
end
